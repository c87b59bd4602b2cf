"""Runs on SQLite and PostgreSQL: lifecycle, params, tags, metrics, search, compare, artifacts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from weightbase.catalog.schema import MetricBlockRow
from weightbase.errors import Conflict, NotFound, ValidationError
from weightbase.lineage import Node
from weightbase.tracking import (
    MetricFilter,
    MetricHistory,
    RunStatus,
    RunTracker,
)
from weightbase.workspace import Workspace

# -- experiments ---------------------------------------------------------------------


def test_experiments_are_created_listed_and_found(tracker: RunTracker) -> None:
    created = tracker.create_experiment("mnist", description="digits")
    assert created.name == "mnist"
    assert created.description == "digits"
    assert created.created_by == "test-user"
    with pytest.raises(Conflict):
        tracker.create_experiment("mnist")
    assert tracker.create_experiment("mnist", exist_ok=True).id == created.id
    tracker.create_experiment("cifar")
    assert [e.name for e in tracker.experiments()] == ["cifar", "mnist"]
    assert tracker.experiment("mnist") == created
    assert tracker.experiment(created.id) == created
    with pytest.raises(NotFound):
        tracker.experiment("nope")


def test_start_creates_the_experiment_and_records_params_and_tags(
    tracker: RunTracker, workspace: Workspace
) -> None:
    with tracker.start(
        experiment="sweep", name="lr-1", params={"lr": 0.001, "layers": [2, 3]}, tags=["a", "b"]
    ) as run:
        run.log_params(batch_size=32)
        run.set_tags("c", ["d"])
        run.remove_tags("a")
        assert run.status is RunStatus.RUNNING
    info = tracker.get(run.id)
    assert info.experiment == "sweep"
    assert info.name == "lr-1"
    assert dict(info.params) == {"batch_size": 32, "layers": [2, 3], "lr": 0.001}
    assert info.tags == ("b", "c", "d")
    assert info.status is RunStatus.COMPLETED
    assert info.ended_at is not None
    assert info.duration_seconds is not None
    assert info.resources.cpu_hours >= 0
    actions = [entry.action for entry in workspace.audit.entries("run", run.id)]
    assert actions == [
        "run.start",
        "run.log_params",
        "run.set_tags",
        "run.remove_tags",
        "run.status",
    ]
    types = [event.type for event in workspace.events.history()]
    assert types.count("run_started") == 1
    assert "experiment_created" in types
    assert types[-1] == "run_status_changed"


def test_params_cannot_change_once_logged(tracker: RunTracker) -> None:
    with tracker.start(params={"lr": 0.1}) as run:
        run.log_params(lr=0.1)  # the same value again is fine
        with pytest.raises(Conflict, match="params cannot change"):
            run.log_params(lr=0.2)
        with pytest.raises(ValidationError):
            run.log_params({"bad name!": 1})
        with pytest.raises(ValidationError):
            run.log_params(obj=object())
    assert dict(tracker.get(run.id).params) == {"lr": 0.1}


# -- status --------------------------------------------------------------------------


def test_status_transitions(tracker: RunTracker) -> None:
    run = tracker.start("s")
    paused = run.pause("waiting for a GPU")
    assert paused.status is RunStatus.PAUSED
    assert paused.status_reason == "waiting for a GPU"
    with pytest.raises(Conflict, match="paused"):
        run.log({"loss": 1.0})
    assert run.resume().status is RunStatus.RUNNING
    run.log({"loss": 1.0})
    done = run.complete()
    assert done.status is RunStatus.COMPLETED
    assert done.metrics["loss"].count == 1
    with pytest.raises(Conflict):
        tracker.set_status(run.id, RunStatus.RUNNING)
    with pytest.raises(Conflict):
        tracker.set_status(run.id, "failed")
    with pytest.raises(Conflict, match="closed"):
        run.log({"loss": 2.0})


def test_a_paused_run_resumes_from_another_handle(tracker: RunTracker) -> None:
    first = tracker.start("resumable")
    first.log({"loss": 3.0}, step=0)
    first.log({"loss": 2.0}, step=1)
    first.pause()
    first.close()
    with pytest.raises(Conflict, match="resume"):
        tracker.attach(first.id)
    with tracker.resume(first.id) as second:
        second.log({"loss": 1.0})  # continues after the last step
    history = tracker.history(first.id, "loss")
    assert history.steps.tolist() == [0, 1, 2]
    assert tracker.get(first.id).status is RunStatus.COMPLETED


def _train_and_raise(tracker: RunTracker, error: BaseException, started: list[int]) -> None:
    with tracker.start("x") as run:
        started.append(run.id)
        run.log({"loss": 0.5}, step=0)
        raise error


def test_an_exception_in_the_block_ends_the_run(tracker: RunTracker) -> None:
    cases: list[tuple[BaseException, RunStatus, str]] = [
        (RuntimeError("boom"), RunStatus.FAILED, "RuntimeError: boom"),
        (KeyboardInterrupt(), RunStatus.CANCELLED, "interrupted (KeyboardInterrupt)"),
    ]
    for error, status, reason in cases:
        started: list[int] = []
        with pytest.raises(type(error)):
            _train_and_raise(tracker, error, started)
        info = tracker.get(started[0])
        assert info.status is status
        assert info.status_reason == reason
        assert info.metrics["loss"].count == 1  # flushed before ending


def test_cancel_and_fail_from_the_handle_or_the_tracker(tracker: RunTracker) -> None:
    cancelled = tracker.start("x").cancel("not needed")
    assert (cancelled.status, cancelled.status_reason) == (RunStatus.CANCELLED, "not needed")
    run = tracker.start("x")
    tracker.set_status(run.id, "failed", reason="node lost")
    with run:  # already ended elsewhere: the block only lets go
        pass
    assert tracker.get(run.id).status is RunStatus.FAILED
    with pytest.raises(ValidationError):
        tracker.set_status(run.id, "exploded")


def test_unknown_runs_are_not_found(tracker: RunTracker) -> None:
    with pytest.raises(NotFound):
        tracker.get(12345)
    with pytest.raises(NotFound):
        tracker.attach(12345)
    with pytest.raises(NotFound):
        tracker.history(12345, "loss")
    with pytest.raises(NotFound):
        tracker.set_status(12345, "completed")
    with pytest.raises(NotFound):
        tracker.log_params(12345, {"a": 1})
    with pytest.raises(NotFound):
        tracker.compare([12345])
    with pytest.raises(NotFound):
        tracker.artifacts(12345)
    with pytest.raises(ValidationError):
        tracker.get("7")  # type: ignore[arg-type]


# -- metrics -------------------------------------------------------------------------


def test_history_comes_back_as_arrays_in_step_order(tracker: RunTracker) -> None:
    with tracker.start("h") as run:
        for step in (3, 1, 2, 0):
            run.log({"loss": step / 10, "acc": 1 - step / 10}, step=step, epoch=step // 2)
        run.log({"loss": 9.0}, step=1)  # a second point at step 1 is kept, after the first
        run.log_series("lr", [0.1, 0.05, 0.025], steps=[0, 10, 20], epochs=[0, 1, 2])
    history = tracker.history(run.id, "loss")
    assert isinstance(history, MetricHistory)
    assert history.steps.dtype == np.int64
    assert history.values.dtype == np.float64
    assert history.steps.tolist() == [0, 1, 1, 2, 3]
    assert history.values.tolist() == [0.0, 0.1, 9.0, 0.2, 0.3]
    assert history.epochs[:2].tolist() == [0.0, 0.0]
    assert math.isnan(history.epochs[2])  # logged without an epoch
    assert (np.diff(history.times) >= -1).all()
    assert not history.values.flags.writeable
    lr = tracker.history(run.id, "lr")
    assert lr.steps.tolist() == [0, 10, 20]
    assert lr.epochs.tolist() == [0.0, 1.0, 2.0]
    summary = tracker.get(run.id).metrics["loss"]
    assert (summary.last, summary.last_step, summary.count) == (0.3, 3, 5)
    assert (summary.minimum, summary.maximum) == (0.0, 9.0)
    assert tracker.metric_names(run.id) == ["acc", "loss", "lr"]
    with pytest.raises(NotFound, match="no metric"):
        tracker.history(run.id, "never")


def test_default_steps_count_up_per_call(tracker: RunTracker) -> None:
    with tracker.start("steps") as run:
        run.log({"a": 1.0, "b": 1.0})
        run.log({"a": 2.0})
        run.log({"a": 3.0}, step=10)
        run.log_metric("a", 4.0)
        run.log_series("c", [1, 2, 3])
    assert tracker.history(run.id, "a").steps.tolist() == [0, 1, 10, 11]
    assert tracker.history(run.id, "b").steps.tolist() == [0]
    assert tracker.history(run.id, "c").steps.tolist() == [12, 13, 14]


def test_nan_and_inf_are_stored_and_flagged(
    tracker: RunTracker, caplog: pytest.LogCaptureFixture
) -> None:
    with tracker.start("nan") as run:
        run.log({"loss": 1.0}, step=0)
        run.log({"loss": float("nan")}, step=1)
        run.log({"loss": np.float32("inf")}, step=2)
        run.log({"loss": -math.inf}, step=3)
        run.log({"only_nan": math.nan}, step=0)
    history = tracker.history(run.id, "loss")
    assert history.values[0] == 1.0
    assert math.isnan(history.values[1])
    assert history.values[2] == math.inf
    assert history.values[3] == -math.inf
    assert history.nonfinite.tolist() == [False, True, True, True]
    summary = tracker.get(run.id).metrics["loss"]
    assert summary.nonfinite == 3
    assert summary.last == -math.inf
    assert (summary.minimum, summary.maximum) == (1.0, 1.0)
    only_nan = tracker.get(run.id).metrics["only_nan"]
    assert math.isnan(only_nan.last)
    assert only_nan.minimum is None
    assert "non-finite" in caplog.text
    with tracker.catalog.session() as session:
        flagged = session.scalars(
            sa.select(sa.func.sum(MetricBlockRow.nonfinite)).where(MetricBlockRow.run_id == run.id)
        ).one()
    assert flagged == 4
    assert tracker.get(run.id).to_dict()["metrics"]["loss"]["last"] == "-inf"


ODD_NAMES = ["", " leading", "trailing/", "a//b", "semi;colon", "quote'", "new\nline", "x" * 251, 7]


def test_odd_metric_names_are_refused_and_nothing_is_lost(tracker: RunTracker) -> None:
    with tracker.start("names") as run:
        run.log({"good": 1.0}, step=0)
        for name in ODD_NAMES:
            with pytest.raises(ValidationError, match="invalid metric name"):
                run.log({"also_good": 2.0, name: 3.0}, step=1)  # type: ignore[dict-item]
            with pytest.raises(ValidationError):
                run.log_series(name, [1.0])  # type: ignore[arg-type]
        run.log({"good": 4.0}, step=2)
    assert tracker.history(run.id, "good").values.tolist() == [1.0, 4.0]
    assert "also_good" not in tracker.get(run.id).metrics


def test_allowed_names(tracker: RunTracker) -> None:
    names = ["loss", "train/loss", "val acc", "a.b-c_d:e", "_x", "9lives", "x" * 250]
    with tracker.start("names") as run:
        run.log(dict.fromkeys(names, 1.0), step=0)
    assert sorted(tracker.get(run.id).metrics) == sorted(names)


def test_bad_values_steps_and_epochs_are_refused(tracker: RunTracker) -> None:
    with tracker.start("bad") as run:
        for value in ("1.0", None, [1.0], object()):
            with pytest.raises(ValidationError, match="not a number"):
                run.log({"loss": value})
        for step in (-1, 1.5, "3", True, 2**53):
            with pytest.raises(ValidationError):
                run.log({"loss": 1.0}, step=step)  # type: ignore[arg-type]
        for epoch in (-1, math.nan, "1"):
            with pytest.raises(ValidationError):
                run.log({"loss": 1.0}, step=0, epoch=epoch)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            run.log_series("loss", [1.0, 2.0], steps=[1])
        with pytest.raises(ValidationError):
            run.log_series("loss", [1.0], steps=[-5])
        with pytest.raises(ValidationError):
            run.log(["loss", 1.0])  # type: ignore[arg-type]
    assert "loss" not in tracker.get(run.id).metrics


def test_flush_makes_points_durable_and_visible(tracker: RunTracker) -> None:
    slow = RunTracker(tracker.catalog, tracker.store, batch_points=10**6, flush_interval=3600)
    run = slow.start("flush")
    run.log_series("loss", np.linspace(1, 0, 1000))
    with pytest.raises(NotFound):  # still buffered
        tracker.history(run.id, "loss")
    run.flush()
    assert len(tracker.history(run.id, "loss")) == 1000
    run.complete()


def test_finished_runs_have_their_blocks_merged(tracker: RunTracker) -> None:
    small = RunTracker(tracker.catalog, tracker.store, batch_points=10, flush_interval=3600)
    with small.start("compact") as run:
        for step in range(95):
            run.log({"loss": 1 / (step + 1)}, step=step)
        run.flush()

        def blocks() -> int:
            with tracker.catalog.session() as session:
                return session.scalars(
                    sa.select(sa.func.count()).where(MetricBlockRow.run_id == run.id)
                ).one()

        assert blocks() == 10
    assert blocks() == 1
    history = tracker.history(run.id, "loss")
    assert history.steps.tolist() == list(range(95))
    assert tracker.compact(run.id) == 0


def test_a_write_to_an_ended_run_surfaces_on_the_next_call(tracker: RunTracker) -> None:
    owner = tracker.start("late")
    attached = tracker.attach(owner.id)
    owner.complete()
    attached.log({"loss": 1.0})
    with pytest.raises(Conflict, match="takes no more metrics"):
        attached.flush()
    with pytest.raises(Conflict, match="cannot end"):
        attached.complete()
    with pytest.raises(Conflict):
        attached.close()  # the last points could not be written: said, not swallowed
    assert "loss" not in tracker.get(owner.id).metrics


# -- search and compare --------------------------------------------------------------


def _make_runs(tracker: RunTracker) -> list[int]:
    ids = []
    for i in range(5):
        with tracker.start(
            "exp-a" if i < 3 else "exp-b",
            params={"lr": 0.1 * (i + 1), "opt": "adam" if i % 2 else "sgd"},
            tags=["even"] if i % 2 == 0 else ["odd"],
        ) as run:
            run.log({"val/acc": 0.5 + i / 10, "loss": 1.0 - i / 10}, step=0)
            run.log({"val/acc": 0.6 + i / 10}, step=1)
            if i == 4:
                run.pause()
        ids.append(run.id)
    return ids


def test_search_filters_and_pages(tracker: RunTracker) -> None:
    ids = _make_runs(tracker)
    assert [r.id for r in tracker.search()] == ids[::-1]
    assert [r.id for r in tracker.search(experiment="exp-a")] == ids[2::-1]
    assert [r.id for r in tracker.search(status="paused")] == [ids[4]]
    assert [r.id for r in tracker.search(status=["completed", "paused"])] == ids[::-1]
    assert [r.id for r in tracker.search(tags=["odd"])] == [ids[3], ids[1]]
    assert [r.id for r in tracker.search(params={"opt": "adam"})] == [ids[3], ids[1]]
    assert [r.id for r in tracker.search(params={"lr": 0.1})] == [ids[0]]
    assert [r.id for r in tracker.search(metrics=[("val/acc", ">=", 0.85)])] == [ids[4], ids[3]]
    assert [r.id for r in tracker.search(metrics=[MetricFilter("loss", "<", 0.75, of="min")])] == [
        ids[4],
        ids[3],
    ]
    assert tracker.search(metrics=[("never-logged", ">", 0)]).runs == ()
    combined = tracker.search(experiment="exp-a", tags=["even"], metrics=[("val/acc", ">", 0.7)])
    assert [r.id for r in combined] == [ids[2]]

    first = tracker.search(limit=2)
    assert [r.id for r in first] == [ids[4], ids[3]]
    assert first.next_page_token is not None
    second = tracker.search(limit=2, page_token=first.next_page_token)
    third = tracker.search(limit=2, page_token=second.next_page_token)
    assert [r.id for r in second] + [r.id for r in third] == [ids[2], ids[1], ids[0]]
    assert third.next_page_token is None
    assert [r.id for r in tracker.search_all(limit=2)] == ids[::-1]

    with pytest.raises(NotFound):
        tracker.search(experiment="nope")
    with pytest.raises(ValidationError):
        tracker.search(status="sleeping")
    with pytest.raises(ValidationError):
        tracker.search(metrics=[("val/acc", "~", 1)])
    with pytest.raises(ValidationError):
        tracker.search(limit=0)
    with pytest.raises(ValidationError):
        tracker.search(page_token="abc")


def test_compare_puts_runs_side_by_side(tracker: RunTracker) -> None:
    ids = _make_runs(tracker)
    comparison = tracker.compare([ids[0], ids[1]])
    assert comparison.run_ids == (ids[0], ids[1])
    assert comparison.params["opt"] == ("sgd", "adam")
    assert comparison.metrics["val/acc"] == pytest.approx((0.6, 0.7))
    assert set(comparison.differing_params) == {"lr", "opt"}
    table = comparison.to_table()
    assert table[0] == ["", str(ids[0]), str(ids[1])]
    assert ["param:opt", "sgd", "adam"] in table
    assert ["metric:val/acc", "0.6", "0.7"] in table
    assert "param:opt" in str(comparison)
    with tracker.start("other", params={"only_here": True}) as extra:
        pass
    partial = tracker.compare([ids[0], extra.id], metrics=["loss"])
    assert partial.params["only_here"] == (None, True)
    assert partial.metrics == {"loss": (1.0, None)}
    assert partial.to_dict()["metrics"] == {"loss": [1.0, None]}
    with pytest.raises(ValidationError):
        tracker.compare([])


# -- artifacts and lineage -----------------------------------------------------------


def test_artifacts_from_arrays_files_and_folders(tracker: RunTracker, tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_text("accuracy 0.9\n")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "sub" / "b.csv").write_text("x,y\n3,4\n")
    weights = {"w": np.arange(12, dtype=np.float32).reshape(3, 4)}
    with tracker.start("artifacts") as run:
        tensors = run.log_artifact(weights, name="head")
        single = run.log_artifact(report)
        tree = run.log_artifact(folder)
        with pytest.raises(Conflict):
            run.log_artifact(report)
        run.log_artifact(weights, name="head", overwrite=True)
        with pytest.raises(ValidationError):
            run.log_artifact(weights)
        with pytest.raises(NotFound):
            run.log_artifact(tmp_path / "missing.bin")
    assert (tensors.kind, single.kind, tree.kind) == ("tensors", "file", "folder")
    assert tensors.size_bytes == 48
    assert single.size_bytes == len("accuracy 0.9\n")
    assert [a.name for a in tracker.artifacts(run.id)] == ["head", "plots", "report.txt"]
    loaded = tracker.load_artifact(run.id, "head")
    np.testing.assert_array_equal(loaded["w"], weights["w"])
    assert tracker.load_artifact(run.id, "report.txt") == {"report.txt": b"accuracy 0.9\n"}
    assert tracker.load_artifact(run.id, "plots") == {
        "a.csv": b"x,y\n1,2\n",
        "sub/b.csv": b"x,y\n3,4\n",
    }
    usage = tracker.get(run.id).resources
    assert usage.storage_bytes == sum(a.stored_bytes for a in tracker.artifacts(run.id)) > 0
    assert tracker.store.get_ref(f"runs/{run.id}/artifacts/head") == tensors.snapshot_id
    with pytest.raises(NotFound):
        tracker.artifact(run.id, "nope")


def test_runs_link_into_lineage(tracker: RunTracker, workspace: Workspace) -> None:
    with tracker.start("lineage") as run:
        run.link(Node("dataset_version", "42"))
    edges = workspace.lineage.edges(Node("run", str(run.id)))
    assert [(str(e.target), e.relation) for e in edges] == [("dataset_version:42", "trained_on")]


# -- evaluation and convergence through the service ----------------------------------


def test_run_evaluate_logs_final_metrics(tracker: RunTracker) -> None:
    with tracker.start("eval") as run:
        result = run.evaluate([0, 1, 1, 0], y_score=[0.2, 0.9, 0.4, 0.1], step=100)
    assert result.metrics["accuracy"] == 0.75
    metrics = tracker.get(run.id).metrics
    assert metrics["eval/accuracy"].last == 0.75
    assert metrics["eval/auc"].last == 1.0
    assert metrics["eval/f1"].last_step == 100


def test_convergence_of_a_logged_run(tracker: RunTracker) -> None:
    with tracker.start("curves") as run:
        steps = np.arange(200)
        run.log_series("train/loss", np.exp(-steps / 20) + 0.1, steps=steps)
        val_steps = np.arange(0, 200, 10)
        validation = np.exp(-val_steps / 20) + 0.15 + np.maximum(0, val_steps - 100) * 0.004
        run.log_series("val/loss", validation, steps=val_steps)
    report = tracker.convergence(run.id)
    assert report.converged
    assert report.overfitting_risk == "high"
    assert report.suggested_stop is not None
    assert 80 <= report.suggested_stop <= 120
    alone = tracker.convergence(run.id, validation=None)
    assert alone.converged
    assert alone.overfitting_risk == "none"


def test_points_from_several_call_sites_keep_their_order(tracker: RunTracker) -> None:
    with tracker.start("order") as run:
        run.log({"loss": 1.0}, step=0)
        run.log({"loss": 2.0, "acc": 0.5}, step=1)  # another dict shape
        run.log({"loss": 3.0}, step=2)
        run.log({"loss": float("nan"), "acc": 0.75}, step=3)  # the checked path
        run.log({"loss": 5}, step=4)  # an int: the checked path too
        run.log({"acc": 1.0, "loss": 6.0}, step=5)  # same names, other order
    loss = tracker.history(run.id, "loss")
    assert loss.steps.tolist() == [0, 1, 2, 3, 4, 5]
    assert loss.values[[0, 1, 2, 4, 5]].tolist() == [1.0, 2.0, 3.0, 5.0, 6.0]
    assert loss.nonfinite.tolist() == [False, False, False, True, False, False]
    acc = tracker.history(run.id, "acc")
    assert (acc.steps.tolist(), acc.values.tolist()) == ([1, 3, 5], [0.5, 0.75, 1.0])
