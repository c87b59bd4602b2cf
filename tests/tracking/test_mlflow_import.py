"""``import_mlflow``: a real MLflow SQLite store imported point for point, twice, no duplicates."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from weightbase.errors import NotFound
from weightbase.tracking import RunStatus, RunTracker
from weightbase.tracking.mlflow_import import import_mlflow

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
