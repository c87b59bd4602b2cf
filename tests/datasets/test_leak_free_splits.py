"""Splits keep copies of one sample together: no test row is also a train row (issue 12).

With 30 duplicated rows in iris, the old split put 4 of 18 test rows and 6 of 18
validation rows in train as well. Runs embedded and against a live server.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris  # type: ignore[import-untyped]
from tests.conftest import remote_variants

from weightbase.datasets import DatasetContent, Splits, SplitSpec, from_numpy, from_pandas, split
from weightbase.datasets.digests import sample_digests
from weightbase.errors import ValidationError
from weightbase.workspace import Workspace

pd = pytest.importorskip("pandas")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    remote_variants(metafunc)


@pytest.fixture
def wb(remote_or_embedded: Workspace) -> Workspace:
    return remote_or_embedded


def iris_with_duplicates(copies: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    iris = load_iris()
    rng = np.random.default_rng(seed)
    extra = rng.choice(len(iris.target), size=copies, replace=False)
    x = np.concatenate([iris.data, iris.data[extra]])
    y = np.concatenate([iris.target, iris.target[extra]])
    return x, y


def rows(x: np.ndarray, indices: np.ndarray) -> set[bytes]:
    return {np.ascontiguousarray(x[i]).tobytes() for i in indices.tolist()}


def assert_no_overlap_by_content(x: np.ndarray, splits: Splits) -> None:
    parts = {name: rows(x, getattr(splits, name)) for name in ("train", "validation", "test")}
    assert parts["train"].isdisjoint(parts["test"])
    assert parts["train"].isdisjoint(parts["validation"])
    assert parts["validation"].isdisjoint(parts["test"])


def test_iris_with_30_duplicates_has_no_train_test_overlap_by_content(wb: Workspace) -> None:
    x, y = iris_with_duplicates()
    spec = SplitSpec(train=0.76, validation=0.12, test=0.12, seed=0, stratify=True)
    version = wb.datasets.register("iris", from_numpy(x, y), split=spec)
    splits = wb.datasets.splits(version.ref)
    assert_no_overlap_by_content(x, splits)
    # iris has one duplicate row of its own (rows 101 and 142), on top of the 30 copies
    counts = Counter(sample_digests(from_numpy(x, y)))
    groups = sum(1 for count in counts.values() if count > 1)
    assert splits.duplicate_groups == version.split_duplicate_groups == groups >= 30
    assert version.to_dict()["split_duplicate_groups"] == groups
    # still stratified: each class's share of the test split within a few samples of 12%
    for label in range(3):
        members = int((y == label).sum())
        assert abs(int((y[splits.test] == label).sum()) - 0.12 * members) <= 3


def test_the_split_report_reads_back_the_same_on_every_workspace(wb: Workspace) -> None:
    x, y = iris_with_duplicates(copies=20, seed=3)
    version = wb.datasets.register("iris", from_numpy(x, y))
    splits = wb.datasets.splits(version.ref)
    assert_no_overlap_by_content(x, splits)
    assert version.split_spec is not None
    assert version.split_spec.group_duplicates
    assert version.split_duplicate_groups == splits.duplicate_groups
    assert splits.duplicate_groups is not None
    assert splits.duplicate_groups >= 20
    x_test, _ = wb.datasets.arrays(version.ref, "test")
    x_train, _ = wb.datasets.arrays(version.ref, "train")
    assert {r.tobytes() for r in x_test}.isdisjoint({r.tobytes() for r in x_train})


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_grouped_splits_are_seeded_and_disjoint_by_content(seed: int) -> None:
    x, y = iris_with_duplicates(copies=40, seed=seed)
    content = from_numpy(x, y)
    keys = sample_digests(content)
    spec = SplitSpec(0.7, 0.15, 0.15, seed=seed, stratify=True)
    first = split(len(y), spec, labels=y, groups=keys)
    again = split(len(y), spec, labels=y, groups=keys)
    for name in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert_no_overlap_by_content(x, first)
    joined = np.concatenate([first.train, first.validation, first.test])
    np.testing.assert_array_equal(np.sort(joined), np.arange(len(y)))
    # sizes stay near the fractions: only whole groups move
    assert abs(len(first.test) - 0.15 * len(y)) <= 6


def test_without_duplicates_the_split_is_the_ungrouped_one() -> None:
    digits = load_digits()
    spec = SplitSpec(0.6, 0.2, 0.2, seed=5, stratify=True)
    keys = sample_digests(from_numpy(digits.data, digits.target))
    assert len(set(keys)) == len(keys)  # digits has no repeated image
    grouped = split(len(keys), spec, labels=digits.target, groups=keys)
    plain = split(len(keys), spec, labels=digits.target)
    for name in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(grouped, name), getattr(plain, name))
    assert grouped.duplicate_groups == 0


def test_copies_with_different_labels_still_stay_together() -> None:
    x = np.repeat(np.arange(20.0)[:, None], 3, axis=0)  # every input three times
    y = np.arange(60) % 2  # with mixed labels
    content = from_numpy(x, y)
    for seed in range(5):
        drawn = split(
            60, SplitSpec(seed=seed, stratify=True), labels=y, groups=sample_digests(content)
        )
        assert_no_overlap_by_content(x, drawn)
        assert drawn.duplicate_groups == 20


def test_near_duplicates_by_rounding_and_text_normalising() -> None:
    frame = pd.DataFrame(
        {
            "value": [1.0001, 1.0002, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
            "text": ["Hello  World", "hello world", "a", "b", "c", "d", "e", "f", "g", "h"],
        }
    )
    content = from_pandas(frame)
    exact = sample_digests(content)
    assert exact[0] != exact[1]
    near = sample_digests(content, decimals=2)
    assert near[0] == near[1]
    assert len(set(near)) == 9
    for seed in range(10):
        spec = SplitSpec(0.5, 0.25, 0.25, seed=seed, near_duplicate_decimals=2)
        drawn = split(10, spec, groups=near)
        placed = {
            name: set(getattr(drawn, name).tolist()) for name in ("train", "validation", "test")
        }
        assert any({0, 1} <= members for members in placed.values())
        assert drawn.duplicate_groups == 1


def test_registering_with_near_duplicate_grouping(wb: Workspace) -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 3))
    jittered = base[:25] + 1e-6  # near copies of the first 25 rows
    x = np.concatenate([base, jittered])
    content = from_numpy(x)
    spec = SplitSpec(0.6, 0.2, 0.2, seed=1, near_duplicate_decimals=3)
    version = wb.datasets.register("near", content, split=spec)
    assert version.split_duplicate_groups == 25
    splits = wb.datasets.splits(version.ref)
    rounded = np.round(x, 3)
    assert_no_overlap_by_content(rounded, splits)


def test_splits_drawn_already_must_keep_copies_together(wb: Workspace) -> None:
    x = np.array([[0.0], [1.0], [0.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0], [8.0]])
    content = from_numpy(x)
    straddling = Splits(SplitSpec(), np.arange(1, 8), np.array([0]), np.array([8, 9]))
    with pytest.raises(ValidationError, match="copies of one sample"):
        wb.datasets.register("given", content, split=straddling)
    allowed = Splits(
        SplitSpec(group_duplicates=False), np.arange(1, 8), np.array([0]), np.array([8, 9])
    )
    made = wb.datasets.register("given", content, split=allowed)
    assert made.split_duplicate_groups is None
    together = Splits(SplitSpec(), np.array([0, 1, 2, 3, 4, 5, 6]), np.array([7]), np.array([8, 9]))
    made = wb.datasets.register("given", from_numpy(x * 2), split=together)
    assert made.split_duplicate_groups == 1


def test_split_spec_checks_and_old_records() -> None:
    with pytest.raises(ValidationError, match="near_duplicate_decimals"):
        SplitSpec(near_duplicate_decimals=-1)
    with pytest.raises(ValidationError, match="group_duplicates"):
        SplitSpec(group_duplicates=False, near_duplicate_decimals=2)
    with pytest.raises(ValidationError, match="group keys"):
        split(3, SplitSpec(), groups=[b"a"])
    # a spec stored before grouping existed was drawn without it, and says so
    old = SplitSpec.from_dict(
        {"train": 0.8, "validation": 0.1, "test": 0.1, "seed": 0, "stratify": False}
    )
    assert not old.group_duplicates
    assert SplitSpec.from_dict(SplitSpec(near_duplicate_decimals=4).to_dict()) == SplitSpec(
        near_duplicate_decimals=4
    )


def test_table_and_text_samples_group_by_inputs_not_labels(tmp_path: Any) -> None:
    frame = pd.DataFrame({"a": [1, 1, 2, 3], "label": ["x", "y", "x", "y"]})
    keys = sample_digests(from_pandas(frame, target="label"))
    assert keys[0] == keys[1] != keys[2]
    with_labels = sample_digests(from_pandas(frame, target="label"), labels=True)
    assert with_labels[0] != with_labels[1]
    assert isinstance(from_pandas(frame, target="label"), DatasetContent)


def test_a_split_drawn_without_groups_reports_none_kept_together(wb: Workspace) -> None:
    assert split(10, SplitSpec()).duplicate_groups is None
    x = np.zeros((10, 2))  # ten copies of one sample
    ungrouped = wb.datasets.register(
        "zeros", from_numpy(x), split=SplitSpec(0.5, 0.25, 0.25, group_duplicates=False)
    )
    assert ungrouped.split_duplicate_groups is None
    assert wb.datasets.splits(ungrouped.ref).duplicate_groups is None
    grouped = wb.datasets.register("zeros-grouped", from_numpy(x))
    assert grouped.split_duplicate_groups == 1
    assert sorted(grouped.split_sizes.values()) == [0, 0, 10]  # one group: one split


def test_a_missing_string_is_no_near_copy_of_any_text() -> None:
    frame = pd.DataFrame({"text": pd.Series([None, "\x01", "", " "], dtype=object)})
    keys = sample_digests(from_pandas(frame), decimals=0)
    assert keys[0] not in keys[1:]
    assert keys[2] == keys[3]  # blank after whitespace is collapsed and stripped
