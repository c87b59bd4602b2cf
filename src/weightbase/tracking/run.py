"""The handle on a run while this process logs into it (what ``wb.runs.start`` returns).

    with wb.runs.start(experiment="mnist", params={"lr": 3e-4}) as run:
        run.log({"train/loss": 0.42, "train/acc": 0.87}, step=10, epoch=0.1)
        run.log_artifact("confusion.png")

``log`` only checks its input and appends to a buffer; the run's
:class:`~weightbase.tracking.writer.MetricWriter` writes in the background.
A handle that ``start`` or ``resume`` returned owns the run's status; one
from ``attach`` only logs, and lets go on ``close``.
"""

from __future__ import annotations

import logging
import math
import operator
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from weightbase.errors import Conflict, ValidationError
from weightbase.tracking.capture import forget_open_run, remember_open_run, seed_process
from weightbase.tracking.context import RUN_KIND
from weightbase.tracking.records import (
    Artifact,
    Run,
    RunStatus,
    check_series,
    series_key,
)
from weightbase.tracking.system import ResourceMeter, SystemMonitor
from weightbase.tracking.writer import (
    MetricBatch,
    MetricWriter,
    critical_section,
    register_shutdown,
    unregister_shutdown,
)

if TYPE_CHECKING:
    from weightbase.lineage import Node
    from weightbase.tracking.context import RunHost, TrackingContext
    from weightbase.tracking.evaluation import Evaluation

__all__ = ["ActiveRun", "MAX_STEP"]

logger = logging.getLogger(__name__)

#: Steps are whole numbers from 0 up to (not including) 2**53, exact as float64.
MAX_STEP = 2**53
_NAN = float("nan")
#: The default sampling interval of ``system_metrics=True``, seconds.
SYSTEM_INTERVAL_S = 10.0
#: Merge the run's small metric blocks after this many background writes.
COMPACT_EVERY = 256


_FLOATS = {float}


