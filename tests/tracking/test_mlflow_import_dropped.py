"""``import_mlflow`` on what MLflow takes and weightbase refuses: names, long names, huge steps."""

from __future__ import annotations

from typing import Any

import pytest

from weightbase.errors import NotFound, ValidationError
from weightbase.tracking import RunTracker
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
