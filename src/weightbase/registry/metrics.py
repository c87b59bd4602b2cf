"""Metrics measured on a version (``{"accuracy": 0.91}``): checking, choosing and attaching them.

A metric logged again keeps every value; a version's record shows the latest.
A version registered from a training run keeps only the run's evaluation
metrics (:func:`is_evaluation_metric`) unless told which to keep
(:func:`choose_metrics`): a loss or learning rate of the last step says
nothing about the model's quality.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from weightbase.catalog.schema import VersionMetricRow
from weightbase.errors import ValidationError
from weightbase.registry.queries import VersionLike, find_version
from weightbase.registry.rows import load_version

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.registry.context import RegistryContext
    from weightbase.registry.records import ModelVersion

__all__ = [
    "EVALUATION_PREFIXES",
    "add_metrics",
    "check_dataset_label",
    "check_metrics",
    "choose_metrics",
    "is_evaluation_metric",
    "log_metrics",
]

_METRIC = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./ -]{0,254}\Z")

#: A metric whose name's first word is one of these was measured on held-out data.
EVALUATION_PREFIXES = frozenset({"eval", "evaluation", "val", "valid", "validation", "test"})
_FIRST_WORD = re.compile(r"[/_. -]")


def is_evaluation_metric(name: str) -> bool:
    """Whether ``name`` is an evaluation metric: its first word (up to ``/ _ . -`` or
    a space) is ``eval``, ``evaluation``, ``val``, ``valid``, ``validation`` or ``test``,
    case aside (``val/loss``, ``eval_accuracy``, ``test/f1``, not ``train_loss``)."""
    first = _FIRST_WORD.split(name, maxsplit=1)[0].lower()
    return first in EVALUATION_PREFIXES


def check_dataset_label(dataset: object) -> str:
    """``dataset`` if it names what metrics were measured on: 1 to 255 characters, no controls."""
    if (
        not isinstance(dataset, str)
        or not 0 < len(dataset) <= 255
        or any(ord(char) < 32 or ord(char) == 127 for char in dataset)
    ):
        raise ValidationError(
            f"a metric's dataset is 1 to 255 characters without control characters, not {dataset!r}"
        )
    return dataset


def choose_metrics(
    metrics: Mapping[str, float], keep: Iterable[str] | None = None
) -> dict[str, float]:
    """The ``metrics`` a version keeps: those matching a glob of ``keep``, or without
    ``keep`` the evaluation metrics (:func:`is_evaluation_metric`)."""
    if keep is None:
        return {name: value for name, value in metrics.items() if is_evaluation_metric(name)}
    if isinstance(keep, str | bytes) or not isinstance(keep, Iterable):
        raise ValidationError(
            f"keep_metrics is a list of names or glob patterns, not {type(keep).__name__}"
        )
    patterns = list(keep)
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise ValidationError(
                f"keep_metrics holds names or glob patterns (text), not {pattern!r}"
            )
    return {
        name: value
        for name, value in metrics.items()
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
    }


def check_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """``metrics`` as floats, if every name is valid and every value a finite number."""
    values: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not _METRIC.match(name):
            raise ValidationError(
                f"invalid metric name {name!r}: letters, digits and _ . / - or space, "
                "at most 255 characters",
                metric=name,
            )
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ValidationError(
                f"metric {name!r} must be a number, not {type(value).__name__}", metric=name
            )
        number = float(value)
        if not np.isfinite(number):
            raise ValidationError(f"metric {name!r} is {number}; version metrics must be finite")
        values[name] = number
    return values


def add_metrics(
    session: Session,
    version_id: int,
    values: Mapping[str, float],
    *,
    dataset: str | None = None,
    step: int | None = None,
) -> None:
    """Attach checked ``values`` to version ``version_id`` in the caller's transaction."""
    for metric, value in values.items():
        session.add(
            VersionMetricRow(
                version_id=version_id, name=metric, value=value, dataset=dataset, step=step
            )
        )


def log_metrics(
    context: RegistryContext,
    ref: VersionLike,
    version: str | None,
    metrics: Mapping[str, float],
    *,
    dataset: str | None,
    step: int | None,
) -> ModelVersion:
    """Attach ``metrics`` to a version and record them (``version.metrics``).

    With ``dataset`` they are also kept apart per dataset (``version.dataset_metrics``).
    """
    values = check_metrics(metrics)
    if dataset is not None:
        check_dataset_label(dataset)
    found = find_version(context, ref, version)

    def work(session: Session) -> None:
        add_metrics(session, found.id, values, dataset=dataset, step=step)
        context.models.record(
            session,
            found.model_id,
            "version.metrics",
            after={"version": found.version, "metrics": values, "dataset": dataset},
        )

    context.catalog.write(work)
    return load_version(context, found.id)
