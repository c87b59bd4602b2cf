"""Experiments: the named groups runs belong to (``wb.runs.create_experiment`` and friends).

A run started in an experiment that does not exist yet creates it
(:func:`ensure_experiment`), audited like one created on purpose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from weightbase.catalog.rows import dialect_insert
from weightbase.catalog.schema import ExperimentRow
from weightbase.errors import Conflict, ValidationError
from weightbase.tracking.reads import check_limit, experiment_row, to_experiment
from weightbase.tracking.records import Experiment, check_name

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.tracking.context import TrackingContext

__all__ = ["Experiments", "ensure_experiment"]


class Experiments:
    """Creating, reading and listing experiments."""

    def __init__(self, context: TrackingContext) -> None:
        self._context = context

    def create_experiment(
        self, name: str, *, description: str | None, exist_ok: bool
    ) -> Experiment:
        """A new experiment; ``Conflict`` if the name is taken (unless ``exist_ok``)."""
        check_name(name, what="experiment")

        def work(session: Session) -> Experiment:
            row = session.scalars(
                select(ExperimentRow).where(ExperimentRow.name == name)
            ).one_or_none()
            if row is not None:
                if exist_ok:
                    return to_experiment(row)
                raise Conflict(f"experiment {name!r} already exists", experiment=name)
            return _insert_experiment(self._context, session, name, description)

        return self._context.catalog.write(work)

    def experiment(self, experiment: str | int) -> Experiment:
        """An experiment by name or id; ``NotFound`` if there is none."""
        with self._context.catalog.session() as session:
            return to_experiment(experiment_row(session, experiment))

    def experiments(self, *, limit: int, offset: int) -> list[Experiment]:
        """Experiments, by name."""
        check_limit(limit)
        if offset < 0:
            raise ValidationError(f"offset must be at least 0, not {offset}")
        with self._context.catalog.session() as session:
            rows = session.scalars(
                select(ExperimentRow).order_by(ExperimentRow.name).limit(limit).offset(offset)
            )
            return [to_experiment(row) for row in rows]


def ensure_experiment(context: TrackingContext, session: Session, name: str) -> int:
    """The id of experiment ``name``, created (and audited) if it does not exist yet."""
    row = session.scalars(select(ExperimentRow).where(ExperimentRow.name == name)).one_or_none()
    if row is not None:
        return row.id
    return _insert_experiment(context, session, name, None).id


def _insert_experiment(
    context: TrackingContext, session: Session, name: str, description: str | None
) -> Experiment:
    # Two writers may create one experiment at once: the loser reads the winner's row.
    experiment_id = session.execute(
        dialect_insert(session)(ExperimentRow)
        .values(name=name, description=description, created_by=context.actor)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(ExperimentRow.id)
    ).scalar_one_or_none()
    row = session.scalars(select(ExperimentRow).where(ExperimentRow.name == name)).one()
    experiment = to_experiment(row)
    if experiment_id is not None:
        context.recorder.record(
            session,
            "experiment.create",
            "experiment",
            row.id,
            after=experiment.to_dict(),
            event="experiment_created",
        )
    return experiment
