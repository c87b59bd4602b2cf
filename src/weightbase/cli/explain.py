"""``weightbase explain …``: the feature attributions kept with a model version."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.options import JsonOption, VersionRefArgument
from weightbase.cli.render import table

__all__ = ["explain_app"]

explain_app = typer.Typer(
    help="Explainability: feature attributions of tabular model versions.",
    no_args_is_help=True,
)


@explain_app.command("show")
def show(version: VersionRefArgument, json: JsonOption = False) -> None:
    """A version's feature attributions, most important first, or why there are none."""
    from weightbase.governance.explain import NOT_AVAILABLE

    with open_workspace() as wb:
        found = wb.models.version(version)
        explanation = wb.explanations.get(found)
    if explanation is None:
        if json:
            unavailable: dict[str, Any] = {
                "model": found.model,
                "version": found.version,
                "available": False,
                "reason": NOT_AVAILABLE,
            }
            emit_json(unavailable)
        else:
            console.print(f"{escape(found.ref)}: not available ({escape(NOT_AVAILABLE)})")
        return
    if json:
        emit_json(explanation.to_dict())
        return
    dataset = f" on {escape(explanation.dataset)}" if explanation.dataset else ""
    console.print(
        f"{escape(explanation.ref)}: mean |attribution| over {explanation.sample_size} rows"
        f"{dataset} ({explanation.method} {explanation.library_version}, "
        f"{explanation.background_size} background rows)"
    )
    shown = table(["feature", "importance"], right={"importance"})
    for item in explanation.ranking():
        shown.add_row(escape(item.feature), f"{item.importance:.4g}")
    console.print(shown)
