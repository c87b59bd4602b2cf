"""Metric storage in the catalog: interned names, packed blocks of points, per-metric summaries.

A metric series is stored as blocks (``metric_blocks``): each row holds many
consecutive points of one metric of one run as little-endian arrays, so a
background write of 100,000 points is a handful of rows, and reading a
20,000-point history is one indexed range scan and a ``numpy.frombuffer``.
``run_metrics`` keeps each metric's latest point, finite extremes and counts,
updated in the same transaction, for searching and comparing runs in SQL. A
finished run's blocks are merged (:meth:`MetricStore.compact`). A numbered
batch (a remote run's) also records its writer's sequence in ``metric_writers``
in that transaction, so a batch delivered twice is stored once. A run resumed
from a checkpoint marks the blocks its dead attempt logged past that step
``superseded`` (:meth:`MetricStore.supersede`): kept, left out of history and
summaries unless asked for.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import case, delete, insert, select, update

from weightbase.catalog.rows import dialect_insert
from weightbase.catalog.schema import (
    MetricBlockRow,
    MetricKeyRow,
    MetricWriterRow,
    RunMetricRow,
    RunRow,
    utcnow,
)
from weightbase.errors import Conflict, NotFound, ValidationError
from weightbase.tracking.records import MetricHistory, MetricSummary

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.tracking.writer import MetricBatch

__all__ = ["BLOCK_POINTS", "MetricStore", "check_resume_step"]

#: The most points one stored block holds (4 arrays of 8-byte values: 2 MiB).
BLOCK_POINTS = 65_536

_NAN = float("nan")
_WRITER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
_FLAG_FINITE, _FLAG_NAN, _FLAG_POS_INF, _FLAG_NEG_INF = 0, 1, 2, 3


def _flag(value: float) -> int:
    if math.isnan(value):
        return _FLAG_NAN
    if value == float("inf"):
        return _FLAG_POS_INF
    if value == float("-inf"):
        return _FLAG_NEG_INF
    return _FLAG_FINITE


def _unflag(value: float | None, flag: int) -> float:
    if flag == _FLAG_NAN:
        return _NAN
    if flag == _FLAG_POS_INF:
        return float("inf")
    if flag == _FLAG_NEG_INF:
        return float("-inf")
    return _NAN if value is None else float(value)


class MetricStore:
    """Reads and writes metric points for runs in one catalog; metric names interned once."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._ids: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()

    # -- metric names ----------------------------------------------------------------

    def key_ids(self, names: Iterable[str], *, create: bool = False) -> dict[str, int]:
        """The ids of ``names`` (valid names, checked by the caller); new ones made if ``create``.

        Names that do not exist (and are not created) are left out.
        """
        wanted = set(names)
        with self._lock:
            found = {name: self._ids[name] for name in wanted if name in self._ids}
        missing = sorted(wanted - found.keys())
        if missing:
            with self._catalog.session() as session:
                rows = self._select_keys(session, missing)
            if create and len(rows) < len(missing):
                absent = sorted(set(missing) - {name for name, _ in rows})
                rows += self._catalog.write(lambda session: self._insert_keys(session, absent))
            self._remember(rows)
            found.update(rows)
        return found

    def _remember(self, keys: Iterable[tuple[str, int]]) -> None:
        """Cache ``(name, key id)`` pairs both ways."""
        with self._lock:
            for name, key_id in keys:
                self._ids[name] = key_id
                self._names[key_id] = name

    @staticmethod
    def _select_keys(session: Session, names: Sequence[str]) -> list[tuple[str, int]]:
        statement = select(MetricKeyRow.name, MetricKeyRow.id).where(MetricKeyRow.name.in_(names))
        return [(name, key_id) for name, key_id in session.execute(statement)]

    def _insert_keys(self, session: Session, names: Sequence[str]) -> list[tuple[str, int]]:
        session.execute(
            dialect_insert(session)(MetricKeyRow).on_conflict_do_nothing(index_elements=["name"]),
            [{"name": name} for name in names],
        )
        return self._select_keys(session, names)

    def key_names(self, session: Session, key_ids: Iterable[int]) -> dict[int, str]:
        """Names of metric key ids (from the cache, else the catalog)."""
        wanted = set(key_ids)
        with self._lock:
            known = {key_id: self._names[key_id] for key_id in wanted if key_id in self._names}
        missing = wanted - known.keys()
        if missing:
            statement = select(MetricKeyRow.id, MetricKeyRow.name).where(
                MetricKeyRow.id.in_(missing)
            )
            rows = [(key_id, name) for key_id, name in session.execute(statement)]
            self._remember((name, key_id) for key_id, name in rows)
            known.update(rows)
        return known

    # -- writing ---------------------------------------------------------------------

    def write(
        self,
        run_id: int,
        batch: MetricBatch,
        *,
        writer: str | None = None,
        sequence: int | None = None,
    ) -> bool:
        """Store a batch of points for a running run, in one transaction; False if it was not.

        With ``writer`` and ``sequence`` (numbered from 1 by that writer) the batch
        is stored at most once: one whose sequence is not above the highest stored
        from that writer was stored before (a retry after a lost answer) and is
        skipped. ``NotFound`` if the run does not exist; ``Conflict`` if it is not
        running (unless the batch is such a repeat).
        """
        if (writer is None) != (sequence is None):
            raise ValidationError("a batch names both its writer and its sequence, or neither")
        if not batch and writer is None:
            return False
        key_ids = self.key_ids(batch, create=True)
        blocks: list[dict[str, Any]] = []
        summaries: list[dict[str, Any]] = []
        for name, points in batch.items():
            key_id = key_ids[name]
            for start in range(0, points.shape[0], BLOCK_POINTS):
                blocks.append(_block(run_id, key_id, points[start : start + BLOCK_POINTS]))
            summaries.append(_summary(run_id, key_id, points))
        # One lock order for every writer, so concurrent upserts cannot deadlock.
        summaries.sort(key=lambda row: int(row["key_id"]))

        def work(session: Session) -> bool:
            # a repeat is answered as one even once the run has ended
            if writer is not None and sequence is not None:
                if session.get(RunRow, run_id) is None:
                    raise NotFound(f"no run {run_id}", run_id=run_id)
                if not _claim(session, run_id, writer, sequence):
                    return False
            _check_running(session, run_id)
            if blocks:
                session.execute(insert(MetricBlockRow), blocks)
                session.execute(_upsert_summaries(session), summaries)
            return True

        return self._catalog.write(work)

    def writer_sequence(self, run_id: int, writer: str) -> int:
        """The highest batch sequence stored from ``writer`` into ``run_id`` (0: none yet)."""
        with self._catalog.session() as session:
            found = session.execute(
                select(MetricWriterRow.sequence).where(
                    MetricWriterRow.run_id == run_id, MetricWriterRow.writer_id == writer
                )
            ).scalar()
            if found is None and session.get(RunRow, run_id) is None:
                raise NotFound(f"no run {run_id}", run_id=run_id)
        return int(found or 0)

    def compact(self, run_id: int) -> int:
        """Merge the small blocks of each metric of ``run_id``; how many blocks went.

        Blocks of fewer than ``BLOCK_POINTS // 2`` points (what time-driven
        flushes of a slow run leave) are merged, a group of at most
        ``BLOCK_POINTS`` points at a time, so the work stays bounded however
        long the run. Safe while others write: only the blocks read are replaced.
        """

        def work(session: Session) -> int:
            small = session.execute(
                select(MetricBlockRow.key_id, MetricBlockRow.id, MetricBlockRow.count)
                .where(
                    MetricBlockRow.run_id == run_id,
                    MetricBlockRow.count < BLOCK_POINTS // 2,
                    MetricBlockRow.superseded.is_(False),
                )
                .order_by(MetricBlockRow.key_id, MetricBlockRow.id)
            ).all()
            groups: list[tuple[int, list[int]]] = []
            points_in_group = 0
            for key_id, block_id, count in small:
                if not groups or groups[-1][0] != key_id or points_in_group + count > BLOCK_POINTS:
                    groups.append((key_id, []))
                    points_in_group = 0
                groups[-1][1].append(block_id)
                points_in_group += count
            removed = 0
            for key_id, block_ids in groups:
                if len(block_ids) < 2:
                    continue
                steps, epochs, times, values = _read_series(session, run_id, key_id, block_ids)
                points = np.stack([steps.astype(np.float64), epochs, times, values], axis=1)
                session.execute(delete(MetricBlockRow).where(MetricBlockRow.id.in_(block_ids)))
                session.execute(insert(MetricBlockRow), [_block(run_id, key_id, points)])
                removed += len(block_ids) - 1
            return removed

        return self._catalog.write(work)

    # -- reading ---------------------------------------------------------------------

    def history(self, run_id: int, name: str, *, include_superseded: bool = False) -> MetricHistory:
        """Every point of metric ``name`` of run ``run_id``, ordered by step.

        Superseded points (a killed attempt's, past the checkpoint its run
        resumed from) only with ``include_superseded``, flagged.
        """
        key_id = self.key_ids([name]).get(name)
        with self._catalog.session() as session:
            if key_id is not None:
                if include_superseded:
                    found = _read_flagged(session, run_id, key_id)
                    if found[0].shape[0]:
                        return MetricHistory(run_id, name, *found)
                steps, epochs, times, values = _read_series(session, run_id, key_id)
                if steps.shape[0]:
                    return MetricHistory(run_id, name, steps, epochs, times, values)
            if session.get(RunRow, run_id) is None:
                raise NotFound(f"no run {run_id}", run_id=run_id)
        raise NotFound(f"run {run_id} has no metric {name!r}", run_id=run_id, metric=name)

    def supersede(self, run_id: int, after_step: int) -> int:
        """Mark the points of ``run_id`` logged past ``after_step`` superseded; how many.

        What a run resumed from a checkpoint at ``after_step`` does first: the
        steps after it will be logged again, so the killed attempt's points
        there are kept but hidden, and each metric's summary is worked out again
        from the points still shown. ``system/…`` metrics count samples, not
        training steps, and are left alone. A block holding points on both
        sides of the step is split in two.
        """
        check_resume_step(after_step)

        def work(session: Session) -> int:
            _check_running(session, run_id)
            blocks = session.execute(
                select(MetricBlockRow.id, MetricBlockRow.key_id, MetricBlockRow.first_step)
                .join(MetricKeyRow, MetricKeyRow.id == MetricBlockRow.key_id)
                .where(
                    MetricBlockRow.run_id == run_id,
                    MetricBlockRow.superseded.is_(False),
                    MetricBlockRow.last_step > after_step,
                    MetricKeyRow.name.not_like("system/%"),
                )
                .order_by(MetricBlockRow.id)
            ).all()
            marked = 0
            for block_id, key_id, first_step in blocks:
                if first_step > after_step:
                    count = session.execute(
                        update(MetricBlockRow)
                        .where(MetricBlockRow.id == block_id)
                        .values(superseded=True)
                        .returning(MetricBlockRow.count)
                    ).scalar_one()
                    marked += int(count)
                    continue
                steps, epochs, times, values = _read_series(session, run_id, key_id, [block_id])
                points = np.stack([steps.astype(np.float64), epochs, times, values], axis=1)
                later = steps > after_step
                session.execute(delete(MetricBlockRow).where(MetricBlockRow.id == block_id))
                session.execute(
                    insert(MetricBlockRow),
                    [
                        _block(run_id, key_id, points[~later]),
                        {**_block(run_id, key_id, points[later]), "superseded": True},
                    ],
                )
                marked += int(np.count_nonzero(later))
            for key_id in sorted({key_id for _, key_id, _ in blocks}):
                _summarize_again(session, run_id, key_id)
            return marked

        return self._catalog.write(work)

    def summaries(
        self, session: Session, run_ids: Sequence[int]
    ) -> dict[int, dict[str, MetricSummary]]:
        """The metric summaries of each of ``run_ids``, by metric name (sorted)."""
        found: dict[int, dict[str, MetricSummary]] = {run_id: {} for run_id in run_ids}
        if not run_ids:
            return found
        rows = session.execute(
            select(RunMetricRow).where(RunMetricRow.run_id.in_(run_ids))
        ).scalars()
        rows_list = list(rows)
        names = self.key_names(session, {row.key_id for row in rows_list})
        for row in sorted(rows_list, key=lambda r: names[r.key_id]):
            name = names[row.key_id]
            found[row.run_id][name] = MetricSummary(
                name=name,
                last=_unflag(row.last_value, row.last_flag),
                last_step=row.last_step,
                last_time=row.last_time,
                minimum=row.min_value,
                maximum=row.max_value,
                count=row.count,
                nonfinite=row.nonfinite,
            )
        return found


