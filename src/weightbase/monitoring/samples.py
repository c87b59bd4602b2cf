"""Rows of ``wb.monitoring``'s samples and labels: what a target names, sampled requests
written and read by time window, and late labels joined to them by request id.

Everything here runs in the caller's transaction; :mod:`weightbase.monitoring.service`
opens it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, insert, or_, select

from weightbase.catalog.schema import (
    DeploymentRow,
    ModelRow,
    ModelVersionRow,
    MonitoringLabelRow,
    MonitoringSampleRow,
    utcnow,
)
from weightbase.errors import NotFound, ValidationError
from weightbase.monitoring.records import ObservedRequest, Sample, request_id_of
from weightbase.serving.deployment_rows import deployment_record, version_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.serving.records import Deployment

__all__ = [
    "MAX_LABELS",
    "MAX_LIMIT",
    "MAX_SAMPLES",
    "LabelLike",
    "Target",
    "deployment_of",
    "find_target",
    "input_columns",
    "label_value",
    "parse_labels",
    "prune_samples",
    "read_samples",
    "store_labels",
    "write_samples",
]

#: The most samples one write or one read carries, and the most labels one batch.
MAX_SAMPLES = 10_000
MAX_LIMIT = 10_000
MAX_LABELS = 100_000
#: A label as callers give it: ``(request id, label)`` or ``{"request_id", "label"}``.
LabelLike = tuple[str, Any] | Mapping[str, Any]

_DEPLOYMENT_ID = re.compile(r"[0-9a-f]{32}")
_MAX_LABEL_TEXT = 255


@dataclass(frozen=True, slots=True)
class Target:
    """What a caller names: a model (all its versions), one version, or a deployment (its
    version, and only what it served where ``deployment_id`` filters)."""

    model: str
    model_id: int
    version: str | None = None
    version_id: int | None = None
    deployment_id: str | None = None


def deployment_of(session: Session, deployment_id: str) -> Deployment:
    """The deployment with this id (``NotFound`` otherwise)."""
    found = session.execute(
        select(DeploymentRow, ModelRow.name)
        .join(ModelRow, ModelRow.id == DeploymentRow.model_id)
        .where(DeploymentRow.id == deployment_id, ModelRow.deleted_at.is_(None))
    ).first()
    if found is None:
        raise NotFound(f"no deployment {deployment_id}", deployment_id=deployment_id)
    row, model = found
    return deployment_record(row, model, version_of(session, row.version_id))


def find_target(session: Session, target: str) -> Target:
    """``model``, ``model@version`` (a version or an alias) or a deployment id."""
    if not isinstance(target, str) or not target or len(target) > 512:
        raise ValidationError(
            f"name a model, a model@version or a deployment id, not {target!r}", field="target"
        )
    if _DEPLOYMENT_ID.fullmatch(target):
        row = session.get(DeploymentRow, target)
        if row is not None:
            model = session.get(ModelRow, row.model_id)
            assert model is not None
            version = version_of(session, row.version_id)
            return Target(model.name, model.id, version, row.version_id, row.id)
    name, _, version = target.partition("@")
    model_id = session.scalar(
        select(ModelRow.id).where(ModelRow.name == name, ModelRow.deleted_at.is_(None))
    )
    if model_id is None:
        raise NotFound(f"no model or deployment {target!r}", target=target)
    if not version:
        return Target(name, model_id)
    version_row = session.scalar(
        select(ModelVersionRow).where(
            ModelVersionRow.model_id == model_id,
            ModelVersionRow.version == version,
            ModelVersionRow.deleted_at.is_(None),
        )
    )
    if version_row is None:
        raise NotFound(f"no version {version} of {name}", model=name, version=version)
    return Target(name, model_id, version_row.version, version_row.id)


def write_samples(
    session: Session, samples: Sequence[ObservedRequest], resolve: Mapping[str, Target]
) -> int:
    """Insert ``samples``; ``resolve`` maps each one's target to its model version."""
    rows: list[dict[str, Any]] = []
    for sample in samples:
        target = resolve[sample.target]
        if target.version_id is None:
            raise ValidationError(
                f"a sample names a model version or a deployment, not {sample.target!r}",
                field="target",
            )
        rows.append(
            {
                "model_id": target.model_id,
                "version_id": target.version_id,
                "deployment_id": target.deployment_id,
                "request_id": sample.request_id,
                "at": sample.at,
                "latency_ms": sample.latency_ms,
                "error": sample.error,
                "inputs": sample.inputs,
                "outputs": sample.outputs,
                "truncated": sample.truncated,
            }
        )
    if rows:
        # one executemany, not an ORM object per row: a batch is thousands of samples
        session.execute(insert(MonitoringSampleRow), rows)
    return len(rows)


