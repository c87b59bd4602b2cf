"""Tracking and checkpoints for a plain PyTorch training loop, as one context manager.

    with Training(wb, "digits-mlp", model=model, optimizer=opt, scheduler=sched,
                  params={"lr": 1e-3}, dataset="digits@1.0.0",
                  monitor="val_loss", mode="min") as training:
        for epoch in training.epochs(20):          # resumes where a checkpoint left off
            for xb, yb in loader:
                loss = ...
                training.step({"train_loss": loss})
            training.end_epoch({"val_loss": evaluate(model)})
        version = training.register("digits-mlp")  # the best checkpoint, with lineage

Each ``end_epoch`` logs its metrics and, every ``checkpoint_every`` epochs (and
every ``checkpoint_every_steps`` optimizer steps, if set),
stores a checkpoint (model, optimizer, scheduler, RNGs, counters) as a delta of
the previous one. ``resume=True`` picks up the experiment's newest run with the
same name that did not complete (it failed, was cancelled or killed), restores
its latest checkpoint and carries on from the epoch after it, bit-exactly on
CPU; the points the dead attempt logged after that checkpoint are superseded
(kept, hidden from histories and summaries), so each curve has one point per
step. ``resume=<run id>`` names the run (``restore=False`` resumes the run and
its checkpoint series but loads nothing, for frameworks that restore their own
state, as the Trainer callbacks do; their ``restored_step`` supersedes the
points after it). ``register`` makes the best checkpoint's
weights a model version ``trained_on`` the dataset version and
``produced_by`` the run, over the checkpoint's own stored chunks (nothing is
decoded or written again). Each checkpoint is also a catalog row of the run
(:mod:`weightbase.training.records`). ``wb`` is any
:class:`~weightbase.training.ports.TrainingWorkspace`: ``weightbase.open()``'s, or
a remote one with the same API.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from weightbase.errors import NotSupported, ValidationError
from weightbase.lineage import Node
from weightbase.registry.metrics import choose_metrics
from weightbase.tensors.derive import select_prefix
from weightbase.training.checkpoint import Checkpoint, CheckpointManager
from weightbase.training.records import checkpoint_log

if TYPE_CHECKING:
    from weightbase.datasets import DatasetVersion
    from weightbase.registry.records import ModelVersion
    from weightbase.tensors import Snapshot
    from weightbase.training.ports import TrainingRun, TrainingWorkspace

__all__ = ["Training"]

RunT = TypeVar("RunT", bound="TrainingRun")


class Training(Generic[RunT]):
    """One training run of ``model``: its tracking, checkpoints, resume and registration.

    ``wb`` is any :class:`~weightbase.training.ports.TrainingWorkspace`; ``run`` is
    that workspace's own run handle (an ``ActiveRun`` for ``weightbase.open()``).
    """

    def __init__(
        self,
        wb: TrainingWorkspace[RunT],
        experiment: str,
        *,
        model: Any,
        optimizer: Any = None,
        scheduler: Any = None,
        params: Mapping[str, Any] | None = None,
        dataset: DatasetVersion | str | None = None,
        name: str | None = None,
        checkpoint_every: int | None = 1,
        checkpoint_every_steps: int | None = None,
        monitor: str | None = None,
        mode: Literal["min", "max"] = "min",
        keep_last: int | None = 2,
        resume: bool | int = False,
        restore: bool = True,
        system_metrics: bool | float = False,
        restored_step: int | None = None,
        background_checkpoints: bool = True,
    ) -> None:
        if checkpoint_every_steps is not None and checkpoint_every_steps < 1:
            raise ValidationError(
                f"checkpoint_every_steps must be at least 1 (or None), not {checkpoint_every_steps}"
            )
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ValidationError(
                f"checkpoint_every must be at least 1 (or None: no checkpoints), "
                f"not {checkpoint_every}"
            )
        self.wb = wb
        self.experiment = experiment
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.params = dict(params or {})
        self.dataset = wb.datasets.version(dataset) if dataset is not None else None
        self.name = name
        self.checkpoint_every = checkpoint_every
        self.checkpoint_every_steps = checkpoint_every_steps
        self.monitor = monitor
        self.mode = mode
        self.keep_last = keep_last
        self.resume = resume
        self.restore = restore
        self.restored_step = restored_step
        self.system_metrics = system_metrics
        self.step_count = 0
        self.epoch = 0
        self.start_epoch = 0
        self.background_checkpoints = background_checkpoints
        self._restored: Checkpoint | None = None
        #: Seconds the loop was blocked by checkpoints (with background checkpoints: the
        #: copy of the state, and any wait for the previous one to become durable).
        self.checkpoint_seconds = 0.0
        self._run: RunT | None = None
        self._checkpoints: CheckpointManager | None = None

    # -- lifetime ------------------------------------------------------------------------

    def __enter__(self) -> Training[RunT]:
        run_id = self._run_to_resume()
        if run_id is not None:
            # restore first: a checkpoint of another architecture is refused
            # before the run it belongs to is touched
            self._checkpoints = self._manager(run_id)
            progress = (
                self._checkpoints.load(
                    model=self.model, optimizer=self.optimizer, scheduler=self.scheduler
                )
                if self.restore and self._checkpoints.latest() is not None
                else None
            )
            # A restored run logs the steps after its checkpoint again: the dead
            # attempt's points there are superseded, so each curve stays single-valued.
            # Without a checkpoint it starts over; with restore=False the framework
            # restored itself, at the step it says (restored_step), if it says.
            from_step = self.restored_step
            if self.restore:
                from_step = progress.step if progress is not None else 0
            self._run = self.wb.runs.resume(
                run_id, system_metrics=self.system_metrics, from_step=from_step
            )
            if progress is not None:
                self.step_count = progress.step
                self.start_epoch = self.epoch = progress.epoch or 0
                self._restored = progress.checkpoint
            return self
        self._run = self.wb.runs.start(
            self.experiment,
            name=self.name,
            params=self.params,
            system_metrics=self.system_metrics,
        )
        if self.dataset is not None:
            self._run.link(self.wb.datasets.node(self.dataset), "trained_on")
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        run = self._run
        if run is None:
            return
        failed = self._close_checkpoints()
        if failed is not None:
            if exc is None:
                run.fail(f"checkpoint failed: {type(failed).__name__}: {failed}")
                raise failed
            exc.add_note(f"a background checkpoint failed too: {type(failed).__name__}: {failed}")
        if exc is None:
            run.complete()
        elif isinstance(exc, KeyboardInterrupt):
            run.cancel("interrupted")
        else:
            run.fail(f"{type(exc).__name__}: {exc}")

    def _close_checkpoints(self) -> Exception | None:
        """Wait for a background checkpoint in flight; the error it raised, if any."""
        if self._checkpoints is None:
            return None
        try:
            self._checkpoints.close()
        except Exception as failed:  # raised by __exit__, or noted on the error in flight
            return failed
        return None

    def flush(self) -> Checkpoint | None:
        """Wait until a background checkpoint in flight is durable (raising its error);
        returns the last checkpoint stored."""
        if self._checkpoints is not None:
            self._checkpoints.flush()
        return self.last_checkpoint

    @property
    def last_checkpoint(self) -> Checkpoint | None:
        """The last durable checkpoint: stored by this run, or the one it resumed from."""
        saved = self._checkpoints.last_saved if self._checkpoints is not None else None
        return saved if saved is not None else self._restored

    @property
    def run(self) -> RunT:
        if self._run is None:
            raise ValidationError("the training has not started: use it in a `with` block")
        return self._run

    @property
    def checkpoints(self) -> CheckpointManager:
        if self._checkpoints is None:
            self._checkpoints = self._manager(self.run.id)
        return self._checkpoints

    def _manager(self, run_id: int) -> CheckpointManager:
        return CheckpointManager(
            self.wb.store,
            f"runs/{run_id}",
            keep_last=self.keep_last,
            monitor=self.monitor,
            mode=self.mode,
            log=checkpoint_log(self.wb, run_id),
        )

    def _run_to_resume(self) -> int | None:
        if self.resume is False:
            return None
        if self.resume is not True:
            return int(self.resume)
        for run in self.wb.runs.search_all(experiment=self.experiment):  # newest first
            if run.name == self.name and run.status.value != "completed":
                return run.id
        return None

    # -- the loop ------------------------------------------------------------------------

    def epochs(self, total: int) -> Iterator[int]:
        """The epochs still to run: ``range(start, total)``, where a resumed run starts later."""
        for epoch in range(self.start_epoch, total):
            self.epoch = epoch
            yield epoch

    def step(self, metrics: Mapping[str, Any] | None = None, *, steps: int = 1) -> int:
        """Count ``steps`` optimizer steps and log ``metrics`` at the new step; returns it.

        With ``checkpoint_every_steps``, a checkpoint is stored each time the
        count passes a multiple of it. It restores weights, optimizer and RNGs,
        but a run resumed from it starts its epoch again: bit-exact resume is
        from the checkpoints ``end_epoch`` takes.
        """
        if self._checkpoints is not None:
            self._checkpoints.poll()  # a failed background checkpoint is raised here
        before = self.step_count
        self.step_count += steps
        if metrics:
            self.run.log(metrics, step=self.step_count, epoch=self.epoch)
        every = self.checkpoint_every_steps
        if every is not None and self.step_count // every > before // every:
            values = {name: _number(value) for name, value in (metrics or {}).items()}
            self.checkpoint(values, epoch=self.epoch)
        return self.step_count

    def end_epoch(self, metrics: Mapping[str, Any] | None = None) -> Checkpoint | None:
        """Log the epoch's metrics; checkpoint when one is due. Returns the checkpoint made."""
        values = {name: _number(value) for name, value in (metrics or {}).items()}
        if values:
            self.run.log(values, step=self.step_count, epoch=self.epoch)
        done = self.epoch + 1
        if self.checkpoint_every is None or done % self.checkpoint_every:
            return None
        return self.checkpoint(values, epoch=done)

    def checkpoint(
        self, metrics: Mapping[str, float] | None = None, *, epoch: int | None = None
    ) -> Checkpoint | None:
        """Store a checkpoint now (``end_epoch`` calls this when one is due).

        With ``background_checkpoints`` (the default) the state is copied to host
        memory and written in the background: this returns None and the checkpoint
        is ``last_checkpoint`` once durable (:meth:`flush` waits for it). Otherwise it
        returns the checkpoint, stored.
        """
        started = time.perf_counter()
        state = {
            "model": self.model,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "step": self.step_count,
            "epoch": self.epoch + 1 if epoch is None else epoch,
            "metrics": metrics,
        }
        try:
            if self.background_checkpoints:
                self.checkpoints.save_async(**state)
                return None
            return self.checkpoints.save(**state)
        finally:
            self.checkpoint_seconds += time.perf_counter() - started

    # -- the result ------------------------------------------------------------------------

    def register(
        self,
        model_name: str,
        *,
        checkpoint: Checkpoint | Literal["best", "latest"] = "best",
        keep_metrics: Iterable[str] | None = None,
        **push: Any,
    ) -> ModelVersion:
        """Push a checkpoint's model weights as a version of ``model_name``, with lineage.

        The version is ``produced_by`` this run and ``trained_on`` its dataset
        version. Of the checkpoint's metrics it keeps the evaluation ones
        (``val/…``, ``eval_…``, ``test/…``: see
        :func:`~weightbase.registry.metrics.is_evaluation_metric`), or with
        ``keep_metrics`` those matching one of its names or glob patterns
        (``["*"]``: all); ``metrics={...}`` adds values of its own. Other keyword
        arguments go to ``wb.models.push``.
        """
        chosen = checkpoint if isinstance(checkpoint, Checkpoint) else self._choose(checkpoint)
        weights = self._weights(chosen, _entry_metadata(push))
        config = getattr(getattr(self.model, "config", None), "to_dict", None)
        finite = {k: v for k, v in chosen.metrics.items() if math.isfinite(v)}
        metrics = choose_metrics(finite, keep_metrics)
        version = self.wb.models.push(
            model_name,
            weights,
            metrics={**metrics, **push.pop("metrics", {})},
            config=push.pop("config", config() if callable(config) else None),
            **push,
        )
        self.wb.models.link(version, "produced_by", Node("run", str(self.run.id)))
        if self.dataset is not None:
            self.wb.models.link(version, "trained_on", self.wb.datasets.node(self.dataset))
        return version

    def _weights(self, chosen: Checkpoint, entry: Mapping[str, str]) -> Snapshot | dict[str, Any]:
        """The checkpoint's ``model.*`` tensors as a snapshot of their own, named as in the
        model's state dict, over the checkpoint's stored chunks: nothing decoded or written.

        A store that cannot write a manifest (a remote workspace's) gets the decoded
        weights instead, pushed as a state dict (only chunks the server lacks travel).
        """
        store = self.wb.store
        source = store.snapshot(chosen.snapshot_id)
        names = select_prefix(source, "model.")
        try:
            # unreferenced until the push holds it: the store's gc grace period keeps it
            return store.derive(source, names, metadata={"framework": "pytorch", **entry})
        except NotSupported:
            tensors = store.read_torch(source, names.values())
            return {new: tensors[old] for new, old in names.items()}

    def _choose(self, which: str) -> Checkpoint:
        found = self.checkpoints.best() if which == "best" else self.checkpoints.latest()
        if found is None:
            found = self.checkpoints.latest()
        if found is None:
            raise ValidationError(
                "no checkpoint to register: end an epoch with checkpoint_every set, "
                "or call checkpoint()"
            )
        return found


def _entry_metadata(push: Mapping[str, Any]) -> dict[str, str]:
    """The entry point a push names, as the snapshot metadata a push of weights records."""
    target = push.get("entry_point")
    if target is None:
        return {}
    from weightbase.serving.entry_points import METADATA_KEY, parse_entry_point

    return {METADATA_KEY: parse_entry_point(target, push.get("init_args")).to_metadata()}


def _number(value: Any) -> float:
    item = getattr(value, "item", None)
    return float(item() if callable(item) else value)
