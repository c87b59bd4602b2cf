"""Tracking and checkpoints for the Hugging Face ``Trainer``, as one ``TrainerCallback``.

    callback = WeightbaseCallback(wb, "sst2-bert", dataset="sst2@1.0.0",
                                  monitor="eval_loss", register_as="sst2-bert")
    trainer = Trainer(model, args, train_dataset=..., eval_dataset=..., callbacks=[callback])
    with callback:               # optional: an exception in train() fails the run
        trainer.train()
    callback.version             # the registered model version

The callback drives a :class:`~weightbase.training.Training`: the run starts in
``on_train_begin`` with the ``TrainingArguments`` and the model's config as
params, every ``on_log`` is logged at ``state.global_step`` (with the Trainer's
fractional epoch), checkpoints go to the run's ``CheckpointManager`` every
``checkpoint_every`` epochs, steps or Trainer saves, and ``on_train_end``
completes the run, first registering the best checkpoint when ``register_as``
is given. Resuming the Trainer's own state is the Trainer's job
(``train(resume_from_checkpoint=...)``); ``resume=True`` continues the
weightbase run and its checkpoint series alongside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Unpack, get_args

from weightbase.errors import ValidationError
from weightbase.tracking import NAME_PATTERN
from weightbase.training._callback import FrameworkCallback, json_params, needs_extra

with needs_extra("the Hugging Face Trainer callback needs transformers", extra="hf"):
    from transformers import TrainerCallback

if TYPE_CHECKING:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from weightbase.training._callback import CallbackOptions
    from weightbase.training.checkpoint import Checkpoint
    from weightbase.training.ports import TrainingRun, TrainingWorkspace

__all__ = ["WeightbaseCallback"]

CheckpointUnit = Literal["epoch", "step", "save"]

# throughput figures are logged, but say nothing about a checkpoint's quality
_SPEED_SUFFIXES = ("_runtime", "_per_second", "total_flos")


class WeightbaseCallback(TrainerCallback, FrameworkCallback):
    """Track a ``transformers.Trainer`` run in weightbase, checkpoint it, register its result.

    ``checkpoint_unit`` says what ``checkpoint_every`` counts: ``"epoch"``
    (after the epoch's logging, evaluation and saving, so the checkpoint carries
    that epoch's eval metrics), ``"step"`` (optimizer steps) or ``"save"`` (the
    Trainer's own saves, following ``save_strategy``). ``checkpoint_every=None``
    stores none until the end, where one is taken if ``register_as`` needs it.
    ``monitor`` names a logged metric (``"eval_loss"``) that picks the best
    checkpoint; retention keeps the last ``keep_last`` and the best. The other
    keywords are those both callbacks share (``CallbackOptions``), and
    ``log_arguments=False`` leaves the ``TrainingArguments`` out of the params.
    """

    def __init__(
        self,
        wb: TrainingWorkspace[TrainingRun],
        experiment: str,
        *,
        checkpoint_unit: CheckpointUnit = "epoch",
        log_arguments: bool = True,
        **options: Unpack[CallbackOptions],
    ) -> None:
        self._configure(wb, experiment, checkpoint_unit, get_args(CheckpointUnit), options)
        self.log_arguments = log_arguments
        self._pending: int | None = None  # epochs done at a checkpoint due but not yet taken
        self._saves = 0

    # -- use as a context manager: the only way to hear of an exception in train() --------

    def __enter__(self) -> WeightbaseCallback:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # the Trainer has no hook for its own failure: a run still live here failed
        # (or was interrupted); without the block, the tracking layer's exit hook ends it
        if self._live and exc is not None:
            self._end(exc_type, exc, tb)

    # -- Trainer events --------------------------------------------------------------------

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        model = kwargs.get("model")
        if model is None:
            raise ValidationError("the Trainer passed no model to on_train_begin")
        params: dict[str, Any] = {}
        if self.log_arguments:
            arguments: dict[str, Any] = args.to_dict()  # type: ignore[no-untyped-call]
            params.update(json_params(arguments))
        to_dict = getattr(getattr(model, "config", None), "to_dict", None)
        if callable(to_dict):
            params.update(json_params(to_dict(), prefix="model/"))
        self._start(
            model,
            optimizer=kwargs.get("optimizer"),
            scheduler=kwargs.get("lr_scheduler"),
            params=params,
            resume=self.resume,
            restored_step=state.global_step,
        )
        self._pending = None
        self._saves = 0

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self._live or not logs:
            return
        values = {
            name: float(value)
            for name, value in logs.items()
            if name != "epoch"
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and NAME_PATTERN.match(name)
        }
        if values:
            self._training.run.log(values, step=state.global_step, epoch=state.epoch)
            self._latest.update(values)

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._flush(state)

    # a checkpoint marked due at a step's or an epoch's end is taken when the next one begins
    on_epoch_begin = on_step_begin

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        every = self.checkpoint_every
        due = every is not None and state.global_step % every == 0
        if self._live and self.checkpoint_unit == "step" and due:
            # taken at the next event, after this step's logging and evaluation
            self._pending = _whole_epochs(state)

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        every = self.checkpoint_every
        if self._live and self.checkpoint_unit == "epoch" and every is not None:
            # the epoch under way counts as done (max_steps may stop one part-way)
            done = max(1, math.ceil((state.epoch or 0.0) - 1e-6))
            if done % every == 0:
                self._pending = done

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._flush(state)  # eval metrics came through on_log just before

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not self._live:
            return
        if self.checkpoint_unit == "save" and self.checkpoint_every is not None:
            self._saves += 1
            if self._saves % self.checkpoint_every == 0:
                self._pending = _whole_epochs(state)
        self._flush(state)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not self._live:
            return
        try:
            self._flush(state)
            if self.register_as is not None:
                if self._training.checkpoints.latest() is None:
                    self._checkpoint(state, _whole_epochs(state))
                self.version = self._training.register(self.register_as)
        except BaseException as exc:
            self._end(type(exc), exc, exc.__traceback__)
            raise
        self._end(None, None, None)

    # -- internals -----------------------------------------------------------------------

    def _flush(self, state: TrainerState) -> None:
        """Take the checkpoint marked due, if one is."""
        epoch, self._pending = self._pending, None
        if self._live and epoch is not None:
            self._checkpoint(state, epoch)

    def _checkpoint(self, state: TrainerState, epoch: int) -> Checkpoint | None:
        training = self._training
        training.step_count = state.global_step
        metrics = {
            name: value
            for name, value in self._latest.items()
            if not name.endswith(_SPEED_SUFFIXES)
        }
        return training.checkpoint(metrics, epoch=epoch)

    def _end(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live = False
        self._pending = None
        self._training.__exit__(exc_type, exc, tb)


def _whole_epochs(state: TrainerState) -> int:
    return int((state.epoch or 0.0) + 1e-6)
