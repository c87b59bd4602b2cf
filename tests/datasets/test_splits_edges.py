"""Split specs and preprocessing steps on inputs the main split tests leave out."""

from __future__ import annotations

import numpy as np
import pytest

from weightbase.datasets import Preprocessing, PreprocessingStep, Splits, SplitSpec, split
from weightbase.errors import MalformedFileError, ValidationError


@pytest.mark.parametrize("seed", [-1, 1.5, "7"])
def test_the_seed_must_be_a_whole_number_not_below_zero(seed: object) -> None:
    with pytest.raises(ValidationError, match="the split seed must be an integer >= 0, got "):
        SplitSpec(seed=seed)  # type: ignore[arg-type]


def test_a_negative_sample_count_is_refused() -> None:
    with pytest.raises(ValidationError, match="sample_count must be >= 0, got -3"):
        split(-3)


def test_repr_and_sizes() -> None:
    splits = split(10, SplitSpec(0.6, 0.2, 0.2, seed=4))
    assert splits.sizes == {"train": 6, "validation": 2, "test": 2}
    assert repr(splits) == "Splits(train=6, validation=2, test=2, seed=4, stratify=False)"


def test_stored_splits_must_have_all_three_arrays() -> None:
    arrays = split(10).to_arrays()
    del arrays["split.validation"], arrays["split.test"]
    with pytest.raises(MalformedFileError, match="stored splits lack") as caught:
        Splits.from_arrays(SplitSpec(), arrays)
    assert caught.value.names == ["split.validation", "split.test"]


def test_missing_labels_are_stratified_as_a_class_of_their_own() -> None:
    labels: list[object] = ["a", None, "b", float("nan")] * 10
    splits = split(40, SplitSpec(0.5, 0.25, 0.25, stratify=True), labels=labels)
    missing = {i for i in range(40) if i % 4 in (1, 3)}  # the None and NaN labels
    for name, share in (("train", 10), ("validation", 5), ("test", 5)):
        assert len(missing & set(getattr(splits, name).tolist())) == share


def test_numpy_scalars_group_with_plain_values() -> None:
    labels = np.array([1, 2] * 10)
    by_numpy = split(20, SplitSpec(stratify=True, seed=3), labels=labels)
    by_python = split(20, SplitSpec(stratify=True, seed=3), labels=labels.tolist())
    assert by_numpy.test.tolist() == by_python.test.tolist()


@pytest.mark.parametrize("name", ["", None])
def test_a_step_needs_a_name(name: object) -> None:
    with pytest.raises(ValidationError, match="a preprocessing step needs a name"):
        PreprocessingStep("transform", name)  # type: ignore[arg-type]


def test_numpy_scalars_in_params_become_plain_numbers() -> None:
    step = Preprocessing().then("normalisation", "scale", by=np.float32(0.5), axis=np.int64(1))
    params = step.steps[0].params
    assert params == {"by": 0.5, "axis": 1}
    assert type(params["axis"]) is int
