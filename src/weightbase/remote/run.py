"""The handle on a run this process logs into on a server (what a remote ``wb.runs.start`` returns).

    with weightbase.open("http://host:8080", token=token) as wb:
        with wb.runs.start(experiment="mnist", params={"lr": 3e-4}) as run:
            for step in range(10_000):
                run.log({"train/loss": loss}, step=step)   # a list append, as embedded

``log`` costs what it costs embedded: points wait in the run's
:class:`~weightbase.tracking.writer.MetricWriter`, whose thread hands batches
to a :class:`~weightbase.remote.sender.MetricSender` that sends them numbered,
retrying while the server is away. ``flush``, ``pause``, ``end`` and ``close``
wait for the server to have every point, at most ``flush_timeout`` seconds;
past that they raise a ``StorageError`` and change nothing: the run stays
open, its points kept and still being sent, so the call can be made again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from weightbase.errors import StorageError, ValidationError
from weightbase.remote.sender import MetricSender
from weightbase.tracking.capture import forget_open_run, remember_open_run, seed_process
from weightbase.tracking.records import Artifact, Run, RunStatus
from weightbase.tracking.run import SYSTEM_INTERVAL_S, ActiveRun
from weightbase.tracking.system import ResourceMeter, SystemMonitor
from weightbase.tracking.writer import (
    SHUTDOWN_TIMEOUT_S,
    MetricWriter,
    critical_section,
    register_shutdown,
    unregister_shutdown,
)

if TYPE_CHECKING:
    from types import TracebackType

    from weightbase.lineage import Node
    from weightbase.remote.http import Connection
    from weightbase.remote.runs import RemoteRuns
    from weightbase.tensors import Snapshot
    from weightbase.tracking.evaluation import Evaluation

__all__ = ["RemoteRun"]

logger = logging.getLogger("weightbase.remote")


class RemoteRun(ActiveRun):
    """A run on a server that this process logs into: ``ActiveRun``'s methods, over HTTP.

    Made by :class:`~weightbase.remote.runs.RemoteRuns` (``start``, ``resume``,
    ``attach``). Every public method is this class's own (a test checks it);
    the checks and buffering of ``log`` and ``log_series`` are the embedded
    handle's, which touch only the handle's own writer.
    """

    def __init__(
        self,
        host: RemoteRuns,
        connection: Connection,
        run_id: int,
        experiment: str,
        *,
        owner: bool,
        next_step: int,
        system_metrics: bool | float = False,
    ) -> None:  # no super().__init__: its writer would write to a catalog
        self.id = run_id
        self.experiment = experiment
        self.owner = owner
        #: How long ``flush``, ``pause``, ``end`` and ``close`` wait for the server, in seconds.
        self.flush_timeout = host.flush_timeout
        self._runs = host
        self._url = connection.url
        self._next_step = next_step
        self._known: set[str] = set()
        self._warned_nonfinite: set[str] = set()
        self._closed = False
        self._paused = False
        self._pid = os.getpid()
        self._meter = ResourceMeter()
        self.sender = MetricSender(connection, run_id)
        self._writer = MetricWriter(
            self.sender,
            batch_points=host.batch_points,
            flush_interval=host.flush_interval,
            name=f"weightbase-remote-run-{run_id}",
        )
        self._monitor: SystemMonitor | None = None
        try:
            if system_metrics:
                interval = SYSTEM_INTERVAL_S if system_metrics is True else float(system_metrics)
                prefix = "system/" if owner else f"system/p{os.getpid()}/"
                self._monitor = SystemMonitor(
                    self._log_system, interval=interval, prefix=prefix, meter=self._meter
                )
        except BaseException:
            self._writer.close()
            raise
        register_shutdown(self)
        remember_open_run(self)

    def __repr__(self) -> str:
        role = "owner" if self.owner else "attached"
        return f"RemoteRun(id={self.id}, experiment={self.experiment!r}, {role}, {self._url!r})"

    # -- metrics -----------------------------------------------------------------------

    def log(
        self,
        metrics: Mapping[str, Any],
        step: int | None = None,
        epoch: float | None = None,
        *,
        time: float | None = None,
        dataset: str | None = None,
    ) -> None:
        """Log one value per metric at ``step`` (see ``ActiveRun.log``); sent in the background."""
        ActiveRun.log(self, metrics, step, epoch, time=time, dataset=dataset)

    def log_metric(
        self,
        name: str,
        value: Any,
        step: int | None = None,
        epoch: float | None = None,
        *,
        dataset: str | None = None,
    ) -> None:
        """Log one value of one metric (``log({name: value}, step, epoch, dataset=dataset)``)."""
        self.log({name: value}, step, epoch, dataset=dataset)

    def log_series(
        self,
        name: str,
        values: Any,
        *,
        steps: Any = None,
        epochs: Any = None,
        times: Any = None,
        dataset: str | None = None,
    ) -> None:
        """Log many points of one metric from arrays (see ``ActiveRun.log_series``)."""
        ActiveRun.log_series(
            self, name, values, steps=steps, epochs=epochs, times=times, dataset=dataset
        )

    def flush(self, timeout: float | None = None) -> None:
        """Return once the server has stored every point logged so far.

        Waits at most ``timeout`` seconds (default: ``flush_timeout``), then raises
        a ``StorageError``: nothing is dropped, and sending goes on.
        """
        self._check_open()
        with critical_section():
            self._deliver(self.flush_timeout if timeout is None else timeout)

    def _deliver(self, timeout: float) -> None:
        """Every point logged so far stored by the server, or a ``StorageError`` in ``timeout``."""
        if timeout < 0:
            raise ValidationError(f"a flush timeout is at least 0 seconds, not {timeout}")
        # the sender gives up at the deadline, so the writer's flush returns by then (give
        # or take one request), with the sender's error
        self.sender.deadline = time.monotonic() + timeout
        try:
            self._writer.flush()
        finally:
            self.sender.deadline = None

    # -- params, tags, artifacts, lineage ----------------------------------------------

    def log_params(self, params: Mapping[str, Any] | None = None, **more: Any) -> None:
        """Record hyper-parameters (JSON values); changing one already logged is a ``Conflict``."""
        self._check_open()
        with critical_section():
            self._runs.log_params(self.id, {**(params or {}), **more})

    def set_seed(self, seed: int) -> None:
        """Seed ``random``, NumPy and torch here (see ``ActiveRun.set_seed``); tell the server."""
        self._check_open()
        seeded = seed_process(seed)
        with critical_section():
            self._runs.record_seeds(self.id, seeded)

    def _record_seeds(self, seeds: Mapping[str, int]) -> None:
        # seed_everything() called while this handle is open
        if not self._closed and os.getpid() == self._pid:
            with critical_section():
                self._runs.record_seeds(self.id, seeds)

    def set_tags(self, *tags: str | Iterable[str]) -> None:
        """Add tags: ``run.set_tags("baseline", "fp16")`` or ``run.set_tags(["a", "b"])``."""
        self._check_open()
        flat: list[str] = []
        for tag in tags:
            flat.extend([tag] if isinstance(tag, str) else tag)
        with critical_section():
            self._runs.set_tags(self.id, flat)

    def remove_tags(self, *tags: str) -> None:
        """Take tags off the run."""
        self._check_open()
        with critical_section():
            self._runs.remove_tags(self.id, tags)

    def log_artifact(
        self,
        source: str | os.PathLike[str] | Mapping[str, Any] | Snapshot,
        *,
        name: str | None = None,
        overwrite: bool = False,
    ) -> Artifact:
        """Keep a file, a folder, or named arrays with the run; only chunks the server lacks go."""
        self._check_open()
        with critical_section():
            return self._runs.log_artifact(self.id, source, name=name, overwrite=overwrite)

    def link(self, target: Node, relation: str = "trained_on") -> None:
        """Record lineage: this run ``relation`` ``target`` (e.g. trained_on a dataset version)."""
        self._check_open()
        with critical_section():
            self._runs._link(self.id, target, relation)

    def evaluate(
        self,
        y_true: Any,
        y_pred: Any = None,
        *,
        y_score: Any = None,
        prefix: str = "eval/",
        step: int | None = None,
        **options: Any,
    ) -> Evaluation:
        """Final metrics from predictions, computed here and logged to the server."""
        from weightbase.tracking.evaluation import evaluate

        result = evaluate(y_true, y_pred, y_score=y_score, **options)
        self.log({f"{prefix}{name}": value for name, value in result.metrics.items()}, step)
        return result

    # -- status ------------------------------------------------------------------------

    @property
    def status(self) -> RunStatus:
        """The run's status as the server has it now."""
        return self._runs.get(self.id).status

    def info(self) -> Run:
        """The run's record as the server has it now (flush first to see the latest metrics)."""
        return self._runs.get(self.id)

    def pause(self, reason: str | None = None) -> Run:
        """Flush and mark the run paused; ``resume()`` (here or via the tracker) continues it."""
        self._check_owner("pause")
        self._check_open()
        with critical_section():
            self._deliver(self.flush_timeout)
            run = self._runs._settle_status(
                self.id, RunStatus.PAUSED, reason=reason, usage=self._meter.take()
            )
        self._paused = True
        return run

    def resume(self) -> Run:
        """Take the paused run back to running."""
        self._check_owner("resume")
        self._check_open()
        with critical_section():
            run = self._runs._settle_status(self.id, RunStatus.RUNNING, reason=None, usage=None)
        self._paused = False
        return run

    def complete(self) -> Run:
        """End the run as completed."""
        return self.end(RunStatus.COMPLETED)

    def fail(self, reason: str | None = None) -> Run:
        """End the run as failed, saying why."""
        return self.end(RunStatus.FAILED, reason=reason)

    def cancel(self, reason: str | None = None) -> Run:
        """End the run as cancelled."""
        return self.end(RunStatus.CANCELLED, reason=reason)

    def end(self, status: str | RunStatus = RunStatus.COMPLETED, reason: str | None = None) -> Run:
        """Wait for the server to have every point, stop sampling, set a final status, close.

        A server that has not taken every point within ``flush_timeout`` is a
        ``StorageError`` and nothing ends: call ``end`` again. Points the server
        refuses (the run was ended elsewhere…) end the run anyway (as failed,
        saying so, when ``completed`` was asked for) and the refusal is raised.
        """
        self._check_owner("end")
        target = RunStatus.parse(status)
        if target.live:
            raise ValidationError(f"end() takes a final status, not {target.value!r}")
        self._check_open()
        with critical_section():
            write_error = self._stop_logging()
            if write_error is not None and target is RunStatus.COMPLETED:
                target = RunStatus.FAILED
                reason = f"metrics could not be written: {write_error}"
            try:
                run = self._runs._settle_status(
                    self.id, target, reason=reason, usage=self._meter.take()
                )
            except StorageError:
                raise  # the server is away: the handle stays, to end() again
            except BaseException:
                self._release()
                raise
            self._release()
            if write_error is not None:
                raise write_error
        return run

    def close(self) -> None:
        """Send what is left and let go of the run without changing its status.

        Waits for the server as ``flush`` does (a ``StorageError`` leaves the
        handle open); an attached handle's resource use is added to the run's.
        """
        if self._closed or os.getpid() != self._pid:
            return
        with critical_section():
            write_error = self._stop_logging()
            try:
                self._runs.add_usage(self.id, self._meter.take())
            finally:
                self._release()
            if write_error is not None:
                raise write_error

    def _stop_logging(self) -> BaseException | None:
        """Deliver every point, then stop the sampler and the writer; the refusal, if any.

        A ``StorageError`` (not delivered in time) is raised, with the handle as it was.
        """
        if self._writer.closed:  # an earlier end() stopped here; only its status is left
            return None
        try:
            self._deliver(self.flush_timeout)
        except StorageError:
            raise
        except Exception as exc:
            refused: BaseException | None = exc
        else:
            refused = None
        if self._monitor is not None:
            self._monitor.stop()
        try:
            # the sampler's last points; the server just answered, so this is quick
            self.sender.deadline = time.monotonic() + self.flush_timeout
            self._writer.close()
        except Exception as exc:
            refused = refused or exc
        finally:
            self.sender.deadline = None
        return refused

    def _release(self) -> None:
        self._closed = True
        unregister_shutdown(self)
        forget_open_run(self)

    def shutdown(self, reason: str) -> None:
        """At interpreter exit or on SIGTERM: as embedded, waiting at most 30 s for the server.

        If the server cannot take the last points by then they are given up,
        with an error in the log saying how many.
        """
        if self._closed or os.getpid() != self._pid:
            return
        self.flush_timeout = min(self.flush_timeout, SHUTDOWN_TIMEOUT_S)
        try:
            ActiveRun.shutdown(self, reason)
        except StorageError as exc:
            logger.error("run %d: giving up on the server at %s: %s", self.id, self._url, exc)
            self.sender.abandon()
            if self._monitor is not None:
                self._monitor.stop()
            try:
                self._writer.close()  # logs how many points it could not write
            except Exception as error:
                logger.error("run %d: %s", self.id, error)
            self._release()

    # -- context manager ---------------------------------------------------------------

    def __enter__(self) -> RemoteRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        ActiveRun.__exit__(self, exc_type, exc, traceback)

    def _log_system(self, values: dict[str, float], step: int) -> None:
        if not self._closed and not self._paused:
            self._writer.add(values, step, float("nan"), time.time())
