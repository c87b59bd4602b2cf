"""Splits: reproducible for a seed, disjoint and complete, stratified when asked; preprocessing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits, load_iris

from weightbase.datasets import Preprocessing, PreprocessingStep, Splits, SplitSpec, split
from weightbase.errors import ValidationError
from weightbase.tensors import TensorStore


def test_same_seed_same_indices_other_seed_other_indices() -> None:
    first = split(1000, SplitSpec(seed=7))
    again = split(1000, SplitSpec(seed=7))
    other = split(1000, SplitSpec(seed=8))
    for name in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.test, other.test)
    assert first.sizes == {"train": 800, "validation": 100, "test": 100}


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=0, max_value=300),
    st.integers(min_value=0, max_value=10),
    st.integers(min_value=0, max_value=10),
    st.integers(min_value=0, max_value=2**32),
)
def test_splits_partition_the_samples(count: int, validation: int, test: int, seed: int) -> None:
    spec = SplitSpec(1 - (validation + test) / 20, validation / 20, test / 20, seed)
    splits = split(count, spec)
    joined = np.concatenate([splits.train, splits.validation, splits.test])
    np.testing.assert_array_equal(np.sort(joined), np.arange(count))
    for part, fraction in zip(
        (splits.train, splits.validation, splits.test), spec.fractions, strict=True
    ):
        assert abs(len(part) - count * fraction) < 1 + 1e-9
        assert np.all(np.diff(part) > 0)  # sorted, no repeats


def test_stratified_split_keeps_class_shares() -> None:
    digits = load_digits()
    spec = SplitSpec(0.6, 0.2, 0.2, seed=1, stratify=True)
    splits = split(len(digits.target), spec, labels=digits.target)
    overall = np.bincount(digits.target) / len(digits.target)
    for part in (splits.train, splits.validation, splits.test):
        shares = np.bincount(digits.target[part], minlength=10) / len(part)
        assert np.abs(shares - overall).max() < 0.01
        # every class is split 60/20/20 to within one sample
    for label in range(10):
        members = int((digits.target == label).sum())
        assert abs((digits.target[splits.test] == label).sum() - 0.2 * members) <= 1


def test_stratified_split_with_string_labels_is_reproducible() -> None:
    iris = load_iris()
    names = iris.target_names[iris.target]
    spec = SplitSpec(0.8, 0.0, 0.2, seed=3, stratify=True)
    splits = split(150, spec, labels=names)
    assert splits.sizes == {"train": 120, "validation": 0, "test": 30}
    assert sorted(np.unique(names[splits.test], return_counts=True)[1]) == [10, 10, 10]
    np.testing.assert_array_equal(splits.test, split(150, spec, labels=list(names)).test)


def test_split_checks() -> None:
    with pytest.raises(ValidationError, match="sum to 1"):
        SplitSpec(0.5, 0.1, 0.1)
    with pytest.raises(ValidationError, match=">= 0"):
        SplitSpec(1.2, -0.1, -0.1)
    with pytest.raises(ValidationError, match="needs the labels"):
        split(10, SplitSpec(stratify=True))
    with pytest.raises(ValidationError, match="labels given"):
        split(10, SplitSpec(stratify=True), labels=[0, 1])


def test_splits_are_stored_with_the_version(tmp_path: Path) -> None:
    spec = SplitSpec(0.7, 0.15, 0.15, seed=11, stratify=True)
    labels = np.arange(200) % 3
    splits = split(200, spec, labels=labels)
    with TensorStore.open(tmp_path / "store") as store:
        snapshot = store.write(splits.to_arrays())
        arrays = store.read(snapshot.id)
    stored_spec = SplitSpec.from_dict(json.loads(json.dumps(splits.to_dict()))["spec"])
    back = Splits.from_arrays(stored_spec, arrays)
    assert back.spec == spec
    for name in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(back, name), getattr(splits, name))
    # the same spec on the same data draws the same split again
    np.testing.assert_array_equal(split(200, stored_spec, labels=labels).test, back.test)


def test_preprocessing_is_recorded_as_json() -> None:
    mean = np.array([0.5, 0.25])
    steps = (
        Preprocessing()
        .then("normalisation", "standardise", mean=mean, std=[0.1, 0.2])
        .then("augmentation", "random_crop", size=[24, 24], padding=4)
        .then("transform", "to_float32")
    )
    assert [s.kind for s in steps.steps] == ["normalisation", "augmentation", "transform"]
    assert steps.steps[0].params["mean"] == [0.5, 0.25]  # NumPy arrays become lists
    doc = json.loads(json.dumps(steps.to_dict()))
    assert Preprocessing.from_dict(doc) == steps
    with pytest.raises(ValidationError, match="not JSON"):
        PreprocessingStep("transform", "lambda", {"fn": print})
    with pytest.raises(ValidationError, match="not JSON"):
        PreprocessingStep("normalisation", "scale", {"by": float("nan")})
    with pytest.raises(ValidationError, match="unknown preprocessing kind"):
        PreprocessingStep("magic", "x")  # type: ignore[arg-type]
