"""``wb.runs`` of a remote workspace: the tracker's API over HTTP, on each catalog backend.

Against a server in a thread of the test process (``runs_support.threaded_server``);
the restart of a real server process mid-run is in ``test_remote_runs_restart.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.remote.runs_support import Served, threaded_server

from weightbase.errors import Conflict, NotFound, NotSupported, StorageError, ValidationError
from weightbase.lineage import Node
from weightbase.remote import RemoteWorkspace, connect
from weightbase.remote.run import RemoteRun
from weightbase.remote.runs import RemoteRuns
from weightbase.tracking import MetricFilter, RunStatus
from weightbase.tracking.run import ActiveRun
from weightbase.tracking.service import RunTracker


@pytest.fixture
def served(tmp_path: Path, catalog_url: str, weightbase_home: Path) -> Iterator[Served]:
    with threaded_server(tmp_path / "server-home", catalog_url) as running:
        yield running


@pytest.fixture
def remote(served: Served) -> Iterator[RemoteWorkspace]:
    with connect(served.url, token=served.token) as workspace:
        workspace.runs.flush_timeout = 30.0  # type: ignore[attr-defined]
        yield workspace


def _public(cls: type) -> set[str]:
    return {
        name
        for name in dir(cls)
        if not name.startswith("_")
        and (callable(getattr(cls, name)) or isinstance(getattr(cls, name), property))
    }


@pytest.mark.parametrize(
    ("remote_class", "embedded"), [(RemoteRuns, RunTracker), (RemoteRun, ActiveRun)]
)
def test_every_public_method_is_overridden(remote_class: type, embedded: type) -> None:
    """Nothing of the embedded tracker or handle is inherited, so nothing reaches for a catalog."""
    assert issubclass(remote_class, embedded)
    public = _public(embedded)
    assert len(public) >= 20
    inherited = sorted(name for name in public if name not in vars(remote_class))
    assert inherited == [], f"{remote_class.__name__} inherits {inherited}"


def test_a_run_logs_and_reads_back_through_the_server(
    remote: RemoteWorkspace, served: Served
) -> None:
    runs = remote.runs
    with runs.start("remote/basics", name="r1", params={"lr": 0.1}, tags=["a"]) as run:
        assert isinstance(run, RemoteRun)
        for step in range(1000):
            run.log(
                {"train/loss": 1.0 / (step + 1), "train/acc": step / 1000},
                step=step,
                epoch=step / 100,
            )
        run.log({"val/loss": float("nan")}, step=1000)
        run.log_metric("val/loss", 0.25, step=1001)
        run.log_series("series", np.arange(5.0))
        run.log_params({"layers": 2}, dropout=0.1)
        with pytest.raises(Conflict):
            run.log_params(lr=0.5)
        run.set_tags("b", ["c"])
        run.remove_tags("a")
        run.link(Node("dataset_version", "3"))
        run.flush()
        info = run.info()
        assert info.metrics["train/loss"].count == 1000
        assert run.status is RunStatus.RUNNING
    done = runs.get(run.id)
    assert done.status is RunStatus.COMPLETED
    assert done.params == {"lr": 0.1, "layers": 2, "dropout": 0.1}
    assert done.tags == ("b", "c")
    assert done.resources.cpu_hours > 0
    loss = runs.history(run.id, "train/loss")
    assert loss.steps.tolist() == list(range(1000))
    assert loss.values.tolist() == [1.0 / (step + 1) for step in range(1000)]
    assert loss.epochs[10] == pytest.approx(0.1)
    val = runs.history(run.id, "val/loss")
    assert math.isnan(val.values[0])
    assert math.isnan(val.epochs[0])
    assert val.nonfinite.tolist() == [True, False]
    # log_series goes on after the last step logged here
    assert runs.history(run.id, "series").steps.tolist() == [1002, 1003, 1004, 1005, 1006]
    assert runs.metric_names(run.id) == ["series", "train/acc", "train/loss", "val/loss"]
    edges = served.workspace.lineage.edges(Node("run", str(run.id)), direction="out")
    assert [(edge.target, edge.relation) for edge in edges] == [
        (Node("dataset_version", "3"), "trained_on")
    ]
    # every point stored once: the embedded view of the same catalog agrees
    assert served.workspace.runs.history(run.id, "train/acc").values.tolist() == [
        s / 1000 for s in range(1000)
    ]


def test_experiments_search_compare_and_convergence(remote: RemoteWorkspace) -> None:
    runs = remote.runs
    created = runs.create_experiment("remote/search", description="d")
    with pytest.raises(Conflict):
        runs.create_experiment("remote/search")
    assert runs.create_experiment("remote/search", exist_ok=True) == created
    assert runs.experiment("remote/search") == created
    assert runs.experiment(created.id) == created
    with pytest.raises(NotFound):
        runs.experiment("remote/none")
    for index in range(3):
        runs.create_experiment(f"remote/extra-{index}")
    names = [found.name for found in runs.experiments()]
    assert names == sorted(names)
    assert [found.name for found in runs.experiments(limit=2, offset=1)] == names[1:3]
    ids = []
    for index in range(3):
        with runs.start(
            "remote/search", params={"opt": "adam" if index else "sgd"}, tags=["s"]
        ) as run:
            run.log_series("train/loss", np.linspace(1.0, 0.1 * (index + 1), 50))
            run.log_series("val/loss", np.linspace(1.1, 0.2 * (index + 1), 50))
        ids.append(run.id)
    page = runs.search(experiment="remote/search", limit=2)
    assert [found.id for found in page] == ids[::-1][:2]
    rest = runs.search(experiment="remote/search", limit=2, page_token=page.next_page_token)
    assert [found.id for found in rest] == [ids[0]]
    assert rest.next_page_token is None
    assert [r.id for r in runs.search_all(experiment=created.id)] == ids[::-1]
    assert [r.id for r in runs.search_all(params={"opt": "sgd"})] == [ids[0]]
    best = runs.search_all(metrics=[MetricFilter("val/loss", "<", 0.3, of="min")])
    assert [r.id for r in best] == [ids[0]]
    assert [r.id for r in runs.search_all(metrics=[("train/loss", ">=", 0.15)])] == ids[:0:-1]
    assert runs.search_all(status=["failed", RunStatus.CANCELLED]) == []
    assert runs.search_all(status=[]) == []
    compared = runs.compare([ids[0], runs.get(ids[1])], params=["opt"])
    assert compared.params == {"opt": ("sgd", "adam")}
    assert compared.differing_params == ("opt",)
    assert compared.metrics["train/loss"] == (pytest.approx(0.1), pytest.approx(0.2))
    assert runs.compare(ids, metrics=[], params=[]).to_table() == [[""] + [str(i) for i in ids]]
    with pytest.raises(ValidationError):
        runs.compare([])
    report = runs.convergence(ids[0], window=5)
    assert report.points == 50
    assert report.window == 5
    assert runs.convergence(ids[0], validation=None).best_validation is None
    with pytest.raises(ValidationError, match="unknown convergence rule"):
        runs.convergence(ids[0], speed=3)
    assert runs.compact(ids[0]) == 0


def test_artifacts_upload_only_what_the_server_lacks(
    remote: RemoteWorkspace, tmp_path: Path
) -> None:
    runs = remote.runs
    run = runs.start("remote/artifacts")
    weights = {"w": np.arange(10_000, dtype=np.float32)}
    first = run.log_artifact(weights, name="weights")
    assert (first.kind, first.size_bytes) == ("tensors", 40_000)
    sent = remote.store.last_transfer
    with pytest.raises(Conflict):
        run.log_artifact(weights, name="weights")
    again = run.log_artifact(weights, name="weights", overwrite=True)
    assert again.snapshot_id == first.snapshot_id
    assert remote.store.last_transfer is not sent
    assert remote.store.last_transfer.sent_chunks == 0  # type: ignore[union-attr]
    (tmp_path / "report.txt").write_text("accuracy 0.9")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("1,2")
    (folder / "sub" / "b.csv").write_text("3,4")
    assert run.log_artifact(tmp_path / "report.txt").kind == "file"
    assert run.log_artifact(str(folder), name="figures").kind == "folder"
    with pytest.raises(NotFound):
        run.log_artifact(tmp_path / "missing.txt")
    with pytest.raises(ValidationError):
        run.log_artifact({"w": np.ones(2)})
    run.complete()
    assert [a.name for a in runs.artifacts(run.id)] == ["figures", "report.txt", "weights"]
    assert runs.artifact(run.id, "weights") == again
    np.testing.assert_array_equal(runs.load_artifact(run.id, "weights")["w"], weights["w"])
    assert runs.load_artifact(run.id, "report.txt") == {"report.txt": b"accuracy 0.9"}
    assert runs.load_artifact(run.id, "figures") == {"a.csv": b"1,2", "sub/b.csv": b"3,4"}
    assert runs.get(run.id).resources.storage_bytes > 0
    with pytest.raises(NotFound):
        runs.artifact(run.id, "none")


def test_status_moves_attach_resume_and_import(remote: RemoteWorkspace) -> None:
    runs = remote.runs
    owner = runs.start("remote/status")
    owner.log({"loss": 1.0}, step=4)
    owner.flush()
    helper = runs.attach(owner.id)
    assert not helper.owner
    helper.log({"loss": 0.5})  # after the highest step logged so far
    with pytest.raises(Conflict, match="attached"):
        helper.complete()
    helper.close()
    helper.close()  # twice does nothing
    with pytest.raises(Conflict, match="closed"):
        helper.log({"loss": 0.1})
    paused = owner.pause("lunch")
    assert (paused.status, paused.status_reason) == (RunStatus.PAUSED, "lunch")
    with pytest.raises(Conflict, match="paused"):
        owner.log({"loss": 0.4})
    with pytest.raises(Conflict):
        runs.attach(owner.id)
    assert owner.resume().status is RunStatus.RUNNING
    failed = owner.fail("diverged")
    assert (failed.status, failed.status_reason) == (RunStatus.FAILED, "diverged")
    assert runs.history(owner.id, "loss").steps.tolist() == [4, 5]
    again = runs.resume(owner.id)
    again.log({"loss": 0.3})
    assert again.cancel("stop").status is RunStatus.CANCELLED
    assert runs.history(owner.id, "loss").steps.tolist() == [4, 5, 6]
    with pytest.raises(Conflict):
        runs.set_status(owner.id, "paused")
    made = runs.create("remote/status", name="elsewhere", tags="one tag")
    assert made.tags == ("one tag",)
    assert runs.set_status(made.id, "completed", reason="done").ended_at is not None
    imported = runs.import_run(
        "remote/imported",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        ended_at=datetime(2026, 1, 1, 1, tzinfo=UTC),
        params={"lr": 0.01},
        metrics={"loss": [[0, 0.0, 1.7e9, 0.9], [1, float("nan"), 1.7e9 + 1, float("inf")]]},
    )
    assert imported.status is RunStatus.COMPLETED
    assert imported.duration_seconds == 3600
    history = runs.history(imported.id, "loss")
    assert history.values[1] == float("inf")
    assert math.isnan(history.epochs[1])
    with pytest.raises(ValidationError):
        runs.import_run("remote/imported", started_at=datetime.now(UTC), metrics={"x": [1, 2]})
    with pytest.raises(NotFound):
        runs.get(999_999)
    with pytest.raises(ValidationError):
        runs.get("1")  # type: ignore[arg-type]


def test_what_needs_the_server_machine_says_so(remote: RemoteWorkspace) -> None:
    with pytest.raises(NotSupported, match="catalog"):
        remote.runs.catalog  # noqa: B018
    with pytest.raises(NotSupported, match="metric_store"):
        remote.runs.metric_store  # noqa: B018
    assert remote.runs.batch_points == 100_000
    assert remote.runs.flush_interval == 1.0
    assert "RemoteRuns" in repr(remote.runs)


# -- delivery: lost answers, an unreachable server, small bodies --------------------------


def _counts(remote: RemoteWorkspace, run_id: int, name: str) -> dict[int, int]:
    steps = remote.runs.history(run_id, name).steps.tolist()
    return {step: steps.count(step) for step in set(steps)}


def test_a_batch_whose_answer_is_lost_is_stored_once(
    remote: RemoteWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = remote.runs.start("remote/lost", name="lost answers")
    connection = remote.connection
    real = connection.request
    lost: list[str] = []

    def answer_lost(method: str, path: str, **options: Any) -> Any:
        response = real(method, path, **options)
        if "/writers/" in path and path not in lost:
            lost.append(path)  # stored on the server, but the client never hears so
            raise StorageError("connection reset by peer")
        return response

    monkeypatch.setattr(connection, "request", answer_lost)
    for batch in range(5):
        for step in range(batch * 100, (batch + 1) * 100):
            run.log({"loss": float(step)}, step=step)
        run.flush()
    monkeypatch.undo()
    run.complete()
    # each part's first answer was lost (5 flushes: 5 parts, or more if the timer cut one)
    assert len(lost) >= 5
    assert run.sender.retries == run.sender.repeats == len(lost)
    counts = _counts(remote, run.id, "loss")
    assert counts == {step: 1 for step in range(500)}


def test_an_unreachable_server_times_out_a_flush_and_drops_nothing(
    remote: RemoteWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = remote.runs.start("remote/away")
    connection = remote.connection
    real = connection.request

    def unreachable(method: str, path: str, **options: Any) -> Any:
        if "/writers/" in path:
            raise StorageError("cannot reach the weightbase server: connection refused")
        return real(method, path, **options)

    monkeypatch.setattr(connection, "request", unreachable)
    for step in range(300):
        run.log({"loss": float(step)}, step=step)
    with pytest.raises(StorageError, match="nothing was dropped"):
        run.flush(timeout=0.3)
    run.flush_timeout = 0.3
    with pytest.raises(StorageError, match="not acknowledged"):
        run.complete()
    assert remote.runs.get(run.id).status is RunStatus.RUNNING  # nothing ended
    for step in range(300, 400):
        run.log({"loss": float(step)}, step=step)  # still open, still logging
    monkeypatch.undo()
    run.flush_timeout = 30.0
    assert run.complete().status is RunStatus.COMPLETED
    assert _counts(remote, run.id, "loss") == {step: 1 for step in range(400)}


def test_parts_are_halved_for_a_server_that_takes_small_bodies(
    tmp_path: Path, weightbase_home: Path
) -> None:
    with (
        threaded_server(
            tmp_path / "small", f"sqlite:///{tmp_path / 'small.db'}", max_body_bytes=100_000
        ) as small,
        connect(small.url, token=small.token) as remote,
    ):
        run = remote.runs.start("remote/small")
        run.log_series("loss", np.arange(20_000.0))
        run.complete()
        assert run.sender.part_points <= 100_000 // 32
        assert run.sender.points_sent == 20_000
        history = remote.runs.history(run.id, "loss")
        assert history.values.tolist() == list(np.arange(20_000.0))


def test_at_exit_a_run_ends_or_its_handle_gives_up_saying_so(
    remote: RemoteWorkspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    run = remote.runs.start("remote/exit")
    run.log({"loss": 1.0}, step=0)
    run.shutdown("SIGTERM")
    ended = remote.runs.get(run.id)
    assert (ended.status, ended.status_reason) == (RunStatus.FAILED, "terminated by SIGTERM")
    assert ended.metrics["loss"].count == 1

    stuck = remote.runs.start("remote/exit")
    real = remote.connection.request

    def unreachable(method: str, path: str, **options: Any) -> Any:
        if "/writers/" in path:
            raise StorageError("cannot reach the weightbase server: connection refused")
        return real(method, path, **options)

    monkeypatch.setattr(remote.connection, "request", unreachable)
    stuck.log({"loss": 1.0}, step=0)
    stuck.flush_timeout = 0.2
    stuck.shutdown("exit")
    assert "giving up on the server" in caplog.text
    assert "1 points it could not write" in caplog.text
    with pytest.raises(Conflict, match="closed"):
        stuck.log({"loss": 2.0})
    monkeypatch.undo()
    assert remote.runs.get(stuck.id).status is RunStatus.RUNNING  # nothing pretended to end


def test_closing_the_workspace_sends_what_open_runs_hold(served: Served) -> None:
    workspace = connect(served.url, token=served.token)
    run = workspace.runs.start("left-open")
    for step in range(500):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    workspace.close()  # the run is not ended: its points still arrive, its status stays
    with pytest.raises(Conflict, match="closed"):
        run.log({"loss": 0.0}, step=501)  # the handle was let go
    stored = served.workspace.runs.get(run.id)
    assert stored.status is RunStatus.RUNNING
    history = served.workspace.runs.history(run.id, "loss")
    assert len(history.steps) == 500