def check_resume_step(step: object) -> int:
    """``step`` if it is a step a run can resume from: a whole number from -1 (nothing kept)."""
    if isinstance(step, bool) or not isinstance(step, int) or not -1 <= step < 2**53:
        raise ValidationError(
            f"a resume step is a whole number from -1 (nothing kept) below 2**53, not {step!r}"
        )
    return step


def _claim(session: Session, run_id: int, writer: str, sequence: int) -> bool:
    """Record ``sequence`` as ``writer``'s highest; False if it is not above the one stored.

    One conditional upsert, so two deliveries of one batch racing each other
    store it once: the second waits on the first's row, then finds it taken.
    """
    if not isinstance(writer, str) or not _WRITER_ID.match(writer):
        raise ValidationError(f"a writer id is 1 to 64 letters, digits, - or _, not {writer!r}")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 < sequence < 2**63:
        raise ValidationError(f"a batch sequence is a whole number from 1, not {sequence!r}")
    table = MetricWriterRow.__table__
    statement = dialect_insert(session)(MetricWriterRow).values(
        run_id=run_id, writer_id=writer, sequence=sequence, updated_at=utcnow()
    )
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "writer_id"],
        set_={"sequence": statement.excluded.sequence, "updated_at": statement.excluded.updated_at},
        where=table.c.sequence < statement.excluded.sequence,
    ).returning(table.c.sequence)
    return session.execute(statement).first() is not None


