"""A run's metrics on several datasets: one series, and one summary, per (metric, dataset)."""

from __future__ import annotations

import pytest

from weightbase.errors import ValidationError
from weightbase.tracking import MetricFilter
from weightbase.workspace import Workspace


def test_each_dataset_keeps_its_own_series(remote_or_embedded: Workspace) -> None:
    wb = remote_or_embedded
    with wb.runs.start("eval", name="two-sets") as run:
        run.log({"accuracy": 0.91, "f1": 0.8}, step=10, dataset="iris-test")
        run.log({"accuracy": 0.84}, step=10, dataset="digits@1.0.0")
        run.log_metric("accuracy", 0.5, step=10)  # no dataset: a series of its own
        run.log_series("loss", [0.3, 0.2], steps=[1, 2], dataset="iris-test")
    found = wb.runs.get(run.id)
    assert set(found.metrics) == {
        "accuracy",
        "accuracy@iris-test",
        "accuracy@digits@1.0.0",
        "f1@iris-test",
        "loss@iris-test",
    }
    iris = found.metrics["accuracy@iris-test"]
    assert (iris.metric, iris.dataset, iris.last) == ("accuracy", "iris-test", 0.91)
    digits = found.metrics["accuracy@digits@1.0.0"]
    assert (digits.metric, digits.dataset, digits.last) == ("accuracy", "digits@1.0.0", 0.84)
    plain = found.metrics["accuracy"]
    assert (plain.metric, plain.dataset, plain.last) == ("accuracy", None, 0.5)
    assert found.to_dict()["metrics"]["accuracy@iris-test"]["dataset"] == "iris-test"

    history = wb.runs.history(run.id, "loss", dataset="iris-test")
    assert history.values.tolist() == [0.3, 0.2]
    assert wb.runs.history(run.id, "accuracy@digits@1.0.0").values.tolist() == [0.84]
    assert "accuracy@iris-test" in wb.runs.metric_names(run.id)
    best = wb.runs.search(experiment="eval", metrics=[MetricFilter("accuracy@iris-test", ">", 0.9)])
    assert [r.id for r in best] == [run.id]


def test_bad_datasets_are_refused(remote_or_embedded: Workspace) -> None:
    wb = remote_or_embedded
    with wb.runs.start("eval") as run:
        for bad in ("", " x", "a\nb", "x" * 129, 3):
            with pytest.raises(ValidationError, match="dataset"):
                run.log({"accuracy": 0.9}, dataset=bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            run.log({"accuracy@": 0.9})
        with pytest.raises(ValidationError, match="255"):
            run.log({"a" * 200: 0.9}, dataset="d" * 100)
