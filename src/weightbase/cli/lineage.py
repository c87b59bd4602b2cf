"""``weightbase lineage NODE``: where any node came from and what came from it.

A node is ``model:NAME@VERSION``, ``dataset:NAME@VERSION``, ``run:ID``,
``checkpoint:REF`` or a graph node as stored (``model_version:7``); the walk is
the same embedded or on a server (``--url``).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.text import Text

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.options import JsonOption
from weightbase.cli.render import lineage_tree
from weightbase.errors import ValidationError
from weightbase.lineage import LineageGraph, lineage_of, to_dot

__all__ = ["lineage"]


def lineage(
    node: Annotated[
        str,
        typer.Argument(
            help="model:NAME@VERSION, dataset:NAME@VERSION, run:ID, checkpoint:REF "
            "(checkpoints/… may be left out), or a graph node KIND:ID such as model_version:7.",
            show_default=False,
        ),
    ],
    depth: Annotated[
        int | None,
        typer.Option(
            "--depth", help="At most this many edges away, each way (default: all).", min=1
        ),
    ] = None,
    json: JsonOption = False,
    dot: Annotated[
        bool,
        typer.Option(
            "--dot", help="Print the graph in Graphviz's DOT language (pipe to dot -Tsvg)."
        ),
    ] = False,
) -> None:
    """Ancestors and descendants of any node: a model or dataset version, a run, a checkpoint."""
    if json and dot:
        raise ValidationError("--json and --dot each choose the output: give one of them")
    with open_workspace() as wb:
        graph = lineage_of(wb, node, depth=depth)
    if json:
        emit_json(graph.to_dict())
    elif dot:
        typer.echo(to_dot(graph), nl=False)
    else:
        console.print(_rendered(graph))


def _rendered(graph: LineageGraph) -> Group:
    """Two trees under the start: what it came from, then what came from it."""
    names = {node: graph.name(node) for node in graph.nodes}
    parts: list[RenderableType] = []
    for title, reached, descendants in (
        ("ancestors", graph.ancestors, False),
        ("descendants", graph.descendants, True),
    ):
        parts.append(Text(title, style="bold"))
        if reached:
            parts.append(lineage_tree(graph.start, reached, names, descendants=descendants))
        else:
            parts.append(
                Text.from_markup(f"  {escape(graph.name(graph.start))} has no recorded {title}")
            )
    return Group(*parts)
