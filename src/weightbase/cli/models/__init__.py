"""``weightbase models …``: the model registry from the shell, thin over ``wb.models``.

Push and pull versions (``transfer``); list and show models, diff two versions, read a
model's history and lineage (``browse``); tag, move aliases and stages, roll back, update
and delete (``change``).
"""

from __future__ import annotations

import typer

from weightbase.cli.models import browse, change, transfer

# The renderers the demo prints with too; they live in weightbase.cli.render.
from weightbase.cli.render import diff_renderables, history_table, version_line

__all__ = ["diff_renderables", "history_table", "models_app", "version_line"]

models_app = typer.Typer(
    help="The model registry: push and pull versions, compare them, move aliases and stages.",
    no_args_is_help=True,
)

for _name, _command in (
    ("push", transfer.push),
    ("pull", transfer.pull),
    ("list", browse.list_models),
    ("show", browse.show),
    ("diff", browse.diff),
    ("history", browse.history),
    ("tag", change.tag),
    ("alias", change.alias),
    ("promote", change.promote),
    ("rollback", change.rollback),
    ("lineage", browse.lineage),
    ("update", change.update),
    ("delete", change.delete),
):
    models_app.command(_name)(_command)
