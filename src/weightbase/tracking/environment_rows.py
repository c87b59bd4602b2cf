"""Runs' reproducibility records in the catalog (``run_environments``): written, added to, read.

The record is JSON text, written once when the run is made; the seeds are a
JSON object of their own, so that seeds set later are added without rewriting
it. :class:`RunEnvironments` is the run tracker's part that reads, compares and
adds seeds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update

from weightbase.catalog.schema import RunEnvironmentRow
from weightbase.tracking.context import RUN_KIND
from weightbase.tracking.environment import (
    EnvironmentDiff,
    RunEnvironment,
    check_seeds,
    compare_environments,
)
from weightbase.tracking.reads import run_row

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.tracking.context import TrackingContext

__all__ = ["RunEnvironments", "add_seeds", "insert_environment", "load_environment"]


class RunEnvironments:
    """Runs' reproducibility records: read, compared, and seeds added."""

    def __init__(self, context: TrackingContext) -> None:
        self._context = context

    def environment(self, run_id: int) -> RunEnvironment | None:
        """The run's record; ``None`` if it has none; ``NotFound`` if there is no such run."""
        with self._context.catalog.session() as session:
            run_row(session, run_id)
            return load_environment(session, run_id)

    def compare(self, first: int, second: int) -> EnvironmentDiff:
        """Where run ``second``'s environment differs from run ``first``'s."""
        return compare_environments(self.environment(first), self.environment(second))

    def record_seeds(self, run_id: int, seeds: Mapping[str, int]) -> None:
        """Add seeds to a run's record, audited (``run.seeds``)."""
        checked = check_seeds(seeds)

        def work(session: Session) -> None:
            run_row(session, run_id, lock=True)  # NotFound, and one writer of its seeds at a time
            add_seeds(session, run_id, checked)
            self._context.recorder.record(
                session, "run.seeds", RUN_KIND, run_id, after={"seeds": checked}
            )

        self._context.catalog.write(work)


def insert_environment(session: Session, run_id: int, environment: RunEnvironment) -> None:
    """Keep ``environment`` as the record of the new run ``run_id``."""
    record = environment.to_dict()
    seeds = record.pop("seeds")
    session.execute(
        insert(RunEnvironmentRow).values(
            run_id=run_id,
            captured_at=environment.captured_at,
            record=json.dumps(record, sort_keys=True) if environment.captured else None,
            seeds=json.dumps(seeds, sort_keys=True),
        )
    )


def add_seeds(session: Session, run_id: int, seeds: Mapping[str, int]) -> None:
    """Add ``seeds`` to the run's (a name seeded before takes the new seed).

    The caller holds the run's row locked, so two processes never insert its record at once.
    """
    checked = check_seeds(seeds)
    row = session.scalars(
        select(RunEnvironmentRow).where(RunEnvironmentRow.run_id == run_id)
    ).one_or_none()
    if row is None:  # a run that opted out of capturing: its seeds alone
        session.execute(
            insert(RunEnvironmentRow).values(
                run_id=run_id, captured_at=None, record=None, seeds=json.dumps(checked)
            )
        )
        return
    merged = {**json.loads(row.seeds), **checked}
    session.execute(
        update(RunEnvironmentRow)
        .where(RunEnvironmentRow.run_id == run_id)
        .values(seeds=json.dumps(merged, sort_keys=True))
    )


def load_environment(session: Session, run_id: int) -> RunEnvironment | None:
    """The run's record, ``None`` if it has none (it opted out and set no seeds)."""
    row = session.scalars(
        select(RunEnvironmentRow).where(RunEnvironmentRow.run_id == run_id)
    ).one_or_none()
    if row is None:
        return None
    record = json.loads(row.record) if row.record is not None else {}
    return RunEnvironment.from_dict({**record, "seeds": json.loads(row.seeds)})
