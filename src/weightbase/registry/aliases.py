"""Aliases and stages: which version to use, and where each version is in its life.

An alias (``production``, ``candidate``) names one version of a model and
moves; a rollback moves it back, recording why. A stage (``development`` …
``archived``) is a property of a version; ``promote`` changes it. Moving an
alias changes no stage, and promoting a version moves no alias.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlalchemy import select

from weightbase.catalog.schema import STAGES, AliasRow, ModelRow, ModelVersionRow, utcnow
from weightbase.errors import NotFound, ValidationError
from weightbase.registry.context import PRODUCTION
from weightbase.registry.queries import LATEST, VersionLike, find_version, resolve
from weightbase.registry.rows import load_version

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.registry.context import RegistryContext
    from weightbase.registry.records import ModelVersion

__all__ = [
    "aliases_of_model",
    "aliases_of_version",
    "check_alias",
    "check_stage",
    "promote",
    "remove_alias",
    "remove_alias_row",
    "rollback",
    "set_alias",
    "set_alias_row",
    "set_stage",
]

_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}\Z")


def check_alias(alias: str) -> str:
    """``alias`` if it is a letter, then letters, digits, ``_`` or ``-`` (not ``latest``)."""
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias == LATEST:
        raise ValidationError(
            f"invalid alias {alias!r}: a letter, then letters, digits, '_' or '-' "
            "(at most 128 characters; 'latest' is reserved)",
            alias=alias,
        )
    return alias


def check_stage(stage: str) -> str:
    """``stage`` if it is one of :data:`~weightbase.catalog.schema.STAGES`."""
    if stage not in STAGES:
        raise ValidationError(
            f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}", stage=stage
        )
    return stage


# -- the operations --------------------------------------------------------------------


def set_alias(
    context: RegistryContext, name: str, alias: str, version: str, *, reason: str | None
) -> ModelVersion:
    """Point ``alias`` of model ``name`` at ``version`` (a version, an alias or ``latest``)."""
    check_alias(alias)

    def work(session: Session) -> int:
        return set_alias_in(context, session, name, alias, version, reason=reason)

    return load_version(context, context.catalog.write(work))


def set_alias_in(
    context: RegistryContext,
    session: Session,
    name: str,
    alias: str,
    version: str,
    *,
    reason: str | None,
) -> int:
    """:func:`set_alias` in the caller's transaction, which commits it with its own
    changes or neither; the version's row id."""
    check_alias(alias)
    model = context.models.require(session, name, lock=True)
    row = resolve(session, model, version)
    set_alias_row(context, session, model.id, alias, row, reason)
    return row.id


def remove_alias(context: RegistryContext, name: str, alias: str, *, reason: str | None) -> None:
    """Remove ``alias`` of model ``name``; ``NotFound`` if it is not set."""

    def work(session: Session) -> None:
        model = context.models.require(session, name, lock=True)
        old = remove_alias_row(session, model.id, alias)
        if old is None:
            raise NotFound(f"model {name!r} has no alias {alias!r}", model=name, alias=alias)
        context.models.record(
            session,
            model.id,
            "alias.remove",
            before={"alias": alias, "version": old},
            reason=reason,
        )

    context.catalog.write(work)


def rollback(
    context: RegistryContext, name: str, *, to: str, alias: str, reason: str | None
) -> ModelVersion:
    """Move the set ``alias`` of model ``name`` to version ``to`` (elsewhere than it points)."""
    check_alias(alias)

    def work(session: Session) -> int:
        model = context.models.require(session, name, lock=True)
        current = aliases_of_model(session, model.id).get(alias)
        if current is None:
            raise NotFound(
                f"model {name!r} has no alias {alias!r} to roll back; set it with set_alias",
                model=name,
                alias=alias,
            )
        row = resolve(session, model, to)
        if row.version == current:
            raise ValidationError(f"{name}@{alias} already points at {current}")
        set_alias_row(context, session, model.id, alias, row, reason, action="alias.rollback")
        context.recorder.emit(
            session,
            "model_rolled_back",
            {"model": name, "alias": alias, "from": current, "to": row.version},
        )
        return row.id

    return load_version(context, context.catalog.write(work))


