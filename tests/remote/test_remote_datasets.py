"""``wb.datasets`` of a remote workspace behaves as the embedded one, against a live server.

Each test makes the same calls on a remote workspace (a live uvicorn server on
loopback, serving a fresh workspace on each catalog backend) and on an
unrelated embedded workspace, and checks they give the same records, the same
snapshots and the same arrays bit for bit; the errors are the same classes with
the same messages. What only a server can do (recompute what it is sent, refuse
what is malformed) is checked against the workspace it serves.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from sklearn.datasets import load_digits  # type: ignore[import-untyped]
from tests.remote.datasets_support import (
    assert_same_arrays,
    assert_same_content,
    assert_same_version,
)
from tests.remote_support import LiveServer

import weightbase
from weightbase.datasets import (
    DatasetContent,
    DatasetRegistry,
    Preprocessing,
    Splits,
    SplitSpec,
    from_graph,
    from_numpy,
    from_pandas,
    from_text_folder,
)
from weightbase.errors import (
    Conflict,
    NotFound,
    NotSupported,
    ValidationError,
    WeightbaseError,
)
from weightbase.lineage import Node
from weightbase.remote import RemoteWorkspace
from weightbase.remote.datasets import RemoteDatasets
from weightbase.workspace import Workspace

T = TypeVar("T")
NAME = "org/digits"


@pytest.fixture
def served(workspace: Workspace) -> Workspace:
    """The fresh workspace the server serves (each catalog backend)."""
    return workspace


@pytest.fixture
def remote(live_server: LiveServer, served: Workspace) -> Iterator[RemoteWorkspace]:
    with live_server.serving(served) as opened:
        yield opened


@pytest.fixture
def embedded(tmp_path: Path, weightbase_home: Path) -> Iterator[Workspace]:
    """A second embedded workspace, unrelated to the server: what the remote calls must equal."""
    opened = weightbase.open(
        tmp_path / "embedded", catalog_url=f"sqlite:///{tmp_path / 'embedded.db'}"
    )
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def digits() -> Any:
    return load_digits()


@pytest.fixture
def both(remote: RemoteWorkspace, embedded: Workspace) -> Callable[[Callable[[Workspace], T]], Any]:
    """``both(call)``: ``call`` on the remote workspace, then on the embedded one."""

    def run(call: Callable[[Workspace], T]) -> tuple[T, T]:
        return call(remote), call(embedded)

    return run


def _raised(call: Callable[[], object]) -> WeightbaseError:
    try:
        call()
    except WeightbaseError as error:
        return error
    pytest.fail(f"{call} raised nothing")


# -- the surface ---------------------------------------------------------------------------


def test_every_public_method_of_the_registry_is_overridden() -> None:
    public = {
        name
        for name in dir(DatasetRegistry)
        if not name.startswith("_") and callable(getattr(DatasetRegistry, name))
    }
    assert public >= {"register", "get", "list", "version", "versions", "load", "splits"}
    assert sorted(name for name in public if name not in vars(RemoteDatasets)) == []
    for name in public:
        remote = inspect.signature(getattr(RemoteDatasets, name))
        assert remote == inspect.signature(getattr(DatasetRegistry, name)), name


def test_a_remote_workspace_has_remote_datasets(remote: RemoteWorkspace) -> None:
    assert isinstance(remote.datasets, RemoteDatasets)
    with pytest.raises(NotSupported, match="describe"):
        remote.datasets.describe([Node("dataset_version", "1")])


# -- registering and reading ---------------------------------------------------------------


def test_register_gives_the_embedded_record(
    both: Any, remote: RemoteWorkspace, served: Workspace, digits: Any
) -> None:
    content = from_numpy(digits.data, digits.target)
    steps = Preprocessing().then("normalisation", "scale", factor=1 / 16)
    made, expected = both(
        lambda wb: wb.datasets.register(
            NAME, content, preprocessing=steps, tags=["raw"], description="8x8 digits"
        )
    )
    assert_same_version(made, expected)
    assert (made.version, made.created, made.tags) == ("0.1.0", True, ("raw",))
    # the record is the server's own, field for field
    assert made == served.datasets.version(f"{NAME}@0.1.0")
    assert remote.datasets.version(made) == made
    assert remote.datasets.version(NAME, "latest") == made
    transfer = remote.datasets.last_transfer
    assert transfer is not None
    assert transfer.sent_chunks > 0
    assert transfer.present_chunks == 0


def test_load_splits_and_arrays_are_the_embedded_ones_bit_for_bit(both: Any, digits: Any) -> None:
    spec = SplitSpec(train=0.6, validation=0.2, test=0.2, seed=7, stratify=True)
    both(lambda wb: wb.datasets.register(NAME, from_numpy(digits.data, digits.target), split=spec))
    loaded, expected = both(lambda wb: wb.datasets.load(f"{NAME}@0.1.0"))
    assert_same_content(loaded, expected)
    splits, expected_splits = both(lambda wb: wb.datasets.splits(NAME))
    assert splits.spec == expected_splits.spec == spec
    assert_same_arrays(splits.to_arrays(), expected_splits.to_arrays())
    for part in (None, "train", "validation", "test"):
        (x, y), (ex, ey) = both(lambda wb, part=part: wb.datasets.arrays(NAME, part))
        assert_same_arrays({"x": x, "y": y}, {"x": ex, "y": ey})


def test_identical_content_is_one_version_and_travels_once(
    both: Any, remote: RemoteWorkspace, digits: Any
) -> None:
    first, _ = both(lambda wb: wb.datasets.register(NAME, from_numpy(digits.data, digits.target)))
    again, expected = both(
        lambda wb: wb.datasets.register(
            NAME, from_numpy(digits.data.copy(), digits.target), tags=["again"]
        )
    )
    assert_same_version(again, expected)
    assert (again.id, again.created, again.tags) == (first.id, False, ("again",))
    transfer = remote.datasets.last_transfer
    assert transfer is not None
    assert (transfer.sent_chunks, transfer.sent_bytes) == (0, 0)
    assert transfer.present_chunks > 0
    conflicts = both(
        lambda wb: _raised(
            lambda: wb.datasets.register(
                NAME, from_numpy(digits.data, digits.target), version="2.0.0"
            )
        )
    )
    assert type(conflicts[0]) is type(conflicts[1]) is Conflict
    assert str(conflicts[0]) == str(conflicts[1])
    both(lambda wb: wb.datasets.register(NAME, from_numpy(digits.data[:100], digits.target[:100])))
    versions, expected_versions = both(lambda wb: wb.datasets.versions(NAME))
    assert [v.version for v in versions] == ["0.1.0", "0.2.0"]
    for made, wanted in zip(versions, expected_versions, strict=True):
        assert_same_version(made, wanted)


def _table() -> Any:
    pandas = pytest.importorskip("pandas")
    return from_pandas(
        pandas.DataFrame(
            {
                "width": [1.5, 2.0, None, 3.25, 4.0, 5.5, 6.0, 7.0, 8.5, 9.0],
                "colour": ["red", "blue", "red", None, "green", "blue", "red", "red", "b", "g"],
                "label": [0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
            }
        ),
        target="label",
    )


def _text(folder: Path) -> Any:
    for label in ("good", "bad"):
        (folder / label).mkdir(parents=True)
        for index in range(5):
            text = f"{label} review number {index} é"
            (folder / label / f"{index}.txt").write_text(text, encoding="utf-8")
    return from_text_folder(folder)


def _graph() -> Any:
    rng = np.random.default_rng(3)
    edges = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 0], [2, 5]]
    return from_graph(
        edges, rng.standard_normal((6, 3)).astype(np.float32), node_labels=[0, 1, 0, 1, 0, 1]
    )


def _regression() -> Any:
    rng = np.random.default_rng(5)
    return from_numpy(rng.standard_normal((40, 3)), rng.standard_normal(40))


_CONTENT: dict[str, Callable[[Path], Any]] = {
    "table": lambda _: _table(),
    "text": _text,
    "graph": lambda _: _graph(),
    "regression": lambda _: _regression(),
}


@pytest.mark.parametrize("kind", sorted(_CONTENT))
def test_every_format_round_trips(both: Any, tmp_path: Path, kind: str) -> None:
    content = _CONTENT[kind](tmp_path / "source")
    made, expected = both(lambda wb: wb.datasets.register(f"formats/{kind}", content))
    assert_same_version(made, expected)
    loaded, expected_content = both(lambda wb: wb.datasets.load(made.ref))
    assert_same_content(loaded, expected_content)
    assert_same_content(loaded, content)
    splits, expected_splits = both(lambda wb: wb.datasets.splits(made.ref))
    assert_same_arrays(splits.to_arrays(), expected_splits.to_arrays())


def test_splits_drawn_already_are_stored_as_given(both: Any) -> None:
    content = from_numpy(np.arange(20.0).reshape(10, 2), np.arange(10) % 2)
    spec = SplitSpec(train=0.5, validation=0.2, test=0.3, seed=11)
    given = Splits(spec, np.arange(5), np.array([5, 6]), np.array([7, 8, 9]))
    made, expected = both(lambda wb: wb.datasets.register("given", content, split=given))
    assert_same_version(made, expected)
    splits, _ = both(lambda wb: wb.datasets.splits("given"))
    assert_same_arrays(splits.to_arrays(), given.to_arrays())
    overlapping = Splits(spec, np.arange(6), np.array([5, 6]), np.array([7, 8, 9]))
    errors = both(
        lambda wb: _raised(lambda: wb.datasets.register("given", content, split=overlapping))
    )
    assert type(errors[0]) is type(errors[1]) is ValidationError
    assert str(errors[0]) == str(errors[1])


# -- listing, tags, lineage, history, deleting ----------------------------------------------


def test_get_list_and_paging(both: Any) -> None:
    x = np.arange(24, dtype=np.float64).reshape(12, 2)
    both(lambda wb: wb.datasets.register("zoo/labelled", from_numpy(x, np.arange(12) % 3)))
    both(lambda wb: wb.datasets.register("zoo/plain", from_numpy(x), tags=["raw"]))
    both(lambda wb: wb.datasets.register("other", from_numpy(x[:6])))
    for query in (
        {},
        {"name": "zoo"},
        {"kind": "unsupervised"},
        {"format": "tensor"},
        {"format": "image"},
        {"tag": "raw"},
    ):
        page, expected = both(lambda wb, query=query: wb.datasets.list(**query))
        assert [d.name for d in page] == [d.name for d in expected], query
    walked: list[list[str]] = [[], []]
    for index, wb in enumerate(both(lambda wb: wb)):
        after = None
        while True:
            page = wb.datasets.list(limit=1, after=after)
            walked[index].extend(d.name for d in page)
            after = page.next_after
            if after is None:
                break
    assert walked[0] == walked[1] == ["other", "zoo/labelled", "zoo/plain"]
    dataset, expected_dataset = both(lambda wb: wb.datasets.get("zoo/labelled"))
    own = ("id", "created_at", "updated_at")
    assert {k: v for k, v in dataset.to_dict().items() if k not in own} == {
        k: v for k, v in expected_dataset.to_dict().items() if k not in own
    }


def test_versions_come_a_page_at_a_time(
    both: Any, remote: RemoteWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("weightbase.remote.datasets._VERSIONS_PAGE", 2)
    for rows in (4, 5, 6, 7, 8):
        data = np.arange(rows * 2, dtype=np.float64).reshape(rows, 2)
        both(lambda wb, data=data: wb.datasets.register("grows", from_numpy(data)))
    versions, expected = both(lambda wb: wb.datasets.versions("grows"))
    assert [v.version for v in versions] == ["0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0"]
    for made, wanted in zip(versions, expected, strict=True):
        assert_same_version(made, wanted)
    page = remote.connection.get("/api/v1/datasets/grows/-/versions", limit=2, after="0.2.0")
    assert ([item["version"] for item in page["items"]], page["next"]) == (
        ["0.3.0", "0.4.0"],
        "0.4.0",
    )


def test_tags_lineage_and_history(
    both: Any, remote: RemoteWorkspace, served: Workspace, embedded: Workspace, digits: Any
) -> None:
    raw, _ = both(lambda wb: wb.datasets.register("raw", from_numpy(digits.data, digits.target)))
    clean, expected = both(
        lambda wb: wb.datasets.register(
            NAME, from_numpy(digits.data[:300], digits.target[:300]), derived_from="raw@0.1.0"
        )
    )
    assert_same_version(clean, expected)
    node = remote.datasets.node(clean)
    assert node == served.datasets.node(clean.ref) == Node("dataset_version", str(clean.id))
    assert [r.node for r in served.lineage.ancestors(node)] == [
        Node("dataset_version", str(raw.id))
    ]
    both(lambda wb: wb.datasets.tag(f"{NAME}@0.1.0", "checked", "small"))
    both(lambda wb: wb.datasets.tag(NAME, "checked"))  # the latest; already there
    tagged, expected_tagged = both(lambda wb: wb.datasets.version(NAME))
    assert tagged.tags == expected_tagged.tags == ("checked", "small")
    history, expected_history = both(lambda wb: wb.datasets.history(NAME))
    assert [(e.action, e.after, e.actor) for e in history] == [
        (e.action, e.after, e.actor) for e in expected_history
    ]
    assert [e.action for e in history] == ["dataset.create", "version.create", "tag.add"]
    first = remote.datasets.history(NAME, limit=1)
    assert [e.action for e in first] == ["dataset.create"]
    rest = remote.datasets.history(NAME, since_id=history[0].id)
    expected_rest = embedded.datasets.history(NAME, since_id=expected_history[0].id)
    assert [e.action for e in rest] == [e.action for e in expected_rest]
    assert [e.action for e in rest] == ["version.create", "tag.add"]
    page = remote.connection.get(f"/api/v1/datasets/{NAME}/-/history", limit=2)
    assert page["next"] == str(history[1].id)


def test_delete_unpins_on_the_server(both: Any, served: Workspace) -> None:
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    made, _ = both(lambda wb: wb.datasets.register("gone", from_numpy(x)))
    assert served.store.refs("registry/")[f"registry/dataset-versions/{made.id}"]
    both(lambda wb: wb.datasets.delete("gone", reason="replaced"))
    assert served.store.refs("registry/") == {}
    errors = both(lambda wb: _raised(lambda: wb.datasets.get("gone")))
    assert type(errors[0]) is type(errors[1]) is NotFound
    assert str(errors[0]) == str(errors[1])


def test_errors_are_the_embedded_ones(both: Any, digits: Any) -> None:
    both(lambda wb: wb.datasets.register(NAME, from_numpy(digits.data[:50], digits.target[:50])))
    unlabelled = from_numpy(digits.data[:50])
    calls: list[Callable[[Workspace], object]] = [
        lambda wb: wb.datasets.version("ghost@1.0.0"),
        lambda wb: wb.datasets.version(f"{NAME}@9.9.9"),
        lambda wb: wb.datasets.get("ghost"),
        lambda wb: wb.datasets.versions("ghost"),
        lambda wb: wb.datasets.history("ghost"),
        lambda wb: wb.datasets.load("ghost@latest"),
        lambda wb: wb.datasets.arrays(NAME, "holdout"),
        lambda wb: wb.datasets.tag("ghost@0.1.0", "x"),
        lambda wb: wb.datasets.tag(NAME, " padded "),
        lambda wb: wb.datasets.delete("ghost"),
        lambda wb: wb.datasets.register("x", digits.data),
        lambda wb: wb.datasets.register("../x", unlabelled),
        lambda wb: wb.datasets.register("x", unlabelled, split=SplitSpec(stratify=True)),
        lambda wb: wb.datasets.register("x", unlabelled, version="not-a-version"),
        lambda wb: wb.datasets.register("x", unlabelled, derived_from="ghost@1.0.0"),
        lambda wb: wb.datasets.list(kind="bad"),
        lambda wb: wb.datasets.list(format="bad"),
    ]
    for index, call in enumerate(calls):
        remote_error, embedded_error = both(lambda wb, call=call: _raised(lambda: call(wb)))
        assert type(remote_error) is type(embedded_error), index
        assert str(remote_error) == str(embedded_error), index
    errors = both(lambda wb: _raised(lambda: wb.datasets.list(kind="bad")))
    assert (
        errors[0].context
        == errors[1].context
        == {
            "kind": "bad",
            "allowed": ["supervised", "unsupervised", "reinforcement", "meta-learning"],
        }
    )


# -- what the server checks ----------------------------------------------------------------


def test_a_snapshot_on_the_server_is_registered_with_what_the_server_computes(
    remote: RemoteWorkspace, embedded: Workspace, digits: Any
) -> None:
    content = from_numpy(digits.data[:200], digits.target[:200])
    snapshot = remote.store.write(
        dict(content.arrays), metadata=content.metadata, ref="checkpoints/digits"
    )
    made = remote.datasets.register("uploaded", snapshot, tags=["direct"])
    expected = embedded.datasets.register("uploaded", content, tags=["direct"])
    assert_same_version(made, expected)  # statistics, quality and splits all the server's
    transfer = remote.datasets.last_transfer
    assert transfer is not None
    assert transfer.sent_chunks == 0
    # a commit that claims statistics gets those the server computes
    body = {"snapshot": snapshot.id, "statistics": {"sample_count": 1}, "version": "1.0.0"}
    with pytest.raises(Conflict, match=r"already uploaded@0\.1\.0"):
        remote.connection.post("/api/v1/datasets/uploaded/-/versions", body)
    again = remote.connection.post("/api/v1/datasets/again/-/versions", body)
    assert again["statistics"] == expected.statistics.to_dict()  # type: ignore[union-attr]


def test_the_server_refuses_what_is_not_a_dataset(remote: RemoteWorkspace) -> None:
    weights = remote.store.write({"w": np.zeros(8, np.float32)}, ref="checkpoints/weights")
    with pytest.raises(ValidationError, match="not a dataset"):
        remote.datasets.register("x", weights)
    short = DatasetContent(
        kind="supervised",
        format="tensor",
        arrays={"x": np.zeros((5, 2)), "y": np.arange(5)},
        sample_count=9,
        target="y",
    )
    lying = remote.store.write(dict(short.arrays), metadata=short.metadata, ref="checkpoints/lie")
    with pytest.raises(ValidationError, match="says 9 samples but x holds 5, y holds 5"):
        remote.datasets.register("x", lying)
    fine = from_numpy(np.arange(10.0).reshape(5, 2))
    stored = remote.store.write(dict(fine.arrays), metadata=fine.metadata, ref="checkpoints/ok")
    overlapping = Splits(SplitSpec(), np.arange(4), np.array([3]), np.array([4]))
    with pytest.raises(ValidationError, match="each of the 5 samples exactly once"):
        remote.datasets.register("x", stored, split=overlapping)
    body = {"snapshot": stored.id, "splits_snapshot": weights.id}
    with pytest.raises(ValidationError, match="does not hold a dataset's splits"):
        remote.connection.post("/api/v1/datasets/x/-/versions", body)
    with pytest.raises(ValidationError):
        remote.connection.post("/api/v1/datasets/x/-/versions", {"snapshot": "not-an-id"})
    with pytest.raises(NotFound):
        remote.connection.post("/api/v1/datasets/x/-/versions", {"snapshot": "0" * 64})
    with pytest.raises(NotFound):
        remote.datasets.get("x")  # nothing was registered
