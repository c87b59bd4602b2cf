"""Tracking and checkpoints for a Lightning ``Trainer``, as one ``Callback``.

    callback = WeightbaseLightningCallback(wb, "digits-mlp", dataset="digits@1.0.0",
                                           monitor="val_loss", register_as="digits-mlp")
    trainer = lightning.Trainer(max_epochs=10, callbacks=[callback])
    trainer.fit(module, train_loader, val_loader)
    callback.version             # the registered model version

The callback drives a :class:`~weightbase.training.Training`: the run starts in
``on_train_start`` with the module's ``hparams`` as params; the metrics the
module logs with ``self.log`` are logged at ``trainer.global_step`` (step
metrics every ``log_every_n_steps``, epoch and validation metrics at each
epoch's end); every ``checkpoint_every`` epochs (or steps) the module, its
optimizers and schedulers, RNGs and counters are checkpointed; an exception
fails the run (``KeyboardInterrupt`` cancels it) and ``on_fit_end`` completes
it, first registering the best checkpoint when ``register_as`` is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Unpack, get_args

from weightbase.tracking import NAME_PATTERN
from weightbase.training._callback import FrameworkCallback, json_params, needs_extra

with needs_extra("the Lightning callback needs lightning", extra="training"):
    from lightning.pytorch import Callback

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule, Trainer

    from weightbase.training._callback import CallbackOptions
    from weightbase.training.checkpoint import Checkpoint
    from weightbase.training.ports import TrainingRun, TrainingWorkspace

__all__ = ["WeightbaseLightningCallback"]

CheckpointUnit = Literal["epoch", "step"]


class WeightbaseLightningCallback(Callback, FrameworkCallback):
    """Track a Lightning ``fit`` in weightbase, checkpoint it, register its result.

    ``checkpoint_unit`` says what ``checkpoint_every`` counts: ``"epoch"``
    (taken at the end of the training epoch, after its validation, so the
    checkpoint carries ``val_*`` metrics) or ``"step"`` (optimizer steps).
    ``monitor`` names a metric the module logs (``"val_loss"``) that picks the
    best checkpoint; retention keeps the last ``keep_last`` and the best.
    ``log_every_n_steps`` defaults to the Trainer's. With ``resume=True`` a fit
    that restores a Lightning checkpoint (``ckpt_path``) goes on logging into
    the run that checkpoint was taken in; without one, into the experiment's
    newest unfinished run of the same ``name``. The other keywords are those
    both callbacks share (``CallbackOptions``).
    """

    def __init__(
        self,
        wb: TrainingWorkspace[TrainingRun],
        experiment: str,
        *,
        checkpoint_unit: CheckpointUnit = "epoch",
        log_every_n_steps: int | None = None,
        **options: Unpack[CallbackOptions],
    ) -> None:
        self._configure(wb, experiment, checkpoint_unit, get_args(CheckpointUnit), options)
        self.log_every_n_steps = log_every_n_steps
        self._restored_run: int | None = None
        # Lightning keeps every metric's last value in callback_metrics: these sets say
        # which keys are per-step, per-epoch (training) and validation ones, so each
        # value is logged once, at the event that produced it
        self._step_keys: set[str] = set()
        self._epoch_keys: set[str] = set()
        self._val_keys: set[str] = set()
        self._last_logged_step = -1
        self._last_checkpoint_step = -1

    # -- Lightning's checkpoints carry the run id, so a resumed fit finds its run -----------

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.training.run.id} if self.training is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        run_id = state_dict.get("run_id")
        self._restored_run = int(run_id) if run_id is not None else None

    # -- Trainer events --------------------------------------------------------------------

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        # started here, not in on_fit_start: Lightning restores callback state in between
        resume: bool | int = self.resume
        if resume is True and self._restored_run is not None:
            resume = self._restored_run
        self._start(
            pl_module,
            optimizer=_one_or_group(list(trainer.optimizers)),
            scheduler=_one_or_group([config.scheduler for config in trainer.lr_scheduler_configs]),
            params=json_params(dict(getattr(pl_module, "hparams", None) or {})),
            resume=resume,
            restored_step=trainer.global_step,
        )
        self._step_keys, self._epoch_keys, self._val_keys = set(), set(), set()
        self._last_logged_step = self._last_checkpoint_step = -1

    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not self._live:
            return
        step = trainer.global_step
        # set by the Trainer's logger connector; not declared on the class
        every = self.log_every_n_steps or getattr(trainer, "log_every_n_steps", 50)
        if every and step % every == 0 and step != self._last_logged_step:
            self._last_logged_step = step
            metrics = trainer.callback_metrics
            values = {}
            for key, value in metrics.items():
                # "x" duplicates "x_step" when a metric is logged per step and per epoch
                if (
                    key.endswith("_epoch")
                    or f"{key}_step" in metrics
                    or key in self._epoch_keys
                    or key in self._val_keys
                ):
                    continue
                self._step_keys.add(key)
                values[key] = value
            if not values:  # the module logs nothing per step: its loss, then
                loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
                if loss is not None:
                    values["loss"] = loss
            self._log(values, trainer)
        every = self.checkpoint_every
        if (
            self.checkpoint_unit == "step"
            and every is not None
            and step % every == 0
            and step != self._last_checkpoint_step
        ):
            self._checkpoint(trainer, epoch=trainer.current_epoch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._live or trainer.sanity_checking:
            return
        values = self._new_epoch_values(trainer, self._step_keys | self._epoch_keys)
        self._val_keys.update(values)
        self._log(values, trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._live:
            return
        values = self._new_epoch_values(trainer, self._step_keys | self._val_keys)
        self._epoch_keys.update(values)
        self._log(values, trainer)
        done = trainer.current_epoch + 1
        every = self.checkpoint_every
        if self.checkpoint_unit == "epoch" and every is not None and done % every == 0:
            self._checkpoint(trainer, epoch=done)

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        if self._live:
            self._end(exception)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._live:
            return
        try:
            if self.register_as is not None:
                if self._training.checkpoints.latest() is None:
                    self._checkpoint(trainer, epoch=trainer.current_epoch)
                self.version = self._training.register(self.register_as)
        except BaseException as exc:
            self._end(exc)
            raise
        self._end(None)

    # -- internals -----------------------------------------------------------------------

    def _new_epoch_values(self, trainer: Trainer, other: set[str]) -> dict[str, Any]:
        metrics = trainer.callback_metrics
        return {
            key: value
            for key, value in metrics.items()
            if key not in other
            and not key.endswith("_step")
            # "x" duplicates "x_epoch" (or is "x_step"'s stale value before the epoch ends)
            and f"{key}_epoch" not in metrics
            and f"{key}_step" not in metrics
        }

    def _log(self, values: Mapping[str, Any], trainer: Trainer) -> None:
        numbers = {
            key: number
            for key, value in values.items()
            if NAME_PATTERN.match(key) and (number := _number(value)) is not None
        }
        if numbers:
            self._training.run.log(numbers, step=trainer.global_step, epoch=trainer.current_epoch)
            self._latest.update(numbers)

    def _checkpoint(self, trainer: Trainer, *, epoch: int) -> Checkpoint | None:
        training = self._training
        training.step_count = self._last_checkpoint_step = trainer.global_step
        return training.checkpoint(self._latest, epoch=epoch)

    def _end(self, exc: BaseException | None) -> None:
        self._live = False
        self._training.__exit__(
            type(exc) if exc is not None else None,
            exc,
            exc.__traceback__ if exc is not None else None,
        )


class _StateGroup:
    """Several optimizers (or schedulers) saved and restored as one state dict."""

    def __init__(self, members: list[Any]) -> None:
        self.members = members

    def state_dict(self) -> dict[str, Any]:
        return {str(index): member.state_dict() for index, member in enumerate(self.members)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for index, member in enumerate(self.members):
            member.load_state_dict(state[str(index)])


def _one_or_group(members: list[Any]) -> Any:
    if not members:
        return None
    return members[0] if len(members) == 1 else _StateGroup(members)


def _number(value: Any) -> float | None:
    """A metric value as a float; ``None`` for what is not one number (a vector, a string)."""
    numel = getattr(value, "numel", None)
    if callable(numel):
        return float(value.item()) if numel() == 1 else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
