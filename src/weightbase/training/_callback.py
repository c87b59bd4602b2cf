"""What the Trainer and Lightning callbacks share: their settings, written once and checked
once, starting the run they track, and registration."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from weightbase.errors import MissingExtraError, ValidationError
from weightbase.tracking import NAME_PATTERN
from weightbase.training.loop import Training

if TYPE_CHECKING:
    from weightbase.datasets import DatasetVersion
    from weightbase.registry.records import ModelVersion
    from weightbase.training.checkpoint import Checkpoint
    from weightbase.training.ports import TrainingRun, TrainingWorkspace

__all__ = ["CallbackOptions", "FrameworkCallback", "json_params", "needs_extra"]


class CallbackOptions(TypedDict, total=False):
    """The keywords every framework callback takes after ``wb`` and ``experiment``.

    ``name`` (default ``None``), ``params`` (``None``) and ``dataset`` (``None``)
    go to the run; ``checkpoint_every`` (``1``; ``None``: none until the end)
    counts the callback's ``checkpoint_unit``; ``monitor`` (``None``), ``mode``
    (``"min"``) and ``keep_last`` (``2``) pick the best checkpoint and what is
    kept; ``register_as`` (``None``) registers the best one when training ends;
    ``resume`` (``False``) and ``system_metrics`` (``False``) are
    :class:`~weightbase.training.Training`'s.
    """

    name: str | None
    params: Mapping[str, Any] | None
    dataset: DatasetVersion | str | None
    checkpoint_every: int | None
    monitor: str | None
    mode: Literal["min", "max"]
    keep_last: int | None
    register_as: str | None
    resume: bool | int
    system_metrics: bool | float


class FrameworkCallback:
    """The run, checkpoint and registration settings of a framework callback, and ``register``."""

    def _configure(
        self,
        wb: TrainingWorkspace[TrainingRun],
        experiment: str,
        checkpoint_unit: str,
        units: Collection[str],
        options: CallbackOptions,
    ) -> None:
        unknown = sorted(options.keys() - CallbackOptions.__optional_keys__)
        if unknown:  # what a signature that spelled the keywords out would raise
            raise TypeError(
                f"{type(self).__name__}.__init__() got an unexpected keyword argument "
                f"{unknown[0]!r}"
            )
        checkpoint_every = options.get("checkpoint_every", 1)
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ValidationError(
                f"checkpoint_every must be at least 1 (or None), not {checkpoint_every}"
            )
        if checkpoint_unit not in units:
            choices = ", ".join(repr(unit) for unit in units)
            raise ValidationError(
                f"checkpoint_unit must be one of {choices}, not {checkpoint_unit!r}"
            )
        self.wb = wb
        self.experiment = experiment
        self.name = options.get("name")
        self.params = dict(options.get("params") or {})
        self.dataset = options.get("dataset")
        self.checkpoint_every = checkpoint_every
        self.checkpoint_unit = checkpoint_unit
        self.monitor = options.get("monitor")
        self.mode: Literal["min", "max"] = options.get("mode", "min")
        self.keep_last = options.get("keep_last", 2)
        self.register_as = options.get("register_as")
        self.resume = options.get("resume", False)
        self.system_metrics = options.get("system_metrics", False)
        self.training: Training[TrainingRun] | None = None
        self.version: ModelVersion | None = None
        self._live = False
        self._latest: dict[str, float] = {}

    @property
    def run_id(self) -> int:
        """The id of the run this callback tracks (the latest one, after training)."""
        if self.training is None:
            raise ValidationError("training has not started: pass the callback to a Trainer")
        return self.training.run.id

    def register(
        self,
        model_name: str,
        *,
        checkpoint: Checkpoint | Literal["best", "latest"] = "best",
        keep_metrics: Iterable[str] | None = None,
        **push: Any,
    ) -> ModelVersion:
        """Register a checkpoint of the last run (see :meth:`Training.register`)."""
        if self.training is None:
            raise ValidationError("training has not started: nothing to register")
        self.version = self.training.register(
            model_name, checkpoint=checkpoint, keep_metrics=keep_metrics, **push
        )
        return self.version

    def _start(
        self,
        model: Any,
        *,
        optimizer: Any,
        scheduler: Any,
        params: Mapping[str, Any],
        resume: bool | int,
        restored_step: int | None = None,
    ) -> None:
        """Start (or resume) the run, with ``params`` and then the callback's own.

        ``restored_step`` is the step the framework restored (0 for a fresh
        start): a resumed run's points after it are superseded.
        """
        self.training = Training(
            self.wb,
            self.experiment,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            params={**params, **self.params},
            dataset=self.dataset,
            name=self.name,
            checkpoint_every=None,  # the callback decides when
            monitor=self.monitor,
            mode=self.mode,
            keep_last=self.keep_last,
            resume=resume,
            restore=False,  # the framework restores its own state from its own checkpoints
            system_metrics=self.system_metrics,
            restored_step=restored_step,
        )
        self.training.__enter__()
        self._live = True
        self.version = None
        self._latest = {}

    @property
    def _training(self) -> Training[TrainingRun]:
        assert self.training is not None
        return self.training


@contextmanager
def needs_extra(purpose: str, *, extra: str) -> Iterator[None]:
    """Turn an ``ImportError`` in the block into ``MissingExtraError`` naming ``extra``."""
    try:
        yield
    except ImportError:  # pragma: no cover - exercised without the extra
        raise MissingExtraError(
            f"{purpose}: pip install 'weightbase[{extra}]'", extra=extra
        ) from None


def json_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The values that make good params: JSON scalars and flat lists of them, under valid names."""
    kept: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if not isinstance(key, str) or not NAME_PATTERN.match(name):
            continue
        if isinstance(value, list | tuple):
            if all(_scalar(item) for item in value):
                kept[name] = list(value)
        elif value is not None and _scalar(value):
            kept[name] = value
    return kept


def _scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, bool | int | str)
