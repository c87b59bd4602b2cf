"""``weightbase models …``: the model registry from the shell, thin over ``wb.models``.

Push and pull versions, list and show models, diff two versions, move aliases and
stages, roll back, and read a model's history and lineage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import RenderableType
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from weightbase.cli._common import (
    byte_progress,
    console,
    emit_json,
    err_console,
    human_bytes,
    human_count,
    open_workspace,
    path_size,
)
from weightbase.errors import ValidationError
from weightbase.tensors import WriteStats

if TYPE_CHECKING:
    from weightbase.governance.audit import AuditEntry
    from weightbase.lineage import Node, ReachedNode
    from weightbase.registry import ModelAnalysis, ModelVersion, SnapshotDiff, TensorChange
    from weightbase.registry.records import Model

__all__ = ["diff_renderables", "diff_to_dict", "history_table", "models_app", "version_line"]

models_app = typer.Typer(
    help="The model registry: push and pull versions, compare them, move aliases and stages.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why; kept in the model's history.")
]

# Layers listed by `show` before the rest are summarised in one line.
_MAX_LAYER_ROWS = 16
# Longer values in a history entry (a model card) are cut to this many characters.
_MAX_VALUE_CHARS = 40


# -- push and pull ----------------------------------------------------------------------------


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


@models_app.command("push")
def push(
    name: Annotated[str, typer.Argument(help="Model name, such as bert-tiny or org/bert-tiny.")],
    path: Annotated[
        Path,
        typer.Argument(help="A .safetensors file, a torch weights file or a Hugging Face folder."),
    ],
    version: Annotated[
        str | None,
        typer.Option("--version", help="Exact semantic version, such as 1.0.0 (default: bump)."),
    ] = None,
    bump: Annotated[
        str | None,
        typer.Option(
            "--bump",
            help="Part of the latest version to bump: major, minor or patch (default: minor).",
            show_default=False,
        ),
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="What this version is.")
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="Tag the version (repeatable).")
    ] = None,
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
    json: JsonOption = False,
) -> None:
    """Store weights as a new version of NAME; content equal to a version's is not stored twice.

    Unchanged chunks are shared with every earlier version, and changed tensors
    are stored as deltas of the latest version where that is smaller.
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


def version_line(found: ModelVersion, *, new_bytes: int | None = None) -> str:
    """``22.7 M parameters (F32), 86.6 MiB logical → 71.1 MiB stored[, 1.2 MiB new]``."""
    dtypes = ", ".join(sorted(found.dtypes)) or "no tensors"
    line = (
        f"{human_count(found.total_params)} parameters ({escape(dtypes)}), "
        f"{human_bytes(found.logical_bytes)} logical → {human_bytes(found.stored_bytes)} stored"
    )
    if new_bytes is not None:
        line += f", {human_bytes(new_bytes)} new"
    return line


@models_app.command("pull")
def pull(
    ref: Annotated[str, typer.Argument(help="NAME@REF: a version, an alias or latest.")],
    out: Annotated[Path, typer.Argument(help="Where to write: a file or a folder.")],
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="safetensors, torch, npz or folder (default: from OUT's suffix, else folder).",
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Write a version's weights out (a pushed folder or file comes back byte for byte)."""
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


# -- list and show ----------------------------------------------------------------------------


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _aliases_text(aliases: Mapping[str, str]) -> str:
    return ", ".join(f"{alias} → {version}" for alias, version in aliases.items())


@models_app.command("list")
def list_models(
    name: Annotated[
        str | None, typer.Option("--name", help="Only names containing this text.")
    ] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", help="Only models tagged so (model tags).")
    ] = None,
    alias: Annotated[
        str | None, typer.Option("--alias", help="Only models that have this alias set.")
    ] = None,
    framework: Annotated[
        str | None,
        typer.Option("--framework", help="Only this framework: transformers, pytorch, …"),
    ] = None,
    architecture: Annotated[
        str | None,
        typer.Option("--architecture", help="Only models with a version of this type (bert, …)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Models per page (1 to 1000).")] = 50,
    after: Annotated[
        str | None, typer.Option("--after", help="Start after this name (the next page).")
    ] = None,
    json: JsonOption = False,
) -> None:
    """List models by name, one page at a time."""
    with open_workspace() as wb:
        page = wb.models.list(
            name=name,
            tag=tag,
            alias=alias,
            framework=framework,
            architecture=architecture,
            limit=limit,
            after=after,
        )
    if json:
        emit_json({"models": [model.to_dict() for model in page], "next_after": page.next_after})
        return
    if not page.items:
        console.print(
            "no models" + (" match" if any((name, tag, alias, framework, architecture)) else "")
        )
        return
    table = Table()
    for column in ("name", "latest", "versions", "aliases", "framework", "updated"):
        table.add_column(
            column,
            justify="right" if column == "versions" else "left",
            no_wrap=column in ("latest", "framework", "updated"),
        )
    for model in page:
        table.add_row(
            escape(model.name),
            escape(model.latest_version or "—"),
            str(model.version_count),
            escape(_aliases_text(model.aliases)),
            escape(model.framework or "—"),
            model.updated_at.astimezone().strftime("%Y-%m-%d"),
        )
    console.print(table)
    if page.next_after is not None:
        console.print(
            f"[dim]more: weightbase models list --after {escape(page.next_after)}"
            + (f" --limit {limit}" if limit != 50 else "")
            + "[/]"
        )


