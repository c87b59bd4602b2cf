"""What the Trainer and Lightning callbacks share: settings, checked once, and registration."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Literal

from weightbase.errors import ValidationError
from weightbase.tracking import NAME_PATTERN

if TYPE_CHECKING:
    from weightbase.datasets.service import DatasetVersion
    from weightbase.registry.records import ModelVersion
    from weightbase.training.checkpoint import Checkpoint
    from weightbase.training.loop import Training
    from weightbase.workspace import Workspace

__all__ = ["FrameworkCallback", "json_params"]


class FrameworkCallback:
    """The run, checkpoint and registration settings of a framework callback, and ``register``."""

    def _configure(
        self,
        wb: Workspace,
        experiment: str,
        *,
        name: str | None,
        params: Mapping[str, Any] | None,
        dataset: DatasetVersion | str | None,
        checkpoint_every: int | None,
        checkpoint_unit: str,
        units: Collection[str],
        monitor: str | None,
        mode: Literal["min", "max"],
        keep_last: int | None,
        register_as: str | None,
        resume: bool | int,
        system_metrics: bool | float,
    ) -> None:
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
        self.name = name
        self.params = dict(params or {})
        self.dataset = dataset
        self.checkpoint_every = checkpoint_every
        self.checkpoint_unit = checkpoint_unit
        self.monitor = monitor
        self.mode: Literal["min", "max"] = mode
        self.keep_last = keep_last
        self.register_as = register_as
        self.resume = resume
        self.system_metrics = system_metrics
        self.training: Training | None = None
        self.version: ModelVersion | None = None
        self._live = False
        self._latest: dict[str, float] = {}

    def register(
        self,
        model_name: str,
        *,
        checkpoint: Checkpoint | Literal["best", "latest"] = "best",
        **push: Any,
    ) -> ModelVersion:
        """Register a checkpoint of the last run (see :meth:`Training.register`)."""
        if self.training is None:
            raise ValidationError("training has not started: nothing to register")
        self.version = self.training.register(model_name, checkpoint=checkpoint, **push)
        return self.version

    @property
    def _training(self) -> Training:
        assert self.training is not None
        return self.training


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