class ActiveRun:
    """A run this process logs into: metrics, params, tags, artifacts, and (if it owns it) status.

    Not made directly: :meth:`RunTracker.start`, :meth:`RunTracker.resume`
    and :meth:`RunTracker.attach` return one. ``host`` is that tracker; the
    handle writes metrics to ``context``'s metric store and lineage to its
    lineage service.
    """

    def __init__(
        self,
        host: RunHost,
        context: TrackingContext,
        run_id: int,
        experiment: str,
        *,
        owner: bool,
        next_step: int,
        system_metrics: bool | float = False,
    ) -> None:
        self.id = run_id
        self.experiment = experiment
        self.owner = owner
        self._host = host
        self._metric_store = context.metric_store
        self._lineage = context.lineage
        self._next_step = next_step
        self._known: set[str] = set()
        self._warned_nonfinite: set[str] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._paused = False
        self._pid = os.getpid()
        self._meter = ResourceMeter()
        self._writes = 0
        self._writer = MetricWriter(
            self._write_batch,
            batch_points=context.batch_points,
            flush_interval=context.flush_interval,
            name=f"weightbase-run-{run_id}",
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
        return f"ActiveRun(id={self.id}, experiment={self.experiment!r}, {role})"

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
        """Log one value per metric at ``step`` (default: one past the last step logged here).

        Values are numbers (Python, NumPy, or 0-d tensors); NaN and ±inf are
        stored as they are and flagged. A bad name or value refuses the whole
        call and keeps what was logged before. ``time`` is Unix seconds (default: now).
        With ``dataset`` (what they were measured on) each metric is its own
        series, ``name@dataset``: one per (metric, dataset).
        """
        if self._closed or self._paused or os.getpid() != self._pid:
            self._check_live()
        if type(metrics) is not dict and not isinstance(metrics, Mapping):
            raise ValidationError(f"metrics must be a mapping, not {type(metrics).__name__}")
        if dataset is not None:
            metrics = _on_dataset(metrics, dataset)
        known = self._known
        if (
            type(metrics) is dict
            and known.issuperset(metrics)
            and set(map(type, metrics.values())) == _FLOATS
            and math.isfinite(sum(metrics.values()))
        ):
            # the hot path, checked in C: names seen before, finite Python floats
            # (a non-finite value, or a sum that overflows, takes the long way)
            values: Mapping[str, float] = metrics
        else:
            values = self._checked(metrics)
        if step is None:
            at = self._next_step
        elif type(step) is int and 0 <= step < MAX_STEP:
            at = step
        else:
            at = _check_step(step)
        if at >= self._next_step:
            self._next_step = at + 1
        when = _now() if time is None else _check_time(time)
        self._writer.add(values, at, _NAN if epoch is None else _check_epoch(epoch), when)

    def _checked(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        """``metrics`` with names checked and values as floats; non-finite ones flagged."""
        values: dict[str, float] = {}
        known = self._known
        for name, value in metrics.items():
            if name not in known:
                check_series(name)
                known.add(name)
            number = value if type(value) is float else _number(name, value)
            if not math.isfinite(number):
                self._flag_nonfinite(name, number)
            values[name] = number
        return values

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
        """Log many points of one metric from arrays (the fast path for bulk logging).

        ``steps`` default to consecutive steps after the last one logged here;
        ``epochs`` to none; ``times`` to now; ``dataset`` as for ``log``.
        """
        self._check_live()
        name = check_series(name) if dataset is None else series_key(name, dataset)
        try:
            value_array = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"values of metric {name!r} are not numbers: {exc}") from exc
        count = value_array.shape[0]
        if count == 0:
            return
        points = np.empty((count, 4), dtype=np.float64)
        if steps is None:
            start = self._next_step
            points[:, 0] = np.arange(start, start + count, dtype=np.float64)
        else:
            step_array = _column(name, "steps", steps, count, np.int64)
            if int(step_array.min()) < 0 or int(step_array.max()) >= MAX_STEP:
                raise ValidationError(f"steps of metric {name!r} must be in [0, 2**53)")
            points[:, 0] = step_array
        points[:, 1] = _NAN if epochs is None else _column(name, "epochs", epochs, count)
        if epochs is not None and not np.isfinite(points[:, 1]).all():
            raise ValidationError(f"epochs of metric {name!r} must be finite numbers")
        points[:, 2] = _now() if times is None else _column(name, "times", times, count)
        points[:, 3] = value_array
        nonfinite = count - int(np.count_nonzero(np.isfinite(value_array)))
        if nonfinite:
            self._flag_nonfinite(name, _NAN, count=nonfinite)
        self._next_step = max(self._next_step, int(points[:, 0].max()) + 1)
        self._writer.add_array(name, points)

    def _write_batch(self, batch: MetricBatch) -> None:
        # Runs on the writer thread. A slow run leaves one small block per flush;
        # merging them now and then keeps reading its history fast while it runs.
        self._metric_store.write(self.id, batch)
        self._writes += 1
        if self._writes % COMPACT_EVERY == 0:
            try:
                self._metric_store.compact(self.id)
            except Exception:
                logger.warning("run %d: merging metric blocks failed", self.id, exc_info=True)

    def _log_system(self, values: dict[str, float], step: int) -> None:
        if not self._closed and not self._paused:
            self._writer.add(values, step, _NAN, _now())

    def _flag_nonfinite(self, name: str, value: float, *, count: int = 1) -> None:
        if name not in self._warned_nonfinite:
            self._warned_nonfinite.add(name)
            logger.warning(
                "run %d: metric %r got %s (%d value(s)); stored and flagged as non-finite",
                self.id,
                name,
                value,
                count,
            )

    def flush(self, timeout: float | None = None) -> None:
        """Return once everything logged so far is durable in the catalog."""
        self._check_open()
        self._writer.flush(timeout)

    # -- params, tags, artifacts, lineage ----------------------------------------------

    def log_params(self, params: Mapping[str, Any] | None = None, **more: Any) -> None:
        """Record hyper-parameters (JSON values); changing one already logged is a ``Conflict``."""
        self._check_open()
        values = {**(params or {}), **more}
        with critical_section():
            self._host.log_params(self.id, values)

    def set_seed(self, seed: int) -> None:
        """Seed ``random``, NumPy and torch (if installed) with ``seed``; record it on the run."""
        self._check_open()
        seeded = seed_process(seed)
        with critical_section():
            self._host.record_seeds(self.id, seeded)

    def _record_seeds(self, seeds: Mapping[str, int]) -> None:
        # seed_everything() called while this handle is open
        if not self._closed and os.getpid() == self._pid:
            with critical_section():
                self._host.record_seeds(self.id, seeds)

    def set_tags(self, *tags: str | Iterable[str]) -> None:
        """Add tags: ``run.set_tags("baseline", "fp16")`` or ``run.set_tags(["a", "b"])``."""
        self._check_open()
        flat: list[str] = []
        for tag in tags:
            flat.extend([tag] if isinstance(tag, str) else tag)
        with critical_section():
            self._host.set_tags(self.id, flat)

    def remove_tags(self, *tags: str) -> None:
        """Take tags off the run."""
        self._check_open()
        with critical_section():
            self._host.remove_tags(self.id, tags)

    def log_artifact(
        self,
        source: str | os.PathLike[str] | Mapping[str, Any],
        *,
        name: str | None = None,
        overwrite: bool = False,
    ) -> Artifact:
        """Keep a file, a folder, or named arrays (``{"weights": array}``) with the run."""
        self._check_open()
        with critical_section():
            return self._host.log_artifact(self.id, source, name=name, overwrite=overwrite)

    def link(self, target: Node, relation: str = "trained_on") -> None:
        """Record lineage: this run ``relation`` ``target`` (e.g. trained_on a dataset version)."""
        self._check_open()
        from weightbase.lineage import Node

        with critical_section():
            self._lineage.add_edge(Node(RUN_KIND, str(self.id)), target, relation)

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
        """Final metrics from predictions (:func:`~weightbase.tracking.evaluate`), logged."""
        from weightbase.tracking.evaluation import evaluate

        result = evaluate(y_true, y_pred, y_score=y_score, **options)
        self.log({f"{prefix}{name}": value for name, value in result.metrics.items()}, step)
        return result

    # -- status ------------------------------------------------------------------------

    @property
    def status(self) -> RunStatus:
        """The run's status as the catalog has it now."""
        return self._host.get(self.id).status

    def info(self) -> Run:
        """The run's record as the catalog has it now (flush first to see the latest metrics)."""
        return self._host.get(self.id)

    def pause(self, reason: str | None = None) -> Run:
        """Flush and mark the run paused; ``resume()`` (here or via the tracker) continues it."""
        self._check_owner("pause")
        self._check_open()
        with critical_section():
            self._writer.flush()
            run = self._host.set_status(
                self.id, RunStatus.PAUSED, reason=reason, usage=self._meter.take()
            )
        self._paused = True
        return run

    def resume(self) -> Run:
        """Take the paused run back to running."""
        self._check_owner("resume")
        self._check_open()
        with critical_section():
            run = self._host.set_status(self.id, RunStatus.RUNNING, reason=None, usage=None)
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
        """Flush, stop sampling, record resource use, set a final status, and close the handle.

        If the metrics cannot be written the run still ends (as failed, saying
        so, when ``completed`` was asked for) and the write error is raised.
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
                run = self._host.set_status(
                    self.id, target, reason=reason, usage=self._meter.take()
                )
            finally:
                self._release()
            if write_error is not None:
                raise write_error
        return run

    def close(self) -> None:
        """Flush and let go of the run without changing its status; closing twice does nothing.

        An attached handle's resource use is added to the run's here.
        """
        if self._closed or os.getpid() != self._pid:
            return
        with critical_section():
            write_error = self._stop_logging()
            try:
                self._host.add_usage(self.id, self._meter.take())
            finally:
                self._release()
            if write_error is not None:
                raise write_error

    def _stop_logging(self) -> BaseException | None:
        if self._monitor is not None:
            self._monitor.stop()
        try:
            self._writer.close()
        except Exception as exc:
            return exc
        return None

    def _release(self) -> None:
        self._closed = True
        unregister_shutdown(self)
        forget_open_run(self)

    def shutdown(self, reason: str) -> None:
        """At interpreter exit or on SIGTERM: flush; an owned, live run ends.

        At a normal exit the run completes (fails if the program died of an
        uncaught exception); on a signal it fails, naming the signal.
        """
        if self._closed or os.getpid() != self._pid:
            return
        if not self.owner or self._paused:
            self.close()
            return
        if reason == "exit":
            crashed = getattr(sys, "last_value", None)
            if crashed is None:
                self.end(RunStatus.COMPLETED)
            else:
                self.end(RunStatus.FAILED, reason=_describe(crashed))
        else:
            self.end(RunStatus.FAILED, reason=f"terminated by {reason}")

    # -- context manager ---------------------------------------------------------------

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._closed:
            return
        if not self.owner or self._paused:
            self.close()
            return
        try:
            live = self.status.live
        except Exception:  # cannot tell: try to end it as this block says
            live = True
        if not live:  # ended from elsewhere (another handle, the tracker)
            self.close()
            return
        if exc is None:
            self.end(RunStatus.COMPLETED)
        elif isinstance(exc, KeyboardInterrupt):
            self.end(RunStatus.CANCELLED, reason="interrupted (KeyboardInterrupt)")
        else:
            try:
                self.end(RunStatus.FAILED, reason=_describe(exc))
            except Exception:
                logger.exception("run %d: could not record its failure", self.id)

    # -- checks ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise Conflict(f"the handle on run {self.id} is closed", run_id=self.id)
        if os.getpid() != self._pid:
            raise Conflict(
                f"this handle on run {self.id} belongs to process {self._pid}; "
                "call RunTracker.attach(run_id) in this process",
                run_id=self.id,
            )

    def _check_live(self) -> None:
        self._check_open()
        if self._paused:
            raise Conflict(f"run {self.id} is paused: resume() it to log", run_id=self.id)

    def _check_owner(self, verb: str) -> None:
        if not self.owner:
            raise Conflict(
                f"this handle is attached to run {self.id} and cannot {verb} it; "
                "the process that started it (or RunTracker.set_status) can",
                run_id=self.id,
            )


_now = time.time


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _on_dataset(metrics: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """``metrics`` keyed by their series on ``dataset``: ``{"accuracy@iris-test": 0.9}``."""
    return {series_key(name, dataset): value for name, value in metrics.items()}


def _number(name: str, value: Any) -> float:
    if isinstance(value, str | bytes) or value is None:
        raise ValidationError(f"metric {name!r} got {value!r}, not a number", metric=name)
    try:
        # a one-element tensor or array: .item() reads it without autograd's warning
        item = getattr(value, "item", None)
        return float(item() if callable(item) else value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValidationError(f"metric {name!r} got {value!r}, not a number", metric=name) from exc


def _check_step(step: Any) -> int:
    if isinstance(step, bool):
        raise ValidationError(f"a step is a whole number, not {step!r}")
    try:
        value = operator.index(step)
    except TypeError:
        raise ValidationError(f"a step is a whole number, not {step!r}") from None
    if not 0 <= value < MAX_STEP:
        raise ValidationError(f"a step must be in [0, 2**53), not {value}")
    return value


def _check_epoch(epoch: Any) -> float:
    if isinstance(epoch, str | bytes | bool):
        raise ValidationError(f"an epoch is a number, not {epoch!r}")
    try:
        value = float(epoch)
    except (TypeError, ValueError):
        raise ValidationError(f"an epoch is a number, not {epoch!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValidationError(f"an epoch must be a finite number ≥ 0, not {epoch!r}")
    return value


def _check_time(when: Any) -> float:
    try:
        value = float(when)
    except (TypeError, ValueError):
        raise ValidationError(f"a time is Unix seconds, not {when!r}") from None
    if not math.isfinite(value):
        raise ValidationError(f"a time must be finite, not {when!r}")
    return value


def _column(
    name: str, what: str, data: Any, count: int, dtype: Any = np.float64
) -> npt.NDArray[Any]:
    try:
        array = np.asarray(data, dtype=dtype).reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValidationError(f"{what} of metric {name!r}: {exc}") from exc
    if array.shape[0] != count:
        raise ValidationError(
            f"{what} of metric {name!r} has {array.shape[0]} entries for {count} values"
        )
    return array