@models_app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME for the model, NAME@REF for one version of it.")],
    card: Annotated[
        bool, typer.Option("--card", help="Print the model card (markdown) instead.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Show a model and its versions, or one version: stage, size, architecture, metrics."""
    with open_workspace() as wb:
        if card:
            model = wb.models.get(ref.rpartition("@")[0] if "@" in ref else ref)
            _print_card(model, json=json)
            return
        if "@" in ref:
            found = wb.models.version(ref)
            analysis = wb.models.analysis(found)
            if json:
                emit_json({**found.to_dict(), "analysis": analysis.to_dict()})
            else:
                _print_version(found, analysis)
            return
        model = wb.models.get(ref)
        versions = wb.models.versions(ref)
    if json:
        emit_json({**model.to_dict(), "versions": [item.to_dict() for item in versions]})
    else:
        _print_model(model, versions)


def _print_card(model: Model, *, json: bool) -> None:
    if json:
        emit_json({"name": model.name, "model_card": model.model_card})
    elif model.model_card:
        console.print(Markdown(model.model_card))
    else:
        console.print(
            f"{escape(model.name)} has no model card; add one with "
            f"weightbase models update {escape(model.name)} --card README.md"
        )


def _field(label: str, value: str | None) -> None:
    shown = escape(value) if value else "[dim]—[/]"
    console.print(f"[bold]{label:<12}[/] {shown}")


def _print_model(model: Model, versions: Sequence[ModelVersion]) -> None:
    console.print(f"[bold cyan]{escape(model.name)}[/]")
    _field("description", model.description)
    _field("licence", model.licence)
    _field("framework", model.framework)
    _field("tags", ", ".join(model.tags))
    _field("aliases", _aliases_text(model.aliases))
    _field("created", _when(model.created_at))
    _field("card", "yes (--card)" if model.model_card else None)
    if not versions:
        console.print("no versions yet; push one with weightbase models push")
        return
    table = Table(title=f"{len(versions)} version{'' if len(versions) == 1 else 's'}")
    columns = ("version", "stage", "parameters", "stored", "aliases", "tags", "created")
    for column in columns:
        table.add_column(
            column,
            justify="right" if column in ("parameters", "stored") else "left",
            no_wrap=column in ("version", "stage"),
        )
    for item in versions:
        table.add_row(
            escape(item.version),
            item.stage,
            human_count(item.total_params),
            human_bytes(item.stored_bytes),
            escape(", ".join(item.aliases)),
            escape(", ".join(item.tags)),
            _when(item.created_at),
        )
    console.print(table)


def _print_version(found: ModelVersion, analysis: ModelAnalysis) -> None:
    console.print(f"[bold cyan]{escape(found.ref)}[/]")
    _field("stage", found.stage)
    _field("description", found.description)
    _field("snapshot", found.snapshot_id)
    _field("framework", found.framework)
    _field(
        "parameters",
        f"{found.total_params:,} ({found.trainable_params:,} trainable)",
    )
    _field("dtypes", ", ".join(f"{dtype} {human_count(n)}" for dtype, n in found.dtypes.items()))
    _field(
        "size",
        f"{human_bytes(found.logical_bytes)} logical, {human_bytes(found.stored_bytes)} stored",
    )
    _field("aliases", ", ".join(found.aliases))
    _field("tags", ", ".join(found.tags))
    _field("created", f"{_when(found.created_at)} by {found.created_by or 'unknown'}")
    arch = analysis.architecture
    if arch is not None:
        parts = {
            "type": arch.model_type,
            "layers": arch.num_layers,
            "hidden": arch.hidden_size,
            "heads": arch.num_attention_heads,
            "kv heads": arch.num_key_value_heads,
            "head dim": arch.head_dim,
            "ffn": arch.intermediate_size,
            "vocab": arch.vocab_size,
        }
        _field("architecture", ", ".join(f"{k} {v}" for k, v in parts.items() if v is not None))
    if found.metrics:
        _field("metrics", ", ".join(f"{k} {v:g}" for k, v in found.metrics.items()))
    for warning in analysis.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if analysis.layers:
        console.print(_layers_table(analysis))


def _layers_table(analysis: ModelAnalysis) -> Table:
    layers = analysis.layers
    table = Table(title="attention layers")
    for column in ("layer", "hidden", "heads", "kv", "head dim", "q, k, v", "out"):
        table.add_column(
            column,
            justify="left" if column in ("layer", "q, k, v", "out") else "right",
            no_wrap=column in ("layer", "q, k, v"),
        )

    def leaf(name: str | None) -> str:
        """``encoder.layer.0.attention.self.query.weight`` → ``query``: the projection's name."""
        if name is None:
            return "—"
        parts = name.split(".")
        if len(parts) > 1 and parts[-1] in ("weight", "bias"):
            parts = parts[:-1]
        return escape(parts[-1])

    def number(value: int | None) -> str:
        return "—" if value is None else str(value)

    for layer in layers[:_MAX_LAYER_ROWS]:
        qkv = (
            f"{leaf(layer.query)} (fused)"
            if layer.fused_qkv
            else ", ".join(leaf(name) for name in (layer.query, layer.key, layer.value))
        )
        table.add_row(
            escape(f"{layer.stack}.{layer.index}"),
            number(layer.hidden_size),
            number(layer.num_heads),
            number(layer.num_kv_heads),
            number(layer.head_dim),
            qkv,
            leaf(layer.output),
        )
    if len(layers) > _MAX_LAYER_ROWS:
        table.caption = f"… and {len(layers) - _MAX_LAYER_ROWS} more layers (--json lists all)"
    return table


# -- diff -------------------------------------------------------------------------------------


def _number(value: float, digits: int = 3) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.{digits}g}"


def _change_text(change: TensorChange) -> str:
    dtype = (
        f"{change.dtype_before} → {change.dtype_after}"
        if change.dtype_changed
        else change.dtype_before
    )
    shape_before = "x".join(map(str, change.shape_before)) or "scalar"
    shape_after = "x".join(map(str, change.shape_after)) or "scalar"
    shape = f"{shape_before} → {shape_after}" if change.shape_changed else shape_before
    return f"{dtype} {shape}"


def diff_renderables(
    diff: SnapshotDiff, a: str, b: str, *, max_rows: int | None = 50
) -> list[RenderableType]:
    """What ``weightbase models diff`` prints: tables of tensors and metrics, and a summary."""
    parts: list[RenderableType] = []
    if diff.changed:
        table = Table(title=f"changed tensors, {a} → {b}")
        table.add_column("tensor", overflow="fold")
        table.add_column("dtype and shape")
        for column in ("max |Δ|", "rel L2", "cosine"):
            table.add_column(column, justify="right")
        rows = diff.changed if max_rows is None else diff.changed[:max_rows]
        for change in rows:
            values = change.values
            table.add_row(
                escape(change.name),
                escape(_change_text(change)),
                _number(values.max_abs_diff) if values else "—",
                _number(values.relative_l2) if values else "—",
                _number(values.cosine, 6) if values else "—",
            )
        if len(rows) < len(diff.changed):
            table.caption = f"… and {len(diff.changed) - len(rows)} more (--limit 0 shows all)"
        parts.append(table)
    for label, summaries in (("added", diff.added), ("removed", diff.removed)):
        if summaries:
            lines = [f"[bold]{label}[/] ({len(summaries)}):"]
            lines += [
                f"  {escape(s.name)} {s.dtype} {'x'.join(map(str, s.shape)) or 'scalar'}"
                for s in summaries
            ]
            parts.append(Text.from_markup("\n".join(lines)))
    if diff.metrics:
        table = Table(title="metrics")
        table.add_column("metric")
        for column in (a, b, "Δ"):
            table.add_column(escape(column), justify="right")
        for metric in diff.metrics:
            delta = metric.delta
            table.add_row(
                escape(metric.name),
                "—" if metric.before is None else f"{metric.before:g}",
                "—" if metric.after is None else f"{metric.after:g}",
                "—" if delta is None else f"{delta:+g}",
            )
        parts.append(table)
    sharing = diff.sharing
    verdict = "[bold green]identical weights[/]; " if diff.identical else ""
    parts.append(
        Text.from_markup(
            f"{verdict}{len(diff.changed)} changed, {len(diff.added)} added, "
            f"{len(diff.removed)} removed, {len(diff.unchanged)} unchanged "
            f"({human_bytes(diff.unchanged_bytes)}); stored: "
            f"{human_bytes(sharing.shared_bytes)} shared, "
            f"{human_bytes(sharing.only_first_bytes)} only in {escape(a)}, "
            f"{human_bytes(sharing.only_second_bytes)} only in {escape(b)}"
        )
    )
    return parts


def diff_to_dict(diff: SnapshotDiff, a: ModelVersion, b: ModelVersion) -> dict[str, Any]:
    """The diff as JSON-ready data, with the versions it compares."""
    return {
        "a": a.ref,
        "b": b.ref,
        "snapshot_a": diff.a,
        "snapshot_b": diff.b,
        "identical": diff.identical,
        "changed": [
            {
                "name": change.name,
                "dtype_before": change.dtype_before,
                "dtype_after": change.dtype_after,
                "shape_before": list(change.shape_before),
                "shape_after": list(change.shape_after),
                "nbytes_before": change.nbytes_before,
                "nbytes_after": change.nbytes_after,
                "values": None
                if change.values is None
                else {
                    "max_abs_diff": change.values.max_abs_diff,
                    "relative_l2": change.values.relative_l2,
                    "cosine": change.values.cosine,
                    "changed_elements": change.values.changed_elements,
                },
            }
            for change in diff.changed
        ],
        "added": [_summary_dict(s) for s in diff.added],
        "removed": [_summary_dict(s) for s in diff.removed],
        "unchanged": list(diff.unchanged),
        "unchanged_bytes": diff.unchanged_bytes,
        "sharing": {
            "shared_bytes": diff.sharing.shared_bytes,
            "only_a_bytes": diff.sharing.only_first_bytes,
            "only_b_bytes": diff.sharing.only_second_bytes,
        },
        "metrics": [
            {"name": m.name, "before": m.before, "after": m.after, "delta": m.delta}
            for m in diff.metrics
        ],
    }


def _summary_dict(summary: Any) -> dict[str, Any]:
    return {
        "name": summary.name,
        "dtype": summary.dtype,
        "shape": list(summary.shape),
        "nbytes": summary.nbytes,
    }


@models_app.command("diff")
def diff(
    a: Annotated[str, typer.Argument(help="NAME@REF of the version before.")],
    b: Annotated[str, typer.Argument(help="NAME@REF of the version after.")],
    no_values: Annotated[
        bool,
        typer.Option("--no-values", help="List what changed without reading any values (fast)."),
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", help="Changed tensors to list (0: all).", min=0)
    ] = 50,
    json: JsonOption = False,
) -> None:
    """Compare two versions tensor by tensor: how far each changed one moved, what is shared."""
    with open_workspace() as wb:
        first, second = wb.models.version(a), wb.models.version(b)
        if json:
            result = wb.models.diff(first, second, values=not no_values)
        else:
            with err_console.status(f"comparing {escape(first.ref)} with {escape(second.ref)}…"):
                result = wb.models.diff(first, second, values=not no_values)
    if json:
        emit_json(diff_to_dict(result, first, second))
        return
    for part in diff_renderables(result, first.ref, second.ref, max_rows=limit or None):
        console.print(part)


# -- history ----------------------------------------------------------------------------------


def _value_text(key: str, value: Any) -> str:
    """A value of an audit entry, short and on one line (a model card is not printed whole)."""
    if value is None:
        return "—"
    if key == "snapshot_id" and isinstance(value, str):
        return value[:12]
    if isinstance(value, Mapping):
        text = ", ".join(f"{k}={v}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = ", ".join(map(str, value))
    else:
        text = str(value)
    flat = " ".join(text.split())
    if len(flat) > _MAX_VALUE_CHARS:
        return f"{flat[: _MAX_VALUE_CHARS - 1]}… ({len(text):,} characters)"
    return flat


def change_text(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str:
    """An audit entry's change in one line: ``alias=production version: 0.1.0 → 0.2.0``."""
    old, new = dict(before or {}), dict(after or {})
    parts = []
    for key in [*old, *(k for k in new if k not in old)]:
        if key in old and key in new:
            if old[key] == new[key]:
                parts.append(f"{key}={_value_text(key, new[key])}")
            else:
                parts.append(f"{key}: {_value_text(key, old[key])} → {_value_text(key, new[key])}")
        elif key in new:
            parts.append(f"{key}={_value_text(key, new[key])}")
        else:
            parts.append(f"{key}={_value_text(key, old[key])} → —")
    if before and after is None:
        parts.append("(removed)")
    return " ".join(parts)


def history_table(entries: Sequence[AuditEntry], *, title: str | None = None) -> Table:
    """The audit trail as a table: time, actor, action, before → after, reason."""
    table = Table(title=title)
    for column in ("time", "actor", "action", "change", "reason"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            entry.at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            escape(entry.actor),
            escape(entry.action),
            escape(change_text(entry.before, entry.after)),
            escape(entry.reason or ""),
        )
    return table


@models_app.command("history")
def history(
    name: Annotated[str, typer.Argument(help="Model name.")],
    limit: Annotated[int, typer.Option("--limit", help="At most this many entries.")] = 1000,
    json: JsonOption = False,
) -> None:
    """Every change to a model, oldest first: versions pushed, aliases moved, stages changed."""
    with open_workspace() as wb:
        entries = wb.models.history(name, limit=limit)
    if json:
        emit_json([entry.to_dict() for entry in entries])
        return
    console.print(history_table(entries, title=f"history of {escape(name)}"))


# -- tags, aliases, stages, rollback ----------------------------------------------------------


@models_app.command("tag")
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


@models_app.command("alias")
def alias(
    name: Annotated[str, typer.Argument(help="Model name.")],
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


@models_app.command("promote")
def promote(
    ref: Annotated[str, typer.Argument(help="NAME@REF of the version.")],
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


@models_app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="Model name.")],
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


# -- lineage ----------------------------------------------------------------------------------


@models_app.command("lineage")
def lineage(
    ref: Annotated[str, typer.Argument(help="NAME@REF of the version.")],
    descendants: Annotated[
        bool,
        typer.Option("--descendants", help="What came from it, rather than where it came from."),
    ] = False,
    depth: Annotated[
        int | None, typer.Option("--depth", help="At most this many edges away.", min=1)
    ] = None,
    json: JsonOption = False,
) -> None:
    """Where a version came from (derived from, fine-tuned from…), or what came from it."""
    direction: Literal["ancestors", "descendants"] = "descendants" if descendants else "ancestors"
    with open_workspace() as wb:
        found = wb.models.version(ref)
        reached = wb.models.lineage(found, direction=direction, depth=depth)
        start = wb.models.node(found)
        names = wb.describe([start, *(r.node for r in reached), *(r.via for r in reached)])
    if json:
        emit_json(
            {
                "version": found.ref,
                "direction": direction,
                "nodes": [
                    {
                        **item.to_dict(),
                        "name": names[item.node],
                        "via_name": names[item.via],
                    }
                    for item in reached
                ],
            }
        )
        return
    if not reached:
        console.print(f"{escape(found.ref)} has no recorded {direction}")
        return
    console.print(lineage_tree(start, reached, names, descendants=descendants))


def lineage_tree(
    start: Node, reached: Sequence[ReachedNode], names: Mapping[Node, str], *, descendants: bool
) -> Tree:
    """A walk as a tree under its start; each branch is one edge (relation, then node)."""
    tree = Tree(f"[bold cyan]{escape(names[start])}[/]")
    branches: dict[Node, Tree] = {start: tree}
    for item in sorted(reached, key=lambda found: found.distance):
        label = (
            f"{escape(names[item.node])} [dim]({item.relation} the one above)[/]"
            if descendants
            else f"[dim]{item.relation} →[/] {escape(names[item.node])}"
        )
        branches[item.node] = branches.get(item.via, tree).add(label)
    return tree


# -- model-level changes ----------------------------------------------------------------------


@models_app.command("update")
def update(
    name: Annotated[str, typer.Argument(help="Model name.")],
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


@models_app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Model name.")],
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