def _check_running(session: Session, run_id: int) -> None:
    status = session.execute(select(RunRow.status).where(RunRow.id == run_id)).scalar()
    if status is None:
        raise NotFound(f"no run {run_id}", run_id=run_id)
    if status != "running":
        raise Conflict(
            f"run {run_id} is {status}: it takes no more metrics", run_id=run_id, status=status
        )


def _summarize_again(session: Session, run_id: int, key_id: int) -> None:
    """Work out one metric's summary again from its shown (not superseded) points."""
    steps, epochs, times, values = _read_series(session, run_id, key_id)
    session.execute(
        delete(RunMetricRow).where(RunMetricRow.run_id == run_id, RunMetricRow.key_id == key_id)
    )
    if steps.shape[0]:
        points = np.stack([steps.astype(np.float64), epochs, times, values], axis=1)
        session.execute(insert(RunMetricRow), [_summary(run_id, key_id, points)])


def _block(run_id: int, key_id: int, points: npt.NDArray[np.float64]) -> dict[str, Any]:
    steps = points[:, 0].astype("<i8")
    epochs = points[:, 1]
    values = np.ascontiguousarray(points[:, 3], dtype="<f8")
    nonfinite = int(values.shape[0] - np.count_nonzero(np.isfinite(values)))
    return {
        "run_id": run_id,
        "key_id": key_id,
        "count": int(points.shape[0]),
        "nonfinite": nonfinite,
        "first_step": int(steps.min()),
        "last_step": int(steps.max()),
        "steps": steps.tobytes(),
        "epochs": None if np.isnan(epochs).all() else epochs.astype("<f8").tobytes(),
        "times": points[:, 2].astype("<f8").tobytes(),
        "metric_values": values.tobytes(),
    }


