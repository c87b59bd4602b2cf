"""``weightbase models tag|alias|promote|rollback|update|delete``: changes to models and versions.

Every change lands in the model's history, with ``--reason`` where one is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.options import (
    JsonOption,
    ModelNameArgument,
    ReasonOption,
    VersionRefArgument,
)
from weightbase.errors import ValidationError

__all__ = ["alias", "delete", "promote", "rollback", "tag", "update"]


def tag(
    ref: Annotated[str, typer.Argument(help="NAME to tag the model, NAME@REF to tag a version.")],
    tags: Annotated[list[str], typer.Argument(help="One or more tags.")],
    remove: Annotated[bool, typer.Option("--remove", help="Remove the tags instead.")] = False,
    json: JsonOption = False,
) -> None:
    """Add tags to a model or a version (or remove them with --remove)."""
    with open_workspace() as wb:
        if remove:
            wb.models.untag(ref, *tags)
        else:
            wb.models.tag(ref, *tags)
        now = list(wb.models.version(ref).tags if "@" in ref else wb.models.get(ref).tags)
    if json:
        emit_json({"ref": ref, "tags": now})
        return
    verb = "untagged" if remove else "tagged"
    console.print(
        f"{verb} {escape(ref)}: {escape(', '.join(tags))}; tags now: "
        f"{escape(', '.join(now)) or '[dim]none[/]'}"
    )


def alias(
    name: ModelNameArgument,
    alias_name: Annotated[
        str, typer.Argument(metavar="ALIAS", help="Alias, such as production or candidate.")
    ],
    version: Annotated[
        str | None,
        typer.Argument(help="Version (or another alias, or latest) to point it at."),
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the alias instead.")] = False,
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Point an alias at a version, moving it if it is set (or remove it with --remove)."""
    if remove and version is not None:
        raise ValidationError("--remove takes no VERSION: give only NAME and ALIAS")
    if not remove and version is None:
        raise ValidationError("give the VERSION to point the alias at (or --remove)")
    with open_workspace() as wb:
        before = wb.models.get(name).aliases.get(alias_name)
        if remove:
            wb.models.remove_alias(name, alias_name, reason=reason)
            after = None
        else:
            assert version is not None
            after = wb.models.set_alias(name, alias_name, version, reason=reason).version
    if json:
        emit_json({"model": name, "alias": alias_name, "before": before, "after": after})
        return
    label = escape(f"{name}@{alias_name}")
    if after is None:
        console.print(f"removed {label} (was {escape(before or '—')})")
    elif before == after:
        console.print(f"{label} already points at {escape(after)}")
    else:
        console.print(f"{label}: {escape(before or '—')} → [bold]{escape(after)}[/]")


def promote(
    ref: VersionRefArgument,
    stage: Annotated[
        str,
        typer.Argument(help="development, staging, production, deprecated or archived."),
    ],
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Move a version to another stage of its life."""
    with open_workspace() as wb:
        before = wb.models.version(ref)
        after = wb.models.promote(before, stage, reason=reason)
    if json:
        emit_json({**after.to_dict(), "previous_stage": before.stage})
        return
    console.print(f"{escape(after.ref)}: {before.stage} → [bold]{after.stage}[/]")


def rollback(
    name: ModelNameArgument,
    to: Annotated[str, typer.Option("--to", help="The version to move the alias back to.")],
    alias_name: Annotated[
        str, typer.Option("--alias", help="The alias to move back.")
    ] = "production",
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Move an alias (production by default) back to an earlier version, saying why."""
    with open_workspace() as wb:
        before = wb.models.get(name).aliases.get(alias_name)
        after = wb.models.rollback(name, to=to, alias=alias_name, reason=reason)
    if json:
        emit_json({"model": name, "alias": alias_name, "before": before, "after": after.version})
        return
    console.print(
        f"rolled back {escape(f'{name}@{alias_name}')}: {escape(before or '—')} → "
        f"[bold]{escape(after.version)}[/]"
    )


def update(
    name: ModelNameArgument,
    description: Annotated[
        str | None, typer.Option("--description", help="A new description.")
    ] = None,
    licence: Annotated[
        str | None, typer.Option("--licence", help="A licence, such as apache-2.0.")
    ] = None,
    card: Annotated[
        Path | None, typer.Option("--card", help="A markdown file to use as the model card.")
    ] = None,
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Change a model's description, licence or model card."""
    if description is None and licence is None and card is None:
        raise ValidationError("nothing to update: give --description, --licence or --card")
    model_card = None
    if card is not None:
        try:
            model_card = card.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"cannot read the model card {card}: {exc}") from None
    with open_workspace() as wb:
        model = wb.models.update(
            name, description=description, licence=licence, model_card=model_card, reason=reason
        )
    if json:
        emit_json(model.to_dict())
        return
    changed = [
        label
        for label, value in (("description", description), ("licence", licence), ("card", card))
        if value is not None
    ]
    console.print(f"updated {escape(model.name)}: {', '.join(changed)}")


def delete(
    name: ModelNameArgument,
    force: Annotated[
        bool, typer.Option("--force", help="Remove its aliases first rather than refuse.")
    ] = False,
    reason: ReasonOption = None,
) -> None:
    """Delete a model (its name becomes free); refused while it has aliases, unless --force.

    Its versions' weights are unpinned: `weightbase store gc` then frees the
    chunks no other snapshot uses.
    """
    with open_workspace() as wb:
        wb.models.delete(name, force=force, reason=reason)
    console.print(f"deleted {escape(name)}")
