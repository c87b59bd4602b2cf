"""Tags of a model (``"bert"``) or of one version (``"bert@1.0.0"``): adding and removing them.

Only tags that change are recorded, as ``tag.add`` or ``tag.remove`` against
the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select

from weightbase.catalog.rows import add_tag
from weightbase.catalog.schema import TagRow
from weightbase.errors import ValidationError
from weightbase.names import check_tag, split_ref
from weightbase.registry.queries import VersionLike, find_version
from weightbase.registry.records import ModelVersion

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.registry.context import RegistryContext

__all__ = ["change_tags"]


def change_tags(
    context: RegistryContext, ref: VersionLike, tags: Sequence[str], *, add: bool
) -> None:
    """Add (or, without ``add``, remove) ``tags`` on the model or version ``ref`` names."""
    checked = [check_tag(tag) for tag in tags]
    if not checked:
        raise ValidationError("no tags given")
    is_version = isinstance(ref, ModelVersion) or split_ref(ref)[1] is not None
    found = find_version(context, ref) if is_version else None
    name = found.model if found is not None else str(ref)

    def work(session: Session) -> None:
        model = context.models.require(session, name, lock=True)
        kind, entity = ("model_version", found.id) if found is not None else ("model", model.id)
        change = add_tag if add else _remove_tag
        changed = [tag for tag in checked if change(session, kind, entity, tag)]
        if changed:
            target: dict[str, object] = {"tags": changed}
            if found is not None:
                target["version"] = found.version
            context.models.record(
                session,
                model.id,
                "tag.add" if add else "tag.remove",
                before=None if add else target,
                after=target if add else None,
            )

    context.catalog.write(work)


def _remove_tag(session: Session, kind: str, entity: int, tag: str) -> bool:
    """Untag a row of ``kind``; False when it did not have the tag."""
    row = session.scalars(
        select(TagRow).where(
            TagRow.entity_kind == kind, TagRow.entity_id == entity, TagRow.tag == tag
        )
    ).first()
    if row is None:
        return False
    session.delete(row)
    return True
