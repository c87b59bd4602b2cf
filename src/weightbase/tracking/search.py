"""Reading runs back: one run, searches over many, metric histories, comparison and convergence.

Searches are keyset-paged, newest first: a page token is the id of the last
run of the page before. Metric filters read the per-metric summaries
(``run_metrics``), never the points.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sqlalchemy import ColumnElement, and_, exists, select

from weightbase.catalog.schema import MetricKeyRow, RunMetricRow, RunParamRow, RunRow, TagRow
from weightbase.errors import NotFound, ValidationError
from weightbase.tracking.context import RUN_KIND
from weightbase.tracking.params import canonical_params, check_tags
from weightbase.tracking.reads import (
    MAX_PAGE,
    check_limit,
    check_run_id,
    experiment_row,
    get_run,
    load_runs,
    run_row,
)
from weightbase.tracking.records import (
    MetricFilter,
    MetricHistory,
    Run,
    RunComparison,
    RunPage,
    RunStatus,
    check_series,
)

if TYPE_CHECKING:
    from weightbase.tracking.context import TrackingContext
    from weightbase.tracking.convergence import ConvergenceReport

__all__ = ["RunSearch"]

# What search_all fills in for the filters it is not given: every run.
_EVERY_RUN: dict[str, Any] = {
    "experiment": None,
    "status": None,
    "tags": (),
    "params": None,
    "metrics": (),
    "name": None,
    "limit": MAX_PAGE,
}


class RunSearch:
    """Runs, their metrics, and comparisons between them, as the catalog has them."""

    def __init__(self, context: TrackingContext) -> None:
        self._context = context

    def get(self, run_id: int) -> Run:
        """A run; ``NotFound`` if there is none with this id."""
        return get_run(self._context, run_id)

    def search(
        self,
        *,
        experiment: str | int | None,
        status: str | RunStatus | Iterable[str | RunStatus] | None,
        tags: Iterable[str],
        params: Mapping[str, Any] | None,
        metrics: Iterable[MetricFilter | Sequence[Any]],
        name: str | None,
        limit: int,
        page_token: str | None,
    ) -> RunPage:
        """One page of the runs that match every filter, newest first."""
        check_limit(limit)
        conditions: list[ColumnElement[bool]] = []
        metric_store = self._context.metric_store
        with self._context.catalog.session() as session:
            if experiment is not None:
                conditions.append(RunRow.experiment_id == experiment_row(session, experiment).id)
            if status is not None:
                statuses = [status] if isinstance(status, str | RunStatus) else list(status)
                conditions.append(RunRow.status.in_([RunStatus.parse(s).value for s in statuses]))
            if name is not None:
                conditions.append(RunRow.name == name)
            conditions += [_has_tag(tag) for tag in check_tags(tags)]
            conditions += [
                _has_param(key, value) for key, value in canonical_params(params or {}).items()
            ]
            filters = [MetricFilter.coerce(item) for item in metrics]
            key_ids = metric_store.key_ids(f.name for f in filters)
            for metric_filter in filters:
                if metric_filter.name not in key_ids:
                    return RunPage((), None)  # nothing ever logged that metric
                conditions.append(_metric_condition(metric_filter, key_ids[metric_filter.name]))
            if page_token is not None:
                conditions.append(RunRow.id < _parse_token(page_token))
            ids = list(
                session.scalars(
                    select(RunRow.id)
                    .where(and_(True, *conditions))
                    .order_by(RunRow.id.desc())
                    .limit(limit + 1)
                )
            )
            more = len(ids) > limit
            ids = ids[:limit]
            runs = load_runs(session, metric_store, ids)
        return RunPage(tuple(runs), str(ids[-1]) if more else None)

    def search_all(self, filters: Mapping[str, Any]) -> list[Run]:
        """Every run matching ``filters`` (those of :meth:`search`), newest first, all pages."""
        query = {**_EVERY_RUN, **filters}
        found: list[Run] = []
        token: str | None = None
        while True:
            page = self.search(**{**query, "page_token": token})
            found.extend(page.runs)
            token = page.next_page_token
            if token is None:
                return found

    def history(self, run_id: int, name: str, *, include_superseded: bool = False) -> MetricHistory:
        """Every point of one metric of a run, ordered by step; ``NotFound`` if none."""
        check_run_id(run_id)
        check_series(name)
        return self._context.metric_store.history(
            run_id, name, include_superseded=include_superseded
        )

    def metric_names(self, run_id: int) -> list[str]:
        """The names of the metrics a run has logged, sorted."""
        with self._context.catalog.session() as session:
            run_row(session, run_id)
            names = session.scalars(
                select(MetricKeyRow.name)
                .join(RunMetricRow, RunMetricRow.key_id == MetricKeyRow.id)
                .where(RunMetricRow.run_id == run_id)
                .order_by(MetricKeyRow.name)
            )
            return list(names)

    def compact(self, run_id: int) -> int:
        """Merge a run's metric blocks; the number of blocks removed."""
        check_run_id(run_id)
        return self._context.metric_store.compact(run_id)

    def compare(
        self,
        runs: Iterable[int | Run],
        *,
        metrics: Iterable[str] | None,
        params: Iterable[str] | None,
        include_system: bool,
    ) -> RunComparison:
        """Runs side by side: the params and latest metric values asked for (``None``: all)."""
        ids = [run.id if isinstance(run, Run) else run for run in runs]
        if not ids:
            raise ValidationError("compare needs at least one run")
        for run_id in ids:
            check_run_id(run_id)
        with self._context.catalog.session() as session:
            loaded = {
                run.id: run
                for run in load_runs(session, self._context.metric_store, list(dict.fromkeys(ids)))
            }
        missing = [run_id for run_id in ids if run_id not in loaded]
        if missing:
            raise NotFound(f"no run {missing[0]}", run_id=missing[0])
        ordered = [loaded[run_id] for run_id in ids]
        param_names = (
            sorted({key for run in ordered for key in run.params})
            if params is None
            else list(params)
        )
        metric_names = (
            sorted(
                {
                    key
                    for run in ordered
                    for key in run.metrics
                    if include_system or not key.startswith("system/")
                }
            )
            if metrics is None
            else list(metrics)
        )
        param_table = {key: tuple(run.params.get(key) for run in ordered) for key in param_names}
        metric_table = {
            key: tuple(run.metrics[key].last if key in run.metrics else None for run in ordered)
            for key in metric_names
        }
        differing = tuple(
            key
            for key, values in param_table.items()
            if len({json.dumps(value, sort_keys=True) for value in values}) > 1
        )
        return RunComparison(
            run_ids=tuple(ids),
            run_names=tuple(run.name for run in ordered),
            params=param_table,
            metrics=metric_table,
            differing_params=differing,
        )

    def convergence(
        self,
        run_id: int,
        *,
        train: str,
        validation: str | None,
        mode: Literal["min", "max"],
        rules: Mapping[str, Any],
    ) -> ConvergenceReport:
        """Convergence analysis of a run's curves: by epoch where every point has one, else step."""
        from weightbase.tracking.convergence import analyze

        train_history = self.history(run_id, train)
        validation_history = None
        if validation is not None:
            try:
                validation_history = self.history(run_id, validation)
            except NotFound:
                if validation != "val/loss":  # the default: a run may have no validation
                    raise
        histories = (
            [train_history] if validation_history is None else [train_history, validation_history]
        )
        # Epochs when every point has one, else steps: the report speaks in those units.
        use_epochs = all(bool(np.isfinite(h.epochs).all()) for h in histories)

        def x_of(history: MetricHistory) -> Any:
            return history.epochs if use_epochs else history.steps

        return analyze(
            train_history.values,
            None if validation_history is None else validation_history.values,
            train_x=x_of(train_history),
            validation_x=None if validation_history is None else x_of(validation_history),
            mode=mode,
            **rules,
        )