def _summary(run_id: int, key_id: int, points: npt.NDArray[np.float64]) -> dict[str, Any]:
    steps = points[:, 0]
    values = points[:, 3]
    # The latest point: the highest step, and of equal steps the one logged last.
    last = int(steps.shape[0] - 1 - np.argmax(steps[::-1]))
    last_value = float(values[last])
    finite = values[np.isfinite(values)]
    flag = _flag(last_value)
    return {
        "run_id": run_id,
        "key_id": key_id,
        "count": int(values.shape[0]),
        "nonfinite": int(values.shape[0] - finite.shape[0]),
        "last_step": int(steps[last]),
        "last_time": float(points[last, 2]),
        "last_value": last_value if flag == _FLAG_FINITE else None,
        "last_flag": flag,
        "min_value": float(finite.min()) if finite.shape[0] else None,
        "max_value": float(finite.max()) if finite.shape[0] else None,
    }


def _upsert_summaries(session: Session) -> Any:
    table = RunMetricRow.__table__
    statement = dialect_insert(session)(RunMetricRow)
    new = statement.excluded
    newer = new.last_step >= table.c.last_step

    def extreme(column: str, smaller: bool) -> Any:
        old, incoming = table.c[column], new[column]
        better = incoming < old if smaller else incoming > old
        return case(
            (old.is_(None), incoming),
            (incoming.is_(None), old),
            (better, incoming),
            else_=old,
        )

    return statement.on_conflict_do_update(
        index_elements=["run_id", "key_id"],
        set_={
            "count": table.c.count + new.count,
            "nonfinite": table.c.nonfinite + new.nonfinite,
            "last_step": case((newer, new.last_step), else_=table.c.last_step),
            "last_time": case((newer, new.last_time), else_=table.c.last_time),
            "last_value": case((newer, new.last_value), else_=table.c.last_value),
            "last_flag": case((newer, new.last_flag), else_=table.c.last_flag),
            "min_value": extreme("min_value", smaller=True),
            "max_value": extreme("max_value", smaller=False),
        },
    )


