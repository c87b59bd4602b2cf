"""``weightbase datasets …``: dataset versions from the shell, thin over ``wb.datasets``.

Register a file or folder as a dataset version (the loader chosen by its format),
list datasets, show a version's statistics and quality score, print its splits.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from weightbase.cli._common import (
    byte_progress,
    console,
    emit_json,
    human_bytes,
    open_workspace,
    path_size,
)
from weightbase.errors import ValidationError

if TYPE_CHECKING:
    from weightbase.datasets import DatasetContent, DatasetVersion

__all__ = ["datasets_app"]

datasets_app = typer.Typer(
    help="Datasets: register versions from files, list them, show statistics, quality, splits.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
RefArgument = Annotated[
    str, typer.Argument(help="NAME (its latest version) or NAME@VERSION, such as digits@1.0.0.")
]

# Features listed by `show` before the rest are summarised in one line.
_MAX_FEATURE_ROWS = 20


class SourceFormat(StrEnum):
    """How ``datasets add`` reads PATH."""

    AUTO = "auto"
    NUMPY = "numpy"
    PARQUET = "parquet"
    CSV = "csv"
    IMAGE = "image"
    TEXT = "text"
    AUDIO = "audio"


# -- reading a source -------------------------------------------------------------------------


def detect_format(path: Path) -> SourceFormat:
    """The format of a file by its extension, or of a folder by the files in it."""
    from weightbase.datasets.loaders import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, TEXT_EXTENSIONS

    by_suffix = {".npz": SourceFormat.NUMPY, ".npy": SourceFormat.NUMPY}
    by_suffix |= {".parquet": SourceFormat.PARQUET, ".pq": SourceFormat.PARQUET}
    by_suffix |= {".csv": SourceFormat.CSV}
    if path.is_file():
        found = by_suffix.get(path.suffix.lower())
        if found is None:
            raise ValidationError(
                f"cannot tell the format of {path.name}: use --format "
                "(numpy for .npz/.npy, parquet, csv; image, text or audio for a folder)"
            )
        return found
    suffixes = {
        item.suffix.lower()
        for item in path.rglob("*")
        if item.is_file() and not item.name.startswith(".")
    }
    for fmt, extensions in (
        (SourceFormat.PARQUET, (".parquet", ".pq")),
        (SourceFormat.IMAGE, IMAGE_EXTENSIONS),
        (SourceFormat.AUDIO, AUDIO_EXTENSIONS),
        (SourceFormat.TEXT, TEXT_EXTENSIONS),
    ):
        if suffixes & set(extensions):
            return fmt
    raise ValidationError(
        f"{path} holds no Parquet, image, audio or text files; use --format to say what it is"
    )


def load_source(path: Path, fmt: SourceFormat, *, target: str | None) -> DatasetContent:
    """``path`` read with the loader for ``fmt`` (``auto`` detected first)."""
    from weightbase import datasets

    if not path.exists():
        raise ValidationError(f"{path} does not exist")
    if fmt is SourceFormat.AUTO:
        fmt = detect_format(path)
    folder_formats = (SourceFormat.IMAGE, SourceFormat.TEXT, SourceFormat.AUDIO)
    if fmt in folder_formats and not path.is_dir():
        raise ValidationError(f"--format {fmt.value} reads a folder; {path} is a file")
    if fmt is SourceFormat.NUMPY:
        return _from_numpy_file(path, target)
    if fmt is SourceFormat.PARQUET:
        return datasets.from_parquet(path, target=target)
    if fmt is SourceFormat.CSV:
        from weightbase.datasets._extras import require

        pandas = require("pandas", purpose="reading CSV")
        try:
            frame = pandas.read_csv(path)
        except (OSError, ValueError) as exc:
            raise ValidationError(f"cannot read {path} as CSV: {exc}") from exc
        return datasets.from_pandas(frame, target=target)
    if fmt is SourceFormat.IMAGE:
        return datasets.from_image_folder(path)
    if fmt is SourceFormat.TEXT:
        return datasets.from_text_folder(path)
    return datasets.from_audio_folder(path)


def _from_numpy_file(path: Path, target: str | None) -> DatasetContent:
    """``.npy``: the inputs; ``.npz``: inputs ``x`` (or ``X``, or its only array), target ``y``."""
    import numpy as np

    from weightbase.datasets import from_numpy

    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"cannot read {path} with numpy.load: {exc}") from exc
    if isinstance(loaded, np.ndarray):
        if target is not None:
            raise ValidationError("a .npy file holds one array: --target needs an .npz")
        return from_numpy(loaded)
    with loaded:
        names = list(loaded.files)
        target_name = target if target is not None else ("y" if "y" in names else None)
        if target_name is not None and target_name not in names:
            raise ValidationError(
                f"{path.name} has no array {target_name!r}; it has {', '.join(names)}"
            )
        inputs = [name for name in names if name != target_name]
        x_name = next((name for name in ("x", "X") if name in inputs), None)
        if x_name is None and len(inputs) == 1:
            x_name = inputs[0]
        if x_name is None:
            raise ValidationError(
                f"{path.name} holds {', '.join(names)}: name the inputs 'x' "
                "(and the target 'y', or pass --target)"
            )
        y = loaded[target_name] if target_name is not None else None
        return from_numpy(loaded[x_name], y, target=target_name or "y")


# -- commands ---------------------------------------------------------------------------------


@datasets_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Dataset name, such as digits or org/digits.")],
    path: Annotated[Path, typer.Argument(help="A file (.npz, .npy, .parquet, .csv) or folder.")],
    fmt: Annotated[
        SourceFormat,
        typer.Option(
            "--format",
            help="How to read PATH: auto (by extension, or by the files in a folder), "
            "numpy (.npz with x and y, or .npy), parquet, csv, or an image, text or audio "
            "folder (class-per-subfolder gives labels).",
        ),
    ] = SourceFormat.AUTO,
    target: Annotated[
        str | None,
        typer.Option("--target", help="The label column (CSV, Parquet) or array (.npz)."),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option("--version", help="Exact semantic version, such as 1.0.0 (default: bump)."),
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="What this version is.")
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="Tag the version (repeatable).")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Register PATH as a new version of dataset NAME; print its statistics and quality score.

    Data equal to a version already registered is not stored twice: that
    version is shown, with the tags given applied to it.
    """
    content = load_source(path, fmt, target=target)
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
    name: Annotated[
        str | None, typer.Option("--name", help="Only names containing this text.")
    ] = None,
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
    table = Table(box=None, header_style="bold")
    for column in ("name", "latest", "versions", "kind", "format", "updated"):
        table.add_column(column)
    for item in page.items:
        table.add_row(
            escape(item.name),
            item.latest_version or "",
            str(item.version_count),
            item.kind or "",
            item.format or "",
            item.updated_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
    if page.next_after is not None:
        console.print(f"[dim]more datasets: raise --limit (now {limit})[/]")


@datasets_app.command("show")
def show(ref: RefArgument, json: JsonOption = False) -> None:
    """A dataset version: size, statistics, the quality score and its parts, split sizes."""
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
    """The train/validation/test split drawn at registration: spec and sizes."""
    with open_workspace() as wb:
        found = wb.datasets.splits(ref if "@" in ref else f"{ref}@latest")
    sizes = found.sizes
    if json:
        doc: dict[str, Any] = {"spec": found.spec.to_dict(), "sizes": sizes}
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


def _print_version(found: DatasetVersion) -> None:
    console.print(
        f"  {found.kind} {found.format} data, {found.sample_count:,} samples, "
        f"{human_bytes(found.logical_bytes)} logical → {human_bytes(found.stored_bytes)} stored"
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
            table = Table(box=None, header_style="bold", title="features", title_justify="left")
            for column in ("feature", "kind", "dtype", "missing", "unique", "mean", "std"):
                table.add_column(column)
            for feature in stats.features[:_MAX_FEATURE_ROWS]:
                table.add_row(
                    escape(feature.name),
                    str(feature.kind),
                    feature.dtype,
                    str(feature.missing),
                    "" if feature.unique is None else str(feature.unique),
                    "" if feature.mean is None else f"{feature.mean:.4g}",
                    "" if feature.std is None else f"{feature.std:.4g}",
                )
            console.print(table)
            hidden = len(stats.features) - _MAX_FEATURE_ROWS
            if hidden > 0:
                console.print(f"  [dim]… and {hidden} more features (--json has them all)[/]")
    quality = found.quality
    if quality is not None:
        console.print(f"  [bold]quality score {quality.score:.3f}[/]")
        for part in quality.parts:
            value = "n/a" if part.value is None else f"{part.value:.3f}"
            console.print(
                f"    {escape(part.name)}: {value} (weight {part.weight:g}) {escape(part.detail)}"
            )
    if found.split_sizes:
        sizes = ", ".join(f"{part} {size:,}" for part, size in found.split_sizes.items())
        console.print(f"  splits: {sizes}")
