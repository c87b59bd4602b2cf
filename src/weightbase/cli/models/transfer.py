"""``weightbase models push`` and ``pull``: weights into the registry as a version, and out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from weightbase.cli._common import (
    byte_progress,
    console,
    emit_json,
    human_bytes,
    open_workspace,
    path_size,
)
from weightbase.cli.options import (
    DescriptionOption,
    JsonOption,
    OutArgument,
    VersionOption,
    VersionTagsOption,
)
from weightbase.cli.render import version_line
from weightbase.errors import ValidationError
from weightbase.registry.push import LINEAGE, DeltaParent
from weightbase.tensors import WriteStats

__all__ = ["pull", "push"]


def _parse_metrics(pairs: Sequence[str]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            metrics[key.strip()] = float(value)
        except ValueError:
            raise ValidationError(
                f"--metric expects key=value with a number, such as accuracy=0.91; got {pair!r}"
            ) from None
    return metrics


def _delta_from(ref: str | None) -> str | DeltaParent | None:
    """``delta_from=`` for a push: the lineage's when ``--delta-from`` is not given."""
    if ref is None:
        return LINEAGE
    return None if ref.lower() == "none" else ref


def push(
    name: Annotated[str, typer.Argument(help="Model name, such as bert-tiny or org/bert-tiny.")],
    path: Annotated[
        Path,
        typer.Argument(help="A .safetensors file, a torch weights file or a Hugging Face folder."),
    ],
    version: VersionOption = None,
    bump: Annotated[
        str | None,
        typer.Option(
            "--bump",
            help="Part of the latest version to bump: major, minor or patch (default: minor).",
            show_default=False,
        ),
    ] = None,
    description: DescriptionOption = None,
    tags: VersionTagsOption = None,
    aliases: Annotated[
        list[str] | None,
        typer.Option("--alias", help="Point an alias, such as production, at it (repeatable)."),
    ] = None,
    stage: Annotated[
        str,
        typer.Option(
            "--stage",
            help="development, staging, production, deprecated or archived.",
        ),
    ] = "development",
    metrics: Annotated[
        list[str] | None,
        typer.Option("--metric", help="A measured metric as key=value (repeatable)."),
    ] = None,
    derived_from: Annotated[
        str | None,
        typer.Option("--derived-from", help="NAME@REF of the version this one was derived from."),
    ] = None,
    fine_tuned_from: Annotated[
        str | None,
        typer.Option("--fine-tuned-from", help="NAME@REF of the version this was fine-tuned from."),
    ] = None,
    codec: Annotated[
        str | None,
        typer.Option("--codec", help="auto, raw, zstd, lz4, bytegroup or delta (default: auto)."),
    ] = None,
    delta_from: Annotated[
        str | None,
        typer.Option(
            "--delta-from",
            help="NAME@REF to store deltas against, of any model, or none to store whole "
            "(default: the --fine-tuned-from or --derived-from version, else NAME's latest).",
            show_default=False,
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Store weights as a new version of NAME; content equal to a version's is not stored twice.

    Unchanged chunks are shared with every earlier version, and changed tensors
    are stored as deltas where that pays: of the version it was fine-tuned or
    derived from, else of NAME's latest, or of --delta-from.
    """
    if version is not None and bump is not None:
        raise ValidationError("give --version or --bump, not both")
    metric_values = _parse_metrics(metrics or ())
    if not path.exists():
        raise ValidationError(f"{path} does not exist (expected a weights file or model folder)")
    stats = WriteStats()
    started = time.perf_counter()
    with open_workspace() as wb:
        with byte_progress(f"pushing {path.name}", path_size(path), enabled=not json) as advance:
            pushed = wb.models.push(
                name,
                path,
                version=version,
                bump=bump or "minor",  # type: ignore[arg-type]  # the service checks it
                description=description,
                tags=tags or (),
                metrics=metric_values,
                stage=stage,
                aliases=aliases or (),
                derived_from=derived_from,
                fine_tuned_from=fine_tuned_from,
                codec=codec,
                progress=advance,
                stats=stats,
                delta_from=_delta_from(delta_from),
            )
        new_bytes = stats.new_bytes
    if json:
        emit_json(
            {
                **pushed.to_dict(),
                "new_bytes": new_bytes,
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
        return
    if pushed.created:
        console.print(f"[bold green]pushed[/] {escape(pushed.ref)} [dim](new version)[/]")
    else:
        console.print(
            f"[bold yellow]identical[/] to {escape(pushed.ref)}: same weights already pushed, "
            "no new version made"
        )
    console.print("  " + version_line(pushed, new_bytes=new_bytes))
    if not pushed.created:
        console.print(
            "  [dim]tags, aliases, metrics, stage and lineage given were applied to it[/]"
        )


def pull(
    ref: Annotated[str, typer.Argument(help="NAME@REF: a version, an alias or latest.")],
    out: OutArgument,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="safetensors, torch, npz or folder (default: from OUT's suffix, else folder).",
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Write a version's weights out, as a file or as the folder it was pushed from.

    A pushed folder or safetensors file comes back byte for byte. A torch file
    comes back with the same tensors, bit for bit, and the same tree (a training
    checkpoint's dicts, lists, tuples and values), written by torch.save: not
    the same bytes as the file pushed.
    """
    with open_workspace() as wb:
        found = wb.models.version(ref)
        with byte_progress(
            f"pulling {escape(found.ref)}", found.logical_bytes, enabled=not json
        ) as advance:
            target = wb.models.export(found, out, format=format, progress=advance)
    if json:
        emit_json({"version": found.ref, "path": str(target), "logical_bytes": found.logical_bytes})
        return
    console.print(
        f"[bold green]wrote[/] {escape(found.ref)} to {escape(str(target))} "
        f"({human_bytes(found.logical_bytes)})"
    )