def promote(
    context: RegistryContext,
    ref: VersionLike,
    version: str | None,
    stage: str,
    *,
    reason: str | None,
) -> ModelVersion:
    """Move the live version ``ref`` (or ``version`` of model ``ref``) to ``stage``."""
    check_stage(stage)
    found = find_version(context, ref, version)

    def work(session: Session) -> int:
        model = context.models.require(session, found.model, lock=True)
        row = session.get_one(ModelVersionRow, found.id)
        if row.deleted_at is not None:
            raise NotFound(f"{found.ref} was deleted")
        set_stage(context, session, model, row, stage, reason=reason, announce=True)
        return row.id

    return load_version(context, context.catalog.write(work))


# -- rows, in the caller's transaction -------------------------------------------------


def aliases_of_model(session: Session, model_id: int) -> dict[str, str]:
    """Each alias of model ``model_id`` and the version it points at, by alias."""
    query = (
        select(AliasRow.alias, ModelVersionRow.version)
        .join(ModelVersionRow, ModelVersionRow.id == AliasRow.version_id)
        .where(AliasRow.model_id == model_id)
        .order_by(AliasRow.alias)
    )
    return {alias: version for alias, version in session.execute(query)}


def aliases_of_version(session: Session, version_id: int) -> list[str]:
    """The aliases that point at version ``version_id``, sorted."""
    query = select(AliasRow.alias).where(AliasRow.version_id == version_id).order_by(AliasRow.alias)
    return list(session.scalars(query))


def set_alias_row(
    context: RegistryContext,
    session: Session,
    model_id: int,
    alias: str,
    row: ModelVersionRow,
    reason: str | None,
    *,
    action: str = "alias.set",
) -> None:
    """Point ``alias`` at ``row`` and record it as ``action``; where it already points, nothing."""
    existing = _alias_row(session, model_id, alias)
    if alias == PRODUCTION and (existing is None or existing.version_id != row.id):
        context.check_production(session, model_id, row)
    before = None
    if existing is None:
        session.add(
            AliasRow(model_id=model_id, alias=alias, version_id=row.id, updated_at=utcnow())
        )
    else:
        if existing.version_id == row.id:
            return
        old = session.get_one(ModelVersionRow, existing.version_id)
        before = {"alias": alias, "version": old.version}
        existing.version_id = row.id
        existing.updated_at = utcnow()
    context.models.record(
        session,
        model_id,
        action,
        before=before,
        after={"alias": alias, "version": row.version},
        reason=reason,
        event="model_alias_set",
        payload={"model_id": model_id, "alias": alias, "version": row.version},
    )


def remove_alias_row(session: Session, model_id: int, alias: str) -> str | None:
    """Delete ``alias``; the version it pointed at, or None where it was not set."""
    existing = _alias_row(session, model_id, alias)
    if existing is None:
        return None
    version = session.get_one(ModelVersionRow, existing.version_id).version
    session.delete(existing)
    return version


def set_stage(
    context: RegistryContext,
    session: Session,
    model: ModelRow,
    row: ModelVersionRow,
    stage: str,
    *,
    reason: str | None = None,
    announce: bool = False,
) -> None:
    """Move ``row`` to ``stage`` and record it; ``announce`` also emits ``model_stage_changed``."""
    if stage == PRODUCTION and row.stage != PRODUCTION:
        context.check_production(session, model.id, row)
    before = {"version": row.version, "stage": row.stage}
    row.stage = stage
    context.models.record(
        session,
        model.id,
        "version.stage",
        before=before,
        after={"version": row.version, "stage": stage},
        reason=reason,
        event="model_stage_changed" if announce else None,
        payload={"model": model.name, "version": row.version, "from": before["stage"], "to": stage},
    )


def _alias_row(session: Session, model_id: int, alias: str) -> AliasRow | None:
    return session.scalars(
        select(AliasRow).where(AliasRow.model_id == model_id, AliasRow.alias == alias)
    ).first()