def read_samples(
    session: Session,
    target: Target,
    *,
    since: datetime | None,
    until: datetime | None,
    after_id: int | None,
    limit: int,
    labeled: bool = False,
) -> list[Sample]:
    """The target's samples in ``[since, until)``, by id from ``after_id``, with labels."""
    query = (
        select(MonitoringSampleRow, ModelVersionRow.version, MonitoringLabelRow.label)
        .join(ModelVersionRow, ModelVersionRow.id == MonitoringSampleRow.version_id)
        .outerjoin(
            MonitoringLabelRow, MonitoringLabelRow.request_id == MonitoringSampleRow.request_id
        )
        .where(MonitoringSampleRow.model_id == target.model_id)
        .order_by(MonitoringSampleRow.id)
        .limit(limit)
    )
    if target.deployment_id is not None:
        # what it served, and what its version answered with no deployment named
        query = query.where(
            or_(
                MonitoringSampleRow.deployment_id == target.deployment_id,
                and_(
                    MonitoringSampleRow.deployment_id.is_(None),
                    MonitoringSampleRow.version_id == target.version_id,
                ),
            )
        )
    elif target.version_id is not None:
        query = query.where(MonitoringSampleRow.version_id == target.version_id)
    if since is not None:
        query = query.where(MonitoringSampleRow.at >= since)
    if until is not None:
        query = query.where(MonitoringSampleRow.at < until)
    if after_id is not None:
        query = query.where(MonitoringSampleRow.id > after_id)
    if labeled:
        query = query.where(MonitoringLabelRow.label.is_not(None))
    return [
        Sample(
            id=row.id,
            model=target.model,
            version=version,
            request_id=row.request_id,
            at=row.at,
            latency_ms=row.latency_ms,
            error=row.error,
            inputs=row.inputs,
            outputs=row.outputs,
            truncated=row.truncated,
            deployment_id=row.deployment_id,
            label=label,
        )
        for row, version, label in session.execute(query)
    ]


def label_value(value: Any) -> str | int | float | bool:
    """A label: a class (text, a whole number, a bool) or a finite number."""
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"a label must be finite, not {value!r}", field="label")
        return value
    if isinstance(value, str) and 0 < len(value) <= _MAX_LABEL_TEXT:
        return value
    raise ValidationError(
        f"a label is a number or text of 1 to {_MAX_LABEL_TEXT} characters, not {value!r}",
        field="label",
    )


def parse_labels(labels: Sequence[LabelLike]) -> dict[str, str | int | float | bool]:
    """``request id → label`` from what callers hand in; the last of a repeated id wins."""
    if isinstance(labels, str | bytes | Mapping) or not isinstance(labels, Sequence):
        raise ValidationError("labels are a list of (request id, label)", field="labels")
    if len(labels) > MAX_LABELS:
        raise ValidationError(f"at most {MAX_LABELS} labels a batch", field="labels")
    found: dict[str, str | int | float | bool] = {}
    for item in labels:
        if isinstance(item, Mapping):
            if "request_id" not in item or "label" not in item:
                raise ValidationError("a label names request_id and label", field="labels")
            request_id, value = item["request_id"], item["label"]
        elif isinstance(item, tuple | list) and len(item) == 2:
            request_id, value = item
        else:
            raise ValidationError(f"a label is (request id, label), not {item!r}", field="labels")
        found[request_id_of(request_id)] = label_value(value)
    return found


