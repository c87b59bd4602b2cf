"""``wb.inference``: what inference servers recorded about the models they serve.

    wb.inference.metrics("digits", environment="staging")   # windows, oldest first
    wb.inference.sessions("writer")                         # sampling configurations used

``weightbase serve`` writes a window per served model every ``metricsInterval``
(:class:`~weightbase.serving.inference_records.InferenceWindow`) and keeps one
session row per model version, operation and set of sampling parameters up to date
(:class:`~weightbase.serving.inference_records.InferenceSession`); the monitoring
of deployed models reads them back from here.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from weightbase.catalog.schema import (
    DeploymentRow,
    InferenceMetricRow,
    InferenceSessionRow,
    ModelRow,
    ModelVersionRow,
)
from weightbase.errors import NotFound, ValidationError
from weightbase.serving.deployment_checks import check_environment
from weightbase.serving.inference_records import InferenceSession, InferenceWindow
from weightbase.serving.runnable_outputs import GenerationParams

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.registry import ModelRegistry

__all__ = ["InferenceLog"]

#: The most windows or sessions one read answers.
MAX_LIMIT = 10_000


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be 1 to {MAX_LIMIT}, not {limit!r}", field="limit")
    return limit


class InferenceLog:
    """Windows of inference metrics and inference sessions, per model version."""

    def __init__(self, catalog: Catalog, *, models: ModelRegistry) -> None:
        self._catalog = catalog
        self._models = models

    def record(
        self,
        windows: Sequence[InferenceWindow] = (),
        sessions: Sequence[InferenceSession] = (),
    ) -> None:
        """Store ``windows`` and create or bring up to date ``sessions`` (by id), at once.

        Each names a model version that exists (``NotFound`` otherwise) and, where it
        served one, a deployment of that model.
        """
        owners: dict[tuple[str, str], tuple[int, int]] = {}
        items: list[InferenceWindow | InferenceSession] = [*windows, *sessions]
        for item in items:
            key = (item.model, item.version)
            if key not in owners:
                found = self._models.version(item.ref)
                owners[key] = (found.model_id, found.id)

        def work(session: Session) -> None:
            for window in windows:
                model_id, version_id = owners[(window.model, window.version)]
                _check_deployment(session, window.deployment_id, model_id)
                session.add(_window_row(window, model_id, version_id))
            for item in sessions:
                model_id, version_id = owners[(item.model, item.version)]
                _check_deployment(session, item.deployment_id, model_id)
                row = session.get(InferenceSessionRow, item.id)
                if row is None:
                    session.add(_session_row(item, model_id, version_id))
                elif row.version_id != version_id or row.server_id != item.server_id:
                    raise ValidationError(
                        f"session {item.id} belongs to another server or version", field="id"
                    )
                else:
                    row.requests, row.tokens = item.requests, item.tokens
                    row.last_request_at = item.last_request

        self._catalog.write(work)

    def metrics(
        self,
        model: str,
        *,
        version: str | None = None,
        environment: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> builtins.list[InferenceWindow]:
        """The model's latest ``limit`` windows, oldest first; of one ``version``, one
        deployment ``environment``, or those that ended after ``since``, where given."""
        limit = _limit(limit)
        if environment is not None:
            check_environment(environment)
        with self._catalog.session() as session:
            query = (
                select(InferenceMetricRow, ModelVersionRow.version, DeploymentRow.environment)
                .join(ModelVersionRow, ModelVersionRow.id == InferenceMetricRow.version_id)
                .outerjoin(DeploymentRow, DeploymentRow.id == InferenceMetricRow.deployment_id)
                .where(InferenceMetricRow.model_id == _model_id(session, model))
            )
            if version is not None:
                query = query.where(ModelVersionRow.version == version)
            if environment is not None:
                query = query.where(DeploymentRow.environment == environment)
            if since is not None:
                query = query.where(InferenceMetricRow.ended_at > since)
            query = query.order_by(
                InferenceMetricRow.ended_at.desc(), InferenceMetricRow.id.desc()
            ).limit(limit)
            found = [_window(row, model, ver, env) for row, ver, env in session.execute(query)]
        return found[::-1]

    def sessions(
        self, model: str, *, version: str | None = None, limit: int = 100
    ) -> builtins.list[InferenceSession]:
        """The model's inference sessions, the most recently used first."""
        limit = _limit(limit)
        with self._catalog.session() as session:
            query = (
                select(InferenceSessionRow, ModelVersionRow.version, DeploymentRow.environment)
                .join(ModelVersionRow, ModelVersionRow.id == InferenceSessionRow.version_id)
                .outerjoin(DeploymentRow, DeploymentRow.id == InferenceSessionRow.deployment_id)
                .where(InferenceSessionRow.model_id == _model_id(session, model))
            )
            if version is not None:
                query = query.where(ModelVersionRow.version == version)
            query = query.order_by(
                InferenceSessionRow.last_request_at.desc(), InferenceSessionRow.id
            ).limit(limit)
            return [_session(row, model, ver, env) for row, ver, env in session.execute(query)]


