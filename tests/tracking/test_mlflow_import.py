"""``import_mlflow``: a real MLflow SQLite store imported point for point, twice, no duplicates."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from weightbase.errors import NotFound, ValidationError
from weightbase.tracking import RunStatus, RunTracker
from weightbase.tracking.mlflow_import import MLFLOW_RUN_TAG, import_mlflow

mlflow = pytest.importorskip("mlflow", reason="importing from MLflow needs the [mlflow] extra")

pytestmark = [
    # MLflow's own deprecation notices about its internals and dependencies, not ours
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:alembic.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pydantic.*"),
    pytest.mark.filterwarnings("ignore:.*is deprecated.*:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two experiments, three runs (finished, failed, killed) with params, tags and metrics."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    base = 1_700_000_000_000
    expected: dict[str, Any] = {}
    vision = client.create_experiment("vision", artifact_location=str(folder / "artifacts"))
    text = client.create_experiment("text/nlp", artifact_location=str(folder / "artifacts2"))
    plans = [
        (vision, "resnet", "FINISHED", {"lr": "0.001", "optimizer": "adam"}, 300),
        (vision, "resnet-bad", "FAILED", {"lr": "10"}, 5),
        (text, "bert", "KILLED", {"layers": "12", "warmup": "0.1"}, 40),
    ]
    for number, (experiment_id, name, status, params, count) in enumerate(plans):
        start = base + number * 10_000
        run = client.create_run(experiment_id, start_time=start, run_name=name)
        run_id = run.info.run_id
        steps = np.arange(count) * 2
        losses = np.linspace(1.0, 0.1, count)
        if name == "resnet":
            losses[7] = math.nan
        metrics = [
            Metric("train/loss", float(v), base + number * 10_000 + int(s) * 13, int(s))
            for s, v in zip(steps, losses, strict=True)
        ]
        metrics += [
            Metric("val/acc", 0.5 + int(s) / 1000, base + 99 + int(s), int(s)) for s in steps[:3]
        ]
        tags = {"team": "core", "mlflow.source.type": "LOCAL"}
        client.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        client.set_terminated(run_id, status=status, end_time=base + number * 10_000 + 5_000)
        expected[run_id] = {"name": name, "status": status, "params": params, "number": number}
    return {"uri": uri, "client": client, "runs": expected, "base": base}


def test_import_matches_point_for_point(tracker: RunTracker, mlflow_store: dict[str, Any]) -> None:
    client = mlflow_store["client"]
    report = import_mlflow(tracker, mlflow_store["uri"])
    assert sorted(report.experiments) == ["Default", "text/nlp", "vision"]
    assert len(report.imported) == 3
    assert report.existing == ()
    assert report.dropped == ()
    statuses = {"FINISHED": RunStatus.COMPLETED, "FAILED": RunStatus.FAILED}
    statuses["KILLED"] = RunStatus.CANCELLED
    total = 0
    for mlflow_id, plan in mlflow_store["runs"].items():
        source = client.get_run(mlflow_id)
        run = tracker.get(report.run_id(mlflow_id))
        assert run.name == plan["name"]
        assert run.status is statuses[plan["status"]]
        assert run.experiment == ("text/nlp" if plan["name"] == "bert" else "vision")
        assert run.params == plan["params"]
        assert f"mlflow.run_id={mlflow_id}" in run.tags
        assert {"team=core", "mlflow.source.type=LOCAL"} <= set(run.tags)
        assert f"mlflow.runName={plan['name']}" in run.tags
        assert run.started_at == datetime.fromtimestamp(source.info.start_time / 1000, UTC)
        assert run.ended_at == datetime.fromtimestamp(source.info.end_time / 1000, UTC)
        assert tracker.metric_names(run.id) == ["train/loss", "val/acc"]
        for key in ("train/loss", "val/acc"):
            points = sorted(client.get_metric_history(mlflow_id, key), key=lambda m: m.step)
            history = tracker.history(run.id, key)
            total += len(points)
            assert history.steps.tolist() == [m.step for m in points]
            assert history.times.tolist() == [m.timestamp / 1000 for m in points]
            np.testing.assert_array_equal(history.values, [m.value for m in points])
            assert np.isnan(history.epochs).all()
    assert report.points == total
    (resnet_id,) = [m for m, plan in mlflow_store["runs"].items() if plan["name"] == "resnet"]
    assert tracker.get(report.run_id(resnet_id)).metrics["train/loss"].nonfinite == 1


def test_import_twice_adds_nothing(tracker: RunTracker, mlflow_store: dict[str, Any]) -> None:
    first = import_mlflow(tracker, mlflow_store["uri"], experiments=["vision"])
    assert first.experiments == ("vision",)
    assert len(first.imported) == 2
    again = import_mlflow(tracker, mlflow_store["uri"])
    assert sorted(again.existing) == sorted(first.imported)
    assert len(again.imported) == 1  # the text/nlp run, new this time
    third = import_mlflow(tracker, mlflow_store["uri"])
    assert third.imported == ()
    assert len(tracker.search_all()) == 3
    assert third.to_dict()["points"] == 0


def test_unknown_experiment_and_dropped_names(
    tracker: RunTracker, mlflow_store: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="no experiment 'nope'"):
        import_mlflow(tracker, mlflow_store["uri"], experiments=["nope"])

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'odd.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("odd", artifact_location=str(tmp_path / "a"))
    run = client.create_run(experiment, run_name="odd")
    client.log_param(run.info.run_id, "ok", "1")
    client.set_tag(run.info.run_id, "long", "x" * 300)
    client.log_metric(run.info.run_id, "loss", 0.5, step=-1)
    client.log_metric(run.info.run_id, "loss", 0.4, step=3)
    report = import_mlflow(tracker, uri, experiments=["odd"])
    assert len(report.dropped) == 2
    assert any("over 255 characters" in line for line in report.dropped)
    assert any("negative steps" in line for line in report.dropped)
    imported = tracker.get(report.imported[0][1])
    assert imported.status is RunStatus.PAUSED  # still running in MLflow
    assert imported.status_reason == "running in MLflow when imported"
    assert tracker.history(imported.id, "loss").steps.tolist() == [3]


# -- what MLflow takes and weightbase refuses: names, long names, huge steps --------------

LONG_NAME = "r" * 300


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An MLflow store with names weightbase refuses and a run whose steps it cannot hold."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow-odd")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    bad = client.create_experiment("bad name!", artifact_location=str(folder / "bad"))
    client.create_run(bad, run_name="never-imported")
    odd = client.create_experiment("odd", artifact_location=str(folder / "odd"))
    run = client.create_run(odd, run_name=LONG_NAME, start_time=1_700_000_000_000)
    run_id = run.info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.log_param(run_id, "-lr", "0.2")
    client.log_metric(run_id, "loss", 0.5, step=1)
    client.log_metric(run_id, "-loss", 0.4, step=1)
    client.set_terminated(run_id, status="FINISHED")
    huge = client.create_experiment("huge", artifact_location=str(folder / "huge"))
    huge_run = client.create_run(huge, run_name="huge")
    client.log_metric(huge_run.info.run_id, "loss", 0.5, step=2**60)
    client.set_terminated(huge_run.info.run_id, status="FINISHED")
    return {"uri": uri, "odd": run_id, "huge": huge_run.info.run_id}


def test_invalid_names_are_dropped_and_reported(
    tracker: RunTracker, odd_store: dict[str, Any]
) -> None:
    report = import_mlflow(tracker, odd_store["uri"], experiments=["bad name!", "odd"])
    assert report.experiments == ("odd",)
    where = f"MLflow run {odd_store['odd']}"
    assert report.dropped == (
        "experiment 'bad name!': not a valid weightbase experiment name; "
        "its runs were not imported",
        f"{where}: param '-lr' is not a valid weightbase name",
        # MLflow keeps the run name as a tag too, too long for a weightbase tag
        f"{where}: tag 'mlflow.runName' is over 255 characters as key=value",
        f"{where}: metric '-loss' is not a valid weightbase name",
    )
    run = tracker.get(report.run_id(odd_store["odd"]))
    assert run.params == {"lr": "0.1"}
    assert set(run.metrics) == {"loss"}
    assert report.points == 1
    assert f"{MLFLOW_RUN_TAG}{odd_store['odd']}" in run.tags
    assert [r.name for r in tracker.search_all()] == [run.name]  # nothing from 'bad name!'


def test_a_long_run_name_is_cut_to_fit(tracker: RunTracker, odd_store: dict[str, Any]) -> None:
    report = import_mlflow(tracker, odd_store["uri"], experiments=["odd"])
    assert tracker.get(report.run_id(odd_store["odd"])).name == LONG_NAME[:255]


def test_asking_for_a_run_that_was_not_imported_is_not_found(
    tracker: RunTracker, odd_store: dict[str, Any]
) -> None:
    report = import_mlflow(tracker, odd_store["uri"], experiments=["odd"])
    with pytest.raises(NotFound, match="MLflow run 'abc123' was not imported") as caught:
        report.run_id("abc123")
    assert caught.value.mlflow_run_id == "abc123"
    # a run of an experiment that was not asked for was not imported either
    with pytest.raises(NotFound):
        report.run_id(odd_store["huge"])


def test_a_run_weightbase_cannot_hold_stops_the_import_naming_it(
    tracker: RunTracker, odd_store: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as caught:
        import_mlflow(tracker, odd_store["uri"], experiments=["huge"])
    message = str(caught.value)
    assert message.startswith(f"MLflow run {odd_store['huge']} could not be imported: ")
    assert "steps of metric 'loss' must be in [0, 2**53)" in message
    assert isinstance(caught.value.__cause__, ValidationError)
    assert tracker.search_all() == []  # refused before anything was written
