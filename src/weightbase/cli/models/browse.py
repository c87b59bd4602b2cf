"""``weightbase models list|show|diff|history|lineage``: reading the registry, changing nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from weightbase.cli._common import (
    console,
    emit_json,
    err_console,
    human_bytes,
    human_count,
    open_workspace,
)
from weightbase.cli.options import (
    JsonOption,
    ModelNameArgument,
    NameFilterOption,
)
from weightbase.cli.render import (
    diff_renderables,
    history_table,
    lineage_tree,
    table,
)
from weightbase.errors import NotFound
from weightbase.lineage import lineage_of
from weightbase.registry.diff import diff_to_dict

if TYPE_CHECKING:
    from weightbase.registry import ModelAnalysis, ModelVersion
    from weightbase.registry.records import Model

__all__ = ["diff", "history", "lineage", "list_models", "show"]

# Layers listed by `show` before the rest are summarised in one line.
_MAX_LAYER_ROWS = 16


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _aliases_text(aliases: Mapping[str, str]) -> str:
    return ", ".join(f"{alias} → {version}" for alias, version in aliases.items())


# -- list and show ----------------------------------------------------------------------------


def list_models(
    name: NameFilterOption = None,
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
    models = table(
        ("name", "latest", "versions", "aliases", "framework", "updated"),
        right=("versions",),
        no_wrap=("latest", "framework", "updated"),
    )
    for model in page:
        models.add_row(
            escape(model.name),
            escape(model.latest_version or "—"),
            str(model.version_count),
            escape(_aliases_text(model.aliases)),
            escape(model.framework or "—"),
            model.updated_at.astimezone().strftime("%Y-%m-%d"),
        )
    console.print(models)
    if page.next_after is not None:
        console.print(
            f"[dim]more: weightbase models list --after {escape(page.next_after)}"
            + (f" --limit {limit}" if limit != 50 else "")
            + "[/]"
        )


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
    listed = table(
        ("version", "stage", "parameters", "stored", "aliases", "tags", "created"),
        title=f"{len(versions)} version{'' if len(versions) == 1 else 's'}",
        right=("parameters", "stored"),
        no_wrap=("version", "stage"),
    )
    for item in versions:
        listed.add_row(
            escape(item.version),
            item.stage,
            human_count(item.total_params),
            human_bytes(item.stored_bytes),
            escape(", ".join(item.aliases)),
            escape(", ".join(item.tags)),
            _when(item.created_at),
        )
    console.print(listed)


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
    for dataset, values in found.dataset_metrics.items():
        _field(f"  on {escape(dataset)}", ", ".join(f"{k} {v:g}" for k, v in values.items()))
    for warning in analysis.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if analysis.layers:
        console.print(_layers_table(analysis))


def _leaf(name: str | None) -> str:
    """``encoder.layer.0.attention.self.query.weight`` → ``query``: the projection's name."""
    if name is None:
        return "—"
    parts = name.split(".")
    if len(parts) > 1 and parts[-1] in ("weight", "bias"):
        parts = parts[:-1]
    return escape(parts[-1])


def _layers_table(analysis: ModelAnalysis) -> Table:
    layers = analysis.layers
    listed = table(
        ("layer", "hidden", "heads", "kv", "head dim", "q, k, v", "out"),
        title="attention layers",
        right=("hidden", "heads", "kv", "head dim"),
        no_wrap=("layer", "q, k, v"),
    )

    def number(value: int | None) -> str:
        return "—" if value is None else str(value)

    for layer in layers[:_MAX_LAYER_ROWS]:
        qkv = (
            f"{_leaf(layer.query)} (fused)"
            if layer.fused_qkv
            else ", ".join(_leaf(name) for name in (layer.query, layer.key, layer.value))
        )
        listed.add_row(
            escape(f"{layer.stack}.{layer.index}"),
            number(layer.hidden_size),
            number(layer.num_heads),
            number(layer.num_kv_heads),
            number(layer.head_dim),
            qkv,
            _leaf(layer.output),
        )
    if len(layers) > _MAX_LAYER_ROWS:
        listed.caption = f"… and {len(layers) - _MAX_LAYER_ROWS} more layers (--json lists all)"
    return listed


# -- diff, history, lineage -------------------------------------------------------------------


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


def history(
    name: ModelNameArgument,
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


def lineage(
    ref: Annotated[
        str,
        typer.Argument(
            help="NAME@REF of the version, or any lineage node: dataset:NAME@VERSION, run:ID, "
            "checkpoint:REF, KIND:ID (see weightbase lineage)."
        ),
    ],
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
        if ":" in ref.partition("@")[0]:  # no model name has one: a node, as `lineage` takes
            graph = lineage_of(wb, ref, depth=depth)
            start, title = graph.start, graph.name(graph.start)
            reached = list(graph.descendants if descendants else graph.ancestors)
            names = {node: graph.name(node) for node in graph.nodes}
        else:
            try:
                found = wb.models.version(ref)
            except NotFound as error:
                raise NotFound(
                    f"{error} (`weightbase lineage dataset:NAME@VERSION`, `run:ID`… starts "
                    "from any other node)",
                    ref=ref,
                ) from error
            reached = wb.models.lineage(found, direction=direction, depth=depth)
            start, title = wb.models.node(found), found.ref
            names = wb.describe([start, *(r.node for r in reached), *(r.via for r in reached)])
    if json:
        emit_json(
            {
                "version": title,
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
        console.print(f"{escape(title)} has no recorded {direction}")
        return
    console.print(lineage_tree(start, reached, names, descendants=descendants))
