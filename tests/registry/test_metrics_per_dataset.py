"""A version's metrics measured on several datasets: one value per (metric, dataset), kept apart."""

from __future__ import annotations

import numpy as np
import pytest

from weightbase.errors import ValidationError
from weightbase.workspace import Workspace


def _pushed(workspace: Workspace) -> str:
    workspace.models.push("m", {"w": np.ones((2, 2), dtype=np.float32)}, metrics={"params_m": 1.0})
    return "m@0.1.0"


def test_each_dataset_keeps_its_own_value(workspace: Workspace) -> None:
    ref = _pushed(workspace)
    workspace.models.log_metrics(ref, {"accuracy": 0.91, "f1": 0.8}, dataset="iris-test")
    workspace.models.log_metrics(ref, {"accuracy": 0.84}, dataset="digits-test")
    version = workspace.models.version(ref)
    assert version.dataset_metrics == {
        "digits-test": {"accuracy": 0.84},
        "iris-test": {"accuracy": 0.91, "f1": 0.8},
    }
    assert dict(version.metrics) == {"params_m": 1.0, "accuracy": 0.84, "f1": 0.8}  # the latest
    # a dataset measured again: its latest value, the other dataset's untouched
    again = workspace.models.log_metrics(ref, {"accuracy": 0.93}, dataset="iris-test")
    assert again.dataset_metrics["iris-test"] == {"accuracy": 0.93, "f1": 0.8}
    assert again.dataset_metrics["digits-test"] == {"accuracy": 0.84}
    assert again.to_dict()["dataset_metrics"]["iris-test"]["accuracy"] == 0.93
    listed = workspace.models.versions("m")[0]
    assert listed.dataset_metrics == again.dataset_metrics


def test_a_version_without_datasets_has_none(workspace: Workspace) -> None:
    version = workspace.models.version(_pushed(workspace))
    assert version.dataset_metrics == {}


@pytest.mark.parametrize("dataset", ["", "x" * 256, "a\nb", 3])
def test_a_bad_dataset_name_is_refused(workspace: Workspace, dataset: object) -> None:
    ref = _pushed(workspace)
    with pytest.raises(ValidationError, match="dataset"):
        workspace.models.log_metrics(ref, {"accuracy": 0.9}, dataset=dataset)  # type: ignore[arg-type]
