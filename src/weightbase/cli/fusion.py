"""``weightbase reactors …``: fusion reactors, ensembles and cascades of models (``wb.reactors``).

``reactors create NAME -m small@1.0.0,priority=0 -m large@1.0.0,priority=1 --strategy
cascade --threshold 0.9`` creates one; ``reactors fit-stacker`` fits a stacking reactor's
combiner from ``.npy`` files; ``reactors operations`` shows what each batch did. Serve one
with ``weightbase serve reactor:NAME``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.options import JsonOption
from weightbase.cli.render import table
from weightbase.errors import ValidationError

if TYPE_CHECKING:
    from weightbase.serving.fusion import Reactor

__all__ = ["reactors_app"]

reactors_app = typer.Typer(
    help="Fusion reactors: ensembles, stacking and cascades of served models.",
    no_args_is_help=True,
)

ReactorArgument = Annotated[str, typer.Argument(help="The reactor's name (or id).")]
_NUMBERS = {"weight": float, "priority": int}


def _member(text: str) -> dict[str, Any]:
    """``REF[,role=R][,weight=W][,priority=P][,output=O]``."""
    ref, *options = text.split(",")
    member: dict[str, Any] = {"ref": ref}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in ("role", "weight", "priority", "output"):
            raise ValidationError(
                f"a member is REF[,role=R][,weight=W][,priority=P][,output=O], not {text!r}",
                field="member",
            )
        try:
            member[key] = _NUMBERS[key](value) if key in _NUMBERS else value
        except ValueError:
            raise ValidationError(f"{key} is a number, not {value!r}", field=key) from None
    return member


def _edge(text: str) -> tuple[str, str, str]:
    """``SOURCE,TARGET[,RELATION]``."""
    parts = text.split(",")
    if len(parts) not in (2, 3):
        raise ValidationError(f"an edge is SOURCE,TARGET[,RELATION], not {text!r}", field="edge")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else "feeds_into"


def _load(path: Path, what: str) -> Any:
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{what}: {path} is not a .npy array ({exc})", field=what) from None


def _show(found: Reactor) -> None:
    extra = f", threshold {found.threshold:g}" if found.threshold is not None else ""
    console.print(
        f"[bold]{escape(found.name)}[/] ({found.id}): {found.strategy}{extra}", highlight=False
    )
    for member in found.members:
        console.print(
            f"  {member.role} {escape(member.ref)}: weight {member.weight:g}, priority "
            f"{member.priority}, {member.output}",
            highlight=False,
        )
    for edge in found.edges:
        console.print(
            f"  {escape(edge.source)} {edge.relation} {escape(edge.target)}", highlight=False
        )
    if found.stacker is not None:
        console.print(
            f"  stacker: {found.stacker.samples} samples, train accuracy "
            f"{found.stacker.train_accuracy:.1%}, snapshot {found.stacker.snapshot_id[:12]}",
            highlight=False,
        )


@reactors_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name no reactor has (served as this).")],
    member: Annotated[
        list[str],
        typer.Option(
            "--member",
            "-m",
            help="REF[,role=primary|secondary|validator][,weight=W][,priority=P]"
            "[,output=logits|probabilities|embeddings]; a deployment id also names one.",
        ),
    ],
    strategy: Annotated[
        str,
        typer.Option(help="weighted_average, majority_vote, stacking, parallel or cascade."),
    ] = "weighted_average",
    threshold: Annotated[
        float | None,
        typer.Option(help="A cascade's confidence (max probability) to answer without escalating."),
    ] = None,
    edge: Annotated[
        list[str] | None,
        typer.Option(
            "--edge", "-e", help="SOURCE,TARGET[,feeds_into|validates|augments]; no cycles."
        ),
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the reactor is for.")] = None,
    json: JsonOption = False,
) -> None:
    """Create a fusion reactor over model versions (or deployments)."""
    with open_workspace() as wb:
        created = wb.reactors.create(
            name,
            members=[_member(item) for item in member],
            strategy=strategy,
            edges=[_edge(item) for item in edge or ()],
            threshold=threshold,
            description=description,
        )
    if json:
        emit_json(created.to_dict())
        return
    _show(created)


@reactors_app.command("list")
def list_reactors(json: JsonOption = False) -> None:
    """Every reactor, by name."""
    with open_workspace() as wb:
        found = wb.reactors.list()
    if json:
        emit_json([item.to_dict() for item in found])
        return
    shown = table(["name", "strategy", "members", "threshold", "stacker"])
    for item in found:
        shown.add_row(
            escape(item.name),
            item.strategy,
            escape(", ".join(member.ref for member in item.members)),
            "" if item.threshold is None else f"{item.threshold:g}",
            "fitted" if item.stacker is not None else "",
        )
    console.print(shown)


@reactors_app.command("show")
def show(reactor: ReactorArgument, json: JsonOption = False) -> None:
    """A reactor: its members, strategy, interaction graph and combiner."""
    with open_workspace() as wb:
        found = wb.reactors.get(reactor)
    if json:
        emit_json(found.to_dict())
        return
    _show(found)


@reactors_app.command("operations")
def operations(
    reactor: ReactorArgument,
    since: Annotated[
        datetime | None, typer.Option(help="Only operations at or after this (UTC) time.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, oldest first.")] = 100,
    json: JsonOption = False,
) -> None:
    """The reactor's fusion operations: members that answered, escalations, latency."""
    from datetime import UTC

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    with open_workspace() as wb:
        found = wb.reactors.operations(reactor, since=since, limit=limit)
    if json:
        emit_json([item.to_dict() for item in found])
        return
    shown = table(["at", "inputs", "escalated", "members (rows, ms)", "ms"])
    for item in found:
        members = ", ".join(
            f"{escape(ref)} ({answer.rows}, {answer.latency_ms:.1f})"
            for ref, answer in item.members.items()
        )
        shown.add_row(
            item.at.strftime("%Y-%m-%d %H:%M:%S"),
            str(item.batch_size),
            str(item.escalated),
            members,
            f"{item.latency_ms:.1f}",
        )
    console.print(shown)


@reactors_app.command("fit-stacker")
def fit_stacker(
    reactor: ReactorArgument,
    inputs: Annotated[Path, typer.Option(help="A .npy array of validation inputs, one row each.")],
    labels: Annotated[Path, typer.Option(help="A .npy array of their class indices.")],
    json: JsonOption = False,
) -> None:
    """Fit a stacking reactor's combiner on the members' outputs for validation data."""
    rows, targets = _load(inputs, "inputs"), _load(labels, "labels")
    with open_workspace() as wb:
        fitted = wb.reactors.fit_stacker(reactor, rows, targets)
    if json:
        emit_json(fitted.to_dict())
        return
    _show(fitted)
