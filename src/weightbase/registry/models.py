"""Models as catalog entries: creating, describing and (softly) deleting them and their versions.

Deleting is soft: rows stay, marked deleted, and the history keeps them. A
deleted version's weights are unpinned in the store, whose next gc frees the
chunks no other snapshot uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import blake3
from sqlalchemy import select

from weightbase.catalog.rows import add_tag
from weightbase.catalog.schema import ModelVersionRow, utcnow
from weightbase.errors import Conflict, NotFound
from weightbase.names import check_entity_name, check_tag
from weightbase.registry.aliases import aliases_of_model, aliases_of_version, remove_alias_row
from weightbase.registry.context import version_ref
from weightbase.registry.queries import VersionLike, find_version
from weightbase.registry.rows import load_model

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.registry.context import RegistryContext
    from weightbase.registry.records import Model

__all__ = ["check_model_name", "create", "delete", "delete_version", "update"]

#: A model's own fields, as ``create`` and ``update`` take them (None: not given).
Fields = Mapping[str, str | None]


def check_model_name(name: str) -> str:
    """``name`` if it is a valid model name (``org/name`` style, ≤ 255 characters)."""
    return check_entity_name(name, what="model")


def create(
    context: RegistryContext, name: str, fields: Fields, *, tags: Iterable[str], exist_ok: bool
) -> Model:
    """Insert model ``name`` with the ``fields`` given (not None) and ``tags``."""
    check_model_name(name)
    tag_list = [check_tag(tag) for tag in tags]

    def work(session: Session) -> int:
        row = context.models.live(session, name)
        if row is not None:
            if exist_ok:
                return row.id
            raise Conflict(f"model {name!r} already exists", name=name)
        row = context.models.insert(session, name)
        for field_name, value in fields.items():
            if value is not None:
                setattr(row, field_name, value)
        for tag in tag_list:
            add_tag(session, "model", row.id, tag)
        return row.id

    return load_model(context, context.catalog.write(work))


def update(context: RegistryContext, name: str, fields: Fields, *, reason: str | None) -> Model:
    """Set the ``fields`` given (not None) of model ``name``, recording ``model.update``."""
    changes = {key: value for key, value in fields.items() if value is not None}

    def work(session: Session) -> int:
        row = context.models.require(session, name, lock=True)
        before = {key: _audited(key, getattr(row, key)) for key in changes}
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        after = {key: _audited(key, value) for key, value in changes.items()}
        context.models.record(
            session, row.id, "model.update", before=before, after=after, reason=reason
        )
        return row.id

    return load_model(context, context.catalog.write(work))


def delete(context: RegistryContext, name: str, *, force: bool, reason: str | None) -> None:
    """Soft-delete model ``name`` (removing its aliases with ``force``) and unpin its versions."""

    def work(session: Session) -> list[int]:
        row = context.models.require(session, name, lock=True)
        aliases = aliases_of_model(session, row.id)
        if aliases and not force:
            shown = ", ".join(f"{alias} → {version}" for alias, version in aliases.items())
            raise Conflict(
                f"model {name!r} has aliases ({shown}); remove them first or delete "
                "with force=True",
                name=name,
            )
        for alias in aliases:
            remove_alias_row(session, row.id, alias)
        row.deleted_at = utcnow()
        context.models.record(
            session,
            row.id,
            "model.delete",
            before={"aliases": aliases},
            reason=reason,
            event="model_deleted",
            payload={"model": name},
        )
        return list(
            session.scalars(
                select(ModelVersionRow.id).where(
                    ModelVersionRow.model_id == row.id, ModelVersionRow.deleted_at.is_(None)
                )
            )
        )

    for version_id in context.catalog.write(work):
        _unpin(context, version_id)


def delete_version(
    context: RegistryContext, ref: VersionLike, version: str | None, *, reason: str | None
) -> None:
    """Soft-delete a version no alias points at, and unpin its weights."""
    found = find_version(context, ref, version)

    def work(session: Session) -> None:
        model = context.models.require(session, found.model, lock=True)
        row = session.get_one(ModelVersionRow, found.id)
        aliases = aliases_of_version(session, row.id)
        if aliases:
            raise Conflict(
                f"{found.ref} is aliased as {', '.join(aliases)}; move or remove the alias first",
                model=found.model,
                version=found.version,
            )
        row.deleted_at = utcnow()
        context.models.record(
            session, model.id, "version.delete", before={"version": row.version}, reason=reason
        )

    context.catalog.write(work)
    _unpin(context, found.id)


def _unpin(context: RegistryContext, version_id: int) -> None:
    with contextlib.suppress(NotFound):
        context.store.delete_ref(version_ref(version_id))


def _audited(field: str, value: str | None) -> Any:
    """What the audit log keeps of a field: a model card by its size and digest, not its text."""
    if field != "model_card" or value is None:
        return value
    digest = blake3.blake3(value.encode()).hexdigest()[:16]
    return {"characters": len(value), "blake3": digest}