def _parse_token(token: str) -> int:
    try:
        value = int(token)
    except (TypeError, ValueError):
        raise ValidationError(f"not a page token from this search: {token!r}") from None
    if value < 1:
        raise ValidationError(f"not a page token from this search: {token!r}")
    return value


def _has_tag(tag: str) -> ColumnElement[bool]:
    return exists().where(
        TagRow.entity_kind == RUN_KIND, TagRow.entity_id == RunRow.id, TagRow.tag == tag
    )


def _has_param(key: str, value: str) -> ColumnElement[bool]:
    return exists().where(
        RunParamRow.run_id == RunRow.id, RunParamRow.key == key, RunParamRow.value == value
    )


def _metric_condition(metric_filter: MetricFilter, key_id: int) -> ColumnElement[bool]:
    column = {
        "last": RunMetricRow.last_value,
        "min": RunMetricRow.min_value,
        "max": RunMetricRow.max_value,
    }[metric_filter.of]
    value = float(metric_filter.value)
    comparison = {
        "<": column < value,
        "<=": column <= value,
        ">": column > value,
        ">=": column >= value,
        "==": column == value,
        "!=": column != value,
    }[metric_filter.op]
    return exists().where(
        RunMetricRow.run_id == RunRow.id,
        RunMetricRow.key_id == key_id,
        comparison,
    )