def _model_id(session: Session, name: str) -> int:
    found = session.scalar(
        select(ModelRow.id).where(ModelRow.name == name, ModelRow.deleted_at.is_(None))
    )
    if found is None:
        raise NotFound(f"no model named {name!r}", model=name)
    return found


def _check_deployment(session: Session, deployment_id: str | None, model_id: int) -> None:
    if deployment_id is None:
        return
    row = session.get(DeploymentRow, deployment_id)
    if row is None or row.model_id != model_id:
        raise NotFound(f"no deployment {deployment_id} of this model", deployment_id=deployment_id)


def _window_row(window: InferenceWindow, model_id: int, version_id: int) -> InferenceMetricRow:
    values: dict[str, Any] = window.to_dict()
    for name in ("model", "version", "environment", "started", "ended"):
        del values[name]
    return InferenceMetricRow(
        model_id=model_id,
        version_id=version_id,
        started_at=window.started,
        ended_at=window.ended,
        **values,
    )


def _window(
    row: InferenceMetricRow, model: str, version: str, environment: str | None
) -> InferenceWindow:
    return InferenceWindow(
        model=model,
        version=version,
        served_as=row.served_as,
        server_id=row.server_id,
        started=row.started_at,
        ended=row.ended_at,
        requests=row.requests,
        errors=row.errors,
        latency_p50_ms=row.latency_p50_ms,
        latency_p95_ms=row.latency_p95_ms,
        latency_p99_ms=row.latency_p99_ms,
        throughput_rps=row.throughput_rps,
        tokens=row.tokens,
        tokens_per_s=row.tokens_per_s,
        memory_bytes=row.memory_bytes,
        cache_hits=row.cache_hits,
        cache_misses=row.cache_misses,
        kv_prefix_hits=row.kv_prefix_hits,
        kv_prefix_misses=row.kv_prefix_misses,
        deployment_id=row.deployment_id,
        environment=environment,
    )


def _session_row(item: InferenceSession, model_id: int, version_id: int) -> InferenceSessionRow:
    params = item.params
    return InferenceSessionRow(
        id=item.id,
        model_id=model_id,
        version_id=version_id,
        deployment_id=item.deployment_id,
        server_id=item.server_id,
        served_as=item.served_as,
        operation=item.operation,
        temperature=None if params is None else params.temperature,
        top_k=None if params is None else params.top_k,
        top_p=None if params is None else params.top_p,
        max_tokens=None if params is None else params.max_tokens,
        stop=None if params is None else list(params.stop),
        seed=None if params is None else params.seed,
        requests=item.requests,
        tokens=item.tokens,
        started_at=item.started,
        last_request_at=item.last_request,
    )


def _session(
    row: InferenceSessionRow, model: str, version: str, environment: str | None
) -> InferenceSession:
    params = None
    if row.max_tokens is not None:
        params = GenerationParams(
            temperature=row.temperature or 0.0,
            top_k=row.top_k,
            top_p=row.top_p,
            max_tokens=row.max_tokens,
            stop=tuple(row.stop or ()),
            seed=row.seed,
        )
    return InferenceSession(
        id=row.id,
        model=model,
        version=version,
        served_as=row.served_as,
        server_id=row.server_id,
        operation=row.operation,
        started=row.started_at,
        last_request=row.last_request_at,
        requests=row.requests,
        tokens=row.tokens,
        params=params,
        deployment_id=row.deployment_id,
        environment=environment,
    )
