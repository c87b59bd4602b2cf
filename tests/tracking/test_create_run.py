"""``RunTracker.create``: a running run made for another process, with no handle and no usage."""

from __future__ import annotations

import pytest

from weightbase.errors import ValidationError
from weightbase.tracking import RunStatus, RunTracker
from weightbase.tracking.records import ResourceUsage
from weightbase.workspace import Workspace


def test_create_makes_a_running_run_without_usage(
    tracker: RunTracker, workspace: Workspace
) -> None:
    run = tracker.create("remote", name="r1", params={"lr": 0.1}, tags=["b", "a"])
    assert run.status is RunStatus.RUNNING
    assert run.experiment == "remote"
    assert (run.name, dict(run.params), run.tags) == ("r1", {"lr": 0.1}, ("a", "b"))
    assert run.resources == ResourceUsage()
    assert run.ended_at is None
    assert tracker.get(run.id) == run
    assert [entry.action for entry in workspace.audit.entries("run", run.id)] == ["run.start"]
    assert "run_started" in [event.type for event in workspace.events.history()]


def test_a_created_run_is_logged_into_by_another_handle(tracker: RunTracker) -> None:
    run = tracker.create()
    assert run.experiment == "default"
    with tracker.attach(run.id) as handle:
        handle.log({"loss": 1.0}, step=0)
    assert tracker.get(run.id).status is RunStatus.RUNNING
    done = tracker.set_status(run.id, "completed")
    assert done.metrics["loss"].last == 1.0


@pytest.mark.parametrize(
    ("experiment", "name", "tags"),
    [("", None, ()), ("ok", "", ()), ("ok", None, ["  "])],
)
def test_create_refuses_bad_arguments_and_makes_nothing(
    tracker: RunTracker, experiment: str, name: str | None, tags: list[str]
) -> None:
    with pytest.raises(ValidationError):
        tracker.create(experiment, name=name, tags=tags)
    assert tracker.search_all() == []