def store_labels(session: Session, labels: Mapping[str, Any]) -> int:
    """Write (or overwrite: a corrected label replaces the first) ``labels``; how many meet
    a sampled request."""
    now = utcnow()
    ids = list(labels)
    existing: dict[str, MonitoringLabelRow] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        query = select(MonitoringLabelRow).where(MonitoringLabelRow.request_id.in_(chunk))
        existing.update({row.request_id: row for row in session.scalars(query)})
    matched = 0
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        matched += int(
            session.scalar(
                select(func.count(func.distinct(MonitoringSampleRow.request_id))).where(
                    MonitoringSampleRow.request_id.in_(chunk)
                )
            )
            or 0
        )
    for request_id, value in labels.items():
        row = existing.get(request_id)
        if row is None:
            session.add(MonitoringLabelRow(request_id=request_id, label=value, at=now))
        else:
            row.label, row.at = value, now
    return matched


def prune_samples(session: Session, before: datetime, target: Target | None) -> int:
    """Delete samples taken before ``before`` (of ``target``, where given; otherwise also
    the labels that arrived before it); how many samples went."""
    query = delete(MonitoringSampleRow).where(MonitoringSampleRow.at < before)
    if target is not None and target.deployment_id is not None:
        query = query.where(MonitoringSampleRow.deployment_id == target.deployment_id)
    elif target is not None and target.version_id is not None:
        query = query.where(MonitoringSampleRow.version_id == target.version_id)
    elif target is not None:
        query = query.where(MonitoringSampleRow.model_id == target.model_id)
    removed = session.execute(query.execution_options(synchronize_session=False))
    if target is None:
        session.execute(
            delete(MonitoringLabelRow)
            .where(MonitoringLabelRow.at < before)
            .execution_options(synchronize_session=False)
        )
    return int(getattr(removed, "rowcount", 0) or 0)


def _row(inputs: Any) -> dict[str, Any] | None:
    """One sample's features: a mapping's scalar entries, a flat list's items by index, or
    an Open Inference Protocol request's tensors (``[{"name", "data"}, …]``): one column
    per value, ``NAME`` for a single one, else ``NAME[i]``."""
    scalar = (str, int, float, bool)
    if (
        isinstance(inputs, list)
        and inputs
        and all(isinstance(item, Mapping) and "name" in item and "data" in item for item in inputs)
    ):
        row: dict[str, Any] = {}
        for tensor in inputs:
            data, name = tensor["data"], str(tensor["name"])
            if not isinstance(data, list) or not all(isinstance(v, scalar) for v in data):
                return None
            if len(data) == 1:
                row[name] = data[0]
            else:
                row.update({f"{name}[{index}]": value for index, value in enumerate(data)})
        return row or None
    if isinstance(inputs, Mapping):
        row = {str(key): value for key, value in inputs.items() if isinstance(value, scalar)}
        return row or None
    if isinstance(inputs, list) and inputs and all(isinstance(v, scalar) for v in inputs):
        return {str(index): value for index, value in enumerate(inputs)}
    return None


def input_columns(samples: Sequence[Sample]) -> dict[str, list[Any]]:
    """Samples' inputs as columns: a mapping's scalar entries by key, a flat list's items
    by position (``"0"``, ``"1"``…), an OIP request's tensors by name. Only the columns
    every such sample has are kept (a sample whose inputs were truncated or hold none is
    left out), and a ``prediction`` column where each kept sample's outputs hold one."""
    from weightbase.monitoring.performance import prediction_of

    rows, predictions = [], []
    for sample in samples:
        row = _row(sample.inputs)
        if row is not None:
            rows.append(row)
            predictions.append(prediction_of(sample.outputs))
    if not rows:
        return {}
    shared = [key for key in rows[0] if all(key in row for row in rows[1:])]
    columns = {key: [row[key] for row in rows] for key in shared}
    if "prediction" not in columns and all(p is not None for p in predictions):
        columns["prediction"] = predictions
    return columns
