"""``weightbase datasets …``: dataset versions from the shell, thin over ``wb.datasets``.

Register a file or folder as a dataset version (the loader chosen by its format),
list datasets, show a version's statistics and quality score, print its splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from weightbase.cli._common import byte_progress, console, emit_json, open_workspace, path_size
from weightbase.cli.options import (
    DescriptionOption,
    JsonOption,
    NameFilterOption,
    VersionOption,
    VersionTagsOption,
)
from weightbase.cli.render import sizes_text, table

if TYPE_CHECKING:
    from weightbase.datasets import DatasetVersion

__all__ = ["datasets_app"]

datasets_app = typer.Typer(
    help="Datasets: register versions from files, list them, show statistics, quality, splits.",
    no_args_is_help=True,
)

RefArgument = Annotated[
    str, typer.Argument(help="NAME (its latest version) or NAME@VERSION, such as digits@1.0.0.")
]

# Features listed by `show` before the rest are summarised in one line.
_MAX_FEATURE_ROWS = 20


@datasets_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Dataset name, such as digits or org/digits.")],
    path: Annotated[Path, typer.Argument(help="A file (.npz, .npy, .parquet, .csv) or folder.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="How to read PATH: auto (by extension, or by the files in a folder), "
            "numpy (.npz with x and y, or .npy), parquet, csv, or an image, text or audio "
            "folder (class-per-subfolder gives labels).",
        ),
    ] = "auto",
    target: Annotated[
        str | None,
        typer.Option("--target", help="The label column (CSV, Parquet) or array (.npz)."),
    ] = None,
    version: VersionOption = None,
    description: DescriptionOption = None,
    tags: VersionTagsOption = None,
    json: JsonOption = False,
) -> None:
    """Register PATH as a new version of dataset NAME; print its statistics and quality grade.

    Data equal to a version already registered is not stored twice: that
    version is shown, with the tags given applied to it.
    """
    from weightbase.datasets.sources import from_path

    content = from_path(path, fmt, target=target)
    progress = byte_progress(f"storing {path.name}", path_size(path), enabled=not json)
    with open_workspace() as wb, progress as advance:
        registered = wb.datasets.register(
            name,
            content,
            version=version,
            description=description,
            tags=tags or (),
            progress=advance,
        )
    if json:
        emit_json(registered.to_dict())
        return
    if registered.created:
        console.print(f"[bold green]added[/] {escape(registered.ref)} [dim](new version)[/]")
    else:
        console.print(
            f"[bold yellow]identical[/] to {escape(registered.ref)}: same data already "
            "registered, no new version made"
        )
    _print_version(registered)


@datasets_app.command("list")
def list_datasets(
    name: NameFilterOption = None,
    tag: Annotated[
        str | None, typer.Option("--tag", help="Only datasets with a version tagged so.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many datasets.")] = 50,
    json: JsonOption = False,
) -> None:
    """Datasets by name, with their latest version and kind."""
    with open_workspace() as wb:
        page = wb.datasets.list(name=name, tag=tag, limit=limit)
    if json:
        emit_json(
            {"datasets": [item.to_dict() for item in page.items], "more": bool(page.next_after)}
        )
        return
    if not page.items:
        console.print("no datasets")
        return
    datasets = table(("name", "latest", "versions", "kind", "format", "updated"), plain=True)
    for item in page.items:
        datasets.add_row(
            escape(item.name),
            item.latest_version or "",
            str(item.version_count),
            item.kind or "",
            item.format or "",
            item.updated_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(datasets)
    if page.next_after is not None:
        console.print(f"[dim]more datasets: raise --limit (now {limit})[/]")


@datasets_app.command("show")
def show(ref: RefArgument, json: JsonOption = False) -> None:
    """A dataset version: size, statistics, the quality grade, score and parts, split sizes."""
    with open_workspace() as wb:
        found = wb.datasets.version(ref if "@" in ref else f"{ref}@latest")
    if json:
        emit_json(found.to_dict())
        return
    console.print(f"[bold]{escape(found.ref)}[/]")
    _print_version(found)


@datasets_app.command("splits")
def splits(
    ref: RefArgument,
    indices: Annotated[
        bool, typer.Option("--indices", help="With --json: every split's sample indices too.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """The train/validation/test split drawn at registration: spec, sizes, duplicate groups."""
    with open_workspace() as wb:
        found = wb.datasets.splits(ref if "@" in ref else f"{ref}@latest")
    sizes = found.sizes
    if json:
        doc: dict[str, Any] = found.to_dict()
        if indices:
            doc["indices"] = {part: array.tolist() for part, array in found.to_arrays().items()}
        emit_json(doc)
        return
    spec = found.spec
    stratified = ", stratified" if spec.stratify else ""
    console.print(
        f"fractions {spec.train:g}/{spec.validation:g}/{spec.test:g}, seed {spec.seed}{stratified}"
    )
    for part, size in sizes.items():
        console.print(f"  {part}: {size:,} samples")
    console.print(_groups_text(found.spec.group_duplicates, found.duplicate_groups))


def _print_version(found: DatasetVersion) -> None:
    console.print(
        f"  {found.kind} {found.format} data, {found.sample_count:,} samples, "
        f"{sizes_text(found.logical_bytes, found.stored_bytes)}"
    )
    if found.description:
        console.print(f"  {escape(found.description)}")
    if found.tags:
        console.print(f"  tags: {escape(', '.join(found.tags))}")
    stats = found.statistics
    if stats is not None:
        shape = "varies" if stats.input_shape is None else str(list(stats.input_shape))
        console.print(f"  input shape {shape}", end="")
        if stats.output_shape is not None:
            console.print(f", target shape {list(stats.output_shape)}", end="")
        console.print()
        if stats.label_distribution:
            classes = ", ".join(f"{k}: {v}" for k, v in stats.label_distribution.items())
            console.print(f"  labels: {escape(classes)}")
        if stats.features:
            features = table(
                ("feature", "kind", "dtype", "missing", "unique", "mean", "std"),
                title="features",
                plain=True,
            )
            for feature in stats.features[:_MAX_FEATURE_ROWS]:
                features.add_row(
                    escape(feature.name),
                    str(feature.kind),
                    feature.dtype,
                    str(feature.missing),
                    "" if feature.unique is None else str(feature.unique),
                    "" if feature.mean is None else f"{feature.mean:.4g}",
                    "" if feature.std is None else f"{feature.std:.4g}",
                )
            console.print(features)
            hidden = len(stats.features) - _MAX_FEATURE_ROWS
            if hidden > 0:
                console.print(f"  [dim]… and {hidden} more features (--json has them all)[/]")
    quality = found.quality
    if quality is not None:
        console.print(f"  [bold]quality score {quality.score:.3f}, grade {quality.grade}[/]")
        for part in quality.parts:
            value = "n/a" if part.value is None else f"{part.grade} {part.value:.3f}"
            measure = "" if part.measure is None else f", measure {part.measure:.4g}"
            console.print(
                f"    {escape(part.name)}: {value} (weight {part.weight:g}{measure}) "
                f"{escape(part.detail)}"
            )
    if found.split_sizes:
        sizes = ", ".join(f"{part} {size:,}" for part, size in found.split_sizes.items())
        console.print(f"  splits: {sizes}")
        grouping = found.split_spec.group_duplicates if found.split_spec else False
        console.print(_groups_text(grouping, found.split_duplicate_groups))


def _groups_text(grouped: bool, groups: int | None) -> str:
    if not grouped or groups is None:
        return "  copies of one sample were not kept together (drawn without grouping)"
    return f"  {groups:,} groups of copies of one sample kept together in one split"
