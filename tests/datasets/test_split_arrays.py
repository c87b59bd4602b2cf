"""``wb.datasets.arrays(ref, part)`` gives every format's split in its natural form (issue 12).

It raised for table datasets; now tables come back as a pandas DataFrame and
Series, tensors as NumPy arrays, and so on. Runs embedded and against a live
server, as does the quality grade on the version record.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.conftest import remote_variants

from weightbase.datasets import (
    AudioClip,
    SplitSpec,
    from_graph,
    from_numpy,
    from_pandas,
    from_text_folder,
)
from weightbase.errors import ValidationError
from weightbase.workspace import Workspace

pd = pytest.importorskip("pandas")

SPEC = SplitSpec(0.6, 0.2, 0.2, seed=3)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    remote_variants(metafunc)


@pytest.fixture
def wb(remote_or_embedded: Workspace) -> Workspace:
    return remote_or_embedded


def table() -> object:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "height": rng.normal(size=30),
            "colour": pd.Series(rng.choice(["red", "blue", None], size=30), dtype=object),
            "count": pd.array(rng.integers(0, 5, size=30), dtype="Int64"),
            "label": rng.choice(["cat", "dog"], size=30),
        }
    )


def test_a_table_split_is_a_dataframe_and_a_series(wb: Workspace) -> None:
    frame = table()
    version = wb.datasets.register("pets", from_pandas(frame, target="label"), split=SPEC)
    splits = wb.datasets.splits(version.ref)
    for part in ("train", "validation", "test"):
        features, target = wb.datasets.arrays(version.ref, part)
        indices = getattr(splits, part)
        assert isinstance(features, pd.DataFrame)
        assert isinstance(target, pd.Series)
        assert list(features.columns) == ["height", "colour", "count"]
        assert list(features.index) == indices.tolist()  # sample numbers
        expected = frame.drop(columns=["label"]).iloc[indices].set_axis(indices)
        pd.testing.assert_frame_equal(features, expected, check_index_type=False)
        assert target.tolist() == frame["label"].iloc[indices].tolist()
    whole, labels = wb.datasets.arrays(version.ref)
    assert len(whole) == len(labels) == 30


def test_a_table_without_a_target_gives_none(wb: Workspace) -> None:
    frame = table().drop(columns=["label"])
    version = wb.datasets.register("plain", from_pandas(frame), split=SPEC)
    features, target = wb.datasets.arrays(version.ref, "test")
    assert isinstance(features, pd.DataFrame)
    assert target is None
    assert len(features) == len(wb.datasets.splits(version.ref).test)


def test_tensors_stay_numpy(wb: Workspace) -> None:
    x = np.arange(40.0).reshape(20, 2)
    y = np.arange(20) % 2
    version = wb.datasets.register("t", from_numpy(x, y), split=SPEC)
    indices = wb.datasets.splits(version.ref).validation
    got_x, got_y = wb.datasets.arrays(version.ref, "validation")
    np.testing.assert_array_equal(got_x, x[indices])
    np.testing.assert_array_equal(got_y, y[indices])


def test_text_and_graph_splits(wb: Workspace, tmp_path: Path) -> None:
    for label in ("pos", "neg"):
        (tmp_path / label).mkdir()
        for i in range(5):
            (tmp_path / label / f"{i}.txt").write_text(f"{label} number {i}")
    text = wb.datasets.register("reviews", from_text_folder(tmp_path), split=SPEC)
    indices = wb.datasets.splits(text.ref).train
    documents, labels = wb.datasets.arrays(text.ref, "train")
    content = wb.datasets.load(text.ref)
    assert documents == [content.texts()[i] for i in indices.tolist()]
    assert labels.tolist() == [content.labels()[i] for i in indices.tolist()]

    edges = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 0]]
    features = np.arange(10.0).reshape(5, 2)
    graph = wb.datasets.register(
        "ring", from_graph(edges, features, node_labels=np.array([0, 1, 0, 1, 0])), split=SPEC
    )
    node_features, node_labels = wb.datasets.arrays(graph.ref, "train")
    train = wb.datasets.splits(graph.ref).train
    np.testing.assert_array_equal(node_features, features[train])
    np.testing.assert_array_equal(node_labels, np.array([0, 1, 0, 1, 0])[train])


def test_audio_split_is_a_list_of_clips(wb: Workspace, tmp_path: Path) -> None:
    import wave

    for i in range(6):
        with wave.open(str(tmp_path / f"{i}.wav"), "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(8000)
            writer.writeframes(np.full(10 + i, i, dtype="<i2").tobytes())
    from weightbase.datasets import from_audio_folder

    version = wb.datasets.register("clips", from_audio_folder(tmp_path), split=SPEC)
    clips, labels = wb.datasets.arrays(version.ref, "test")
    assert labels is None
    assert all(isinstance(clip, AudioClip) for clip in clips)
    assert len(clips) == len(wb.datasets.splits(version.ref).test)


def test_an_unknown_part_is_refused(wb: Workspace) -> None:
    version = wb.datasets.register("t", from_numpy(np.arange(10.0)[:, None]))
    with pytest.raises(ValidationError, match="unknown split 'holdout'"):
        wb.datasets.arrays(version.ref, "holdout")


def test_the_quality_grade_is_on_the_version_record(wb: Workspace) -> None:
    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    x = rng.normal(size=(200, 3)) + 8.0 * y[:, None]
    clean = wb.datasets.register("blobs", from_numpy(x, y))
    assert clean.quality_grade == "A"
    assert clean.to_dict()["quality_grade"] == "A"
    assert clean.to_dict()["quality"]["grade"] == "A"
    holed = x.copy()
    holed[rng.random(x.shape) < 0.2] = np.nan
    damaged = wb.datasets.register("holed", from_numpy(holed, y))
    assert damaged.quality_grade in {"C", "D", "F"}
    again = wb.datasets.version(damaged.ref)
    assert again.quality_grade == damaged.quality_grade
    assert again.quality == damaged.quality
