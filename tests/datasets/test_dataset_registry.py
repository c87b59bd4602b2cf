"""``wb.datasets``: versions, statistics, quality, splits, lineage; on both catalogs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris  # type: ignore[import-untyped]

from weightbase.datasets import (
    Preprocessing,
    SplitSpec,
    from_numpy,
    from_pandas,
    from_text_folder,
)
from weightbase.errors import Conflict, NotFound, ValidationError
from weightbase.lineage import Node
from weightbase.workspace import Workspace


@pytest.fixture(scope="module")
def digits() -> Any:
    return load_digits()


def test_register_computes_statistics_quality_and_splits(workspace: Workspace, digits: Any) -> None:
    content = from_numpy(digits.data, digits.target)
    steps = Preprocessing().then("normalisation", "scale", factor=1 / 16)
    version = workspace.datasets.register("digits", content, preprocessing=steps)
    assert (version.version, version.created) == ("0.1.0", True)
    assert (version.kind, version.format, version.sample_count) == ("supervised", "tensor", 1797)
    assert version.statistics is not None
    assert version.statistics.sample_count == 1797
    assert version.quality is not None
    assert 0.9 < version.quality.score <= 1.0
    assert {part.name for part in version.quality.parts} >= {"duplicates", "missing_values"}
    assert sum(version.split_sizes.values()) == 1797
    assert version.split_spec is not None
    assert version.split_spec.stratify  # class labels: stratified by default
    assert version.preprocessing == steps
    # and all of it reads back the same from a fresh handle
    again = workspace.datasets.version("digits@0.1.0")
    assert again.to_dict() == version.to_dict()


def test_splits_are_stored_and_reproducible(workspace: Workspace, digits: Any) -> None:
    content = from_numpy(digits.data, digits.target)
    spec = SplitSpec(train=0.6, validation=0.2, test=0.2, seed=7, stratify=True)
    workspace.datasets.register("digits", content, split=spec)
    splits = workspace.datasets.splits("digits@latest")
    assert splits.spec == spec
    every = np.concatenate([splits.train, splits.validation, splits.test])
    assert sorted(every.tolist()) == list(range(1797))
    x_train, y_train = workspace.datasets.arrays("digits", "train")
    np.testing.assert_array_equal(x_train, digits.data[splits.train])
    assert y_train is not None
    # stratified: every class is in the test split in about its share
    counts = np.bincount(digits.target[splits.test], minlength=10)
    assert counts.min() >= 30


def test_identical_data_is_one_version(workspace: Workspace, digits: Any) -> None:
    first = workspace.datasets.register("digits", from_numpy(digits.data, digits.target))
    again = workspace.datasets.register(
        "digits", from_numpy(digits.data.copy(), digits.target), tags=["again"]
    )
    assert (again.id, again.created, again.tags) == (first.id, False, ("again",))
    with pytest.raises(Conflict, match=r"already digits@0\.1\.0"):
        workspace.datasets.register(
            "digits", from_numpy(digits.data, digits.target), version="2.0.0"
        )
    changed = workspace.datasets.register(
        "digits", from_numpy(digits.data[:100], digits.target[:100])
    )
    assert changed.version == "0.2.0"
    assert [v.version for v in workspace.datasets.versions("digits")] == ["0.1.0", "0.2.0"]


def test_load_round_trips_a_table(workspace: Workspace) -> None:
    pandas = pytest.importorskip("pandas")
    iris = load_iris(as_frame=True).frame
    workspace.datasets.register("iris", from_pandas(iris, target="target"))
    back = workspace.datasets.load("iris@0.1.0").to_pandas()
    pandas.testing.assert_frame_equal(back, iris.reset_index(drop=True), check_dtype=False)
    page = workspace.datasets.list(format="table")
    assert [d.name for d in page] == ["iris"]
    assert workspace.datasets.list(kind="unsupervised").items == ()


def test_lineage_and_history(workspace: Workspace, digits: Any) -> None:
    raw = workspace.datasets.register("digits-raw", from_numpy(digits.data, digits.target))
    clean = workspace.datasets.register(
        "digits", from_numpy(digits.data[:500], digits.target[:500]), derived_from=raw
    )
    reached = workspace.lineage.ancestors(workspace.datasets.node(clean))
    assert [r.node for r in reached] == [Node("dataset_version", str(raw.id))]
    assert [e.action for e in workspace.datasets.history("digits")] == [
        "dataset.create",
        "version.create",
    ]


def test_errors(workspace: Workspace, tmp_path: Path, digits: Any) -> None:
    with pytest.raises(NotFound, match="no dataset called 'ghost'"):
        workspace.datasets.version("ghost@1.0.0")
    with pytest.raises(ValidationError, match="takes a DatasetContent"):
        workspace.datasets.register("x", digits.data)
    with pytest.raises(ValidationError, match="invalid dataset name"):
        workspace.datasets.register("../x", from_numpy(digits.data))
    with pytest.raises(ValidationError, match="stratified split needs class labels"):
        workspace.datasets.register("x", from_numpy(digits.data), split=SplitSpec(stratify=True))
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_bytes(b"\xff\xfe not utf-8 \xc3\x28")
    with pytest.raises(ValidationError, match=r"a\.txt"):
        from_text_folder(tmp_path / "texts")
    assert workspace.datasets.list().items == ()


def test_delete_unpins_the_arrays(workspace: Workspace, digits: Any) -> None:
    version = workspace.datasets.register("digits", from_numpy(digits.data, digits.target))
    refs = workspace.store.refs()
    assert refs[f"registry/dataset-versions/{version.id}"] == version.snapshot_id
    workspace.datasets.delete("digits", reason="replaced")
    assert workspace.store.refs() == {}
    assert workspace.store.gc(grace_seconds=0).removed_snapshots == 2
    with pytest.raises(NotFound):
        workspace.datasets.get("digits")
