"""Array encodings: what goes in comes out, for strings, tables and graphs (property tests)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weightbase.datasets import DatasetContent, from_graph, from_pandas
from weightbase.datasets.encoding import (
    decode_blobs,
    decode_strings,
    encode_blobs,
    encode_strings,
)
from weightbase.errors import MalformedFileError, ValidationError

pd = pytest.importorskip("pandas")

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def stored_again(content: DatasetContent) -> DatasetContent:
    """The content as the catalog layer will get it back: copied arrays, metadata strings."""
    arrays = {name: np.array(array) for name, array in content.arrays.items()}
    return DatasetContent.from_stored(arrays, dict(content.metadata))


@FAST
@given(st.lists(st.one_of(st.none(), st.text())))
def test_strings_round_trip(values: list[str | None]) -> None:
    data, offsets, mask = encode_strings(values)
    assert data.dtype == np.uint8
    assert offsets.dtype == np.int64
    assert offsets.shape == (len(values) + 1,)
    assert decode_strings(data, offsets, mask) == values


@FAST
@given(st.lists(st.binary()))
def test_blobs_round_trip(blobs: list[bytes]) -> None:
    assert decode_blobs(*encode_blobs(blobs)) == blobs


def test_lone_surrogates_survive() -> None:
    values = ["a\ud800b", "\udfff"]
    assert decode_strings(*encode_strings(values)) == values


def test_inconsistent_offsets_are_malformed() -> None:
    data, offsets, _ = encode_strings(["abc", "de"])
    with pytest.raises(MalformedFileError):
        decode_strings(data, offsets[:-1])
    with pytest.raises(MalformedFileError):
        decode_strings(data, offsets[::-1].copy())


# -- tables --------------------------------------------------------------------------------

finite_or_special = st.floats(allow_nan=True, allow_infinity=True, width=64)
maybe_text = st.one_of(st.none(), st.text(max_size=8))


@st.composite
def frames(draw: st.DrawFn) -> object:
    rows = draw(st.integers(min_value=1, max_value=12))

    def column(elements: st.SearchStrategy[object]) -> list[object]:
        return draw(st.lists(elements, min_size=rows, max_size=rows))

    ints = column(st.integers(min_value=-(2**63), max_value=2**63 - 1))
    nullable = column(st.one_of(st.none(), st.integers(min_value=-(2**31), max_value=2**31)))
    stamps = column(
        st.one_of(st.none(), st.integers(min_value=0, max_value=4_000_000_000).map(float))
    )
    categories = column(st.one_of(st.none(), st.sampled_from(["red", "green", "blue"])))
    return pd.DataFrame(
        {
            "int": np.array(ints, dtype=np.int64),
            "uint8": np.array(column(st.integers(0, 255)), dtype=np.uint8),
            "float": np.array(column(finite_or_special), dtype=np.float64),
            "float32": np.array(column(st.floats(width=32)), dtype=np.float32),
            "bool": np.array(column(st.booleans()), dtype=np.bool_),
            "nullable int": pd.array(nullable, dtype="Int64"),
            "nullable bool": pd.array(column(st.one_of(st.none(), st.booleans())), dtype="boolean"),
            "object text": pd.Series(column(maybe_text), dtype=object),
            "string": pd.array(column(maybe_text), dtype="string"),
            "str": pd.array(column(maybe_text), dtype="str"),
            "category": pd.Categorical(categories, categories=["red", "green", "blue"]),
            "when": pd.to_datetime(pd.Series(stamps, dtype="float64"), unit="s"),
            "when utc": pd.to_datetime(pd.Series(stamps, dtype="float64"), unit="s", utc=True),
            "how long": pd.to_timedelta(pd.Series(stamps, dtype="float64"), unit="s"),
        }
    )


@FAST
@given(frames())
def test_tables_round_trip(frame: object) -> None:
    content = stored_again(from_pandas(frame))
    back = content.to_pandas()
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert list(back.dtypes) == list(frame.dtypes)  # type: ignore[attr-defined]


def test_table_keeps_nan_payloads_and_float_bits() -> None:
    values = np.array([0.0, -0.0, math.inf, -math.inf, math.nan], dtype=np.float64)
    frame = pd.DataFrame({"v": values})
    back = stored_again(from_pandas(frame)).to_pandas()
    assert back["v"].to_numpy().tobytes() == values.tobytes()


def test_table_arrow_backed_columns_round_trip() -> None:
    pa = pytest.importorskip("pyarrow")
    frame = pd.DataFrame(
        {
            "n": pd.array([1, None, 3], dtype="int64[pyarrow]"),
            "s": pd.array(["a", None, "ccc"], dtype="string[pyarrow]"),
            "f": pd.array([1.5, None, -2.0], dtype="double[pyarrow]"),
        }
    )
    frame["arrow text"] = pd.Series(["x", "y", None], dtype=pd.ArrowDtype(pa.string()))
    back = stored_again(from_pandas(frame)).to_pandas()
    pd.testing.assert_frame_equal(back, frame)


def test_table_refuses_what_it_cannot_store() -> None:
    with pytest.raises(ValidationError, match="mixes strings"):
        from_pandas(pd.DataFrame({"mixed": ["a", 1]}))
    with pytest.raises(ValidationError, match="names must be strings"):
        from_pandas(pd.DataFrame({0: [1, 2]}))
    with pytest.raises(ValidationError, match="period"):
        from_pandas(pd.DataFrame({"p": pd.period_range("2020-01", periods=2, freq="M")}))
    with pytest.raises(ValidationError, match="no samples"):
        from_pandas(pd.DataFrame({"a": []}))
    with pytest.raises(ValidationError, match="target"):
        from_pandas(pd.DataFrame({"a": [1]}), target="b")


def test_table_index_is_kept_only_when_asked() -> None:
    frame = pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="key"))
    assert list(from_pandas(frame).to_pandas().columns) == ["a"]
    kept = from_pandas(frame, index=True).to_pandas()
    assert list(kept.columns) == ["key", "a"]
    assert list(kept["key"]) == ["x", "y"]


# -- graphs --------------------------------------------------------------------------------


@st.composite
def graphs(draw: st.DrawFn) -> tuple[int, np.ndarray, np.ndarray, np.ndarray | None]:
    nodes = draw(st.integers(min_value=1, max_value=20))
    edge_count = draw(st.integers(min_value=0, max_value=40))
    node = st.integers(min_value=0, max_value=nodes - 1)
    pairs = draw(st.lists(st.tuples(node, node), min_size=edge_count, max_size=edge_count))
    edges = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    features = np.array(
        draw(st.lists(st.floats(width=32), min_size=nodes * 3, max_size=nodes * 3)),
        dtype=np.float32,
    ).reshape(nodes, 3)
    weights = None
    if draw(st.booleans()):
        weights = np.arange(edge_count, dtype=np.float64)
    return nodes, edges, features, weights


@FAST
@given(graphs())
def test_graphs_round_trip(case: tuple[int, np.ndarray, np.ndarray, np.ndarray | None]) -> None:
    nodes, edges, features, weights = case
    labels = np.arange(nodes) % 2
    content = stored_again(from_graph(edges, features, node_labels=labels, edge_features=weights))
    graph = content.graph()
    assert graph.num_nodes == nodes
    assert graph.edge_index.dtype == np.int64
    np.testing.assert_array_equal(graph.edge_index, edges.T)
    assert graph.node_features is not None
    assert graph.node_features.tobytes() == features.tobytes()
    np.testing.assert_array_equal(graph.node_labels, labels)
    if weights is None:
        assert graph.edge_features is None
    else:
        np.testing.assert_array_equal(graph.edge_features, weights)


def test_graph_edges_as_edge_index_and_checks() -> None:
    index = np.array([[0, 1, 2], [1, 2, 0]])
    graph = from_graph(index).graph()
    np.testing.assert_array_equal(graph.edge_index, index)
    assert graph.num_nodes == 3
    with pytest.raises(ValidationError, match="outside"):
        from_graph([[0, 5]], np.zeros((3, 2)))
    with pytest.raises(ValidationError, match="expected 3 rows"):
        from_graph([[0, 1]], np.zeros((3, 2)), node_labels=[0, 1])
    with pytest.raises(ValidationError, match="integer"):
        from_graph([[0.5, 1.0]])
    with pytest.raises(ValidationError, match="edge_labels"):
        from_graph([[0, 1], [1, 2], [2, 0]], edge_labels=[1, 0])