def _read_flagged(
    session: Session, run_id: int, key_id: int
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.bool_],
]:
    """Every point of a series, superseded ones too, ordered by step, and which are superseded."""
    shown = _read_series(session, run_id, key_id)
    hidden = _read_series(session, run_id, key_id, superseded=True)
    flags = np.concatenate(
        [np.zeros(shown[0].shape[0], dtype=np.bool_), np.ones(hidden[0].shape[0], dtype=np.bool_)]
    )
    steps = np.concatenate([shown[0], hidden[0]])
    # the dead attempt's points first at a step: they were logged before the new ones
    order = np.lexsort((~flags, steps))
    return (
        steps[order],
        np.concatenate([shown[1], hidden[1]])[order],
        np.concatenate([shown[2], hidden[2]])[order],
        np.concatenate([shown[3], hidden[3]])[order],
        flags[order],
    )


def _read_series(
    session: Session,
    run_id: int,
    key_id: int,
    block_ids: Sequence[int] | None = None,
    *,
    superseded: bool = False,
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]
]:
    """The points of a series, by step: the shown ones, or only the superseded ones."""
    statement = (
        select(
            MetricBlockRow.count,
            MetricBlockRow.steps,
            MetricBlockRow.epochs,
            MetricBlockRow.times,
            MetricBlockRow.metric_values,
        )
        .where(MetricBlockRow.run_id == run_id, MetricBlockRow.key_id == key_id)
        .order_by(MetricBlockRow.id)
    )
    if block_ids is not None:
        statement = statement.where(MetricBlockRow.id.in_(block_ids))
    else:
        statement = statement.where(MetricBlockRow.superseded.is_(superseded))
    rows = session.execute(statement).all()
    steps = np.frombuffer(b"".join(row[1] for row in rows), dtype="<i8")
    epochs = np.frombuffer(
        b"".join(row[2] if row[2] is not None else _nan_bytes(row[0]) for row in rows), dtype="<f8"
    )
    times = np.frombuffer(b"".join(row[3] for row in rows), dtype="<f8")
    values = np.frombuffer(b"".join(row[4] for row in rows), dtype="<f8")
    if steps.shape[0] > 1 and bool((steps[1:] < steps[:-1]).any()):
        order = np.argsort(steps, kind="stable")
        steps, epochs, times, values = steps[order], epochs[order], times[order], values[order]
    return (
        steps.astype(np.int64, copy=False),
        epochs.astype(np.float64, copy=False),
        times.astype(np.float64, copy=False),
        values.astype(np.float64, copy=False),
    )


_NAN_BLOCK = np.full(BLOCK_POINTS, np.nan, dtype="<f8").tobytes()


def _nan_bytes(count: int) -> bytes:
    return _NAN_BLOCK[: count * 8] if count <= BLOCK_POINTS else bytes(np.full(count, np.nan))
