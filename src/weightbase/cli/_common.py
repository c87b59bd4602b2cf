"""What every command shares: the consoles, JSON output, byte progress bars, human numbers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

if TYPE_CHECKING:
    from weightbase.workspace import Workspace

console = Console()
err_console = Console(stderr=True)


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout (dataclasses become objects)."""
    typer.echo(json.dumps(_plain(value), indent=2, default=str))


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items() if not k.startswith("_")}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@contextmanager
def byte_progress(
    description: str, total: int | None, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """A progress bar over bytes; yields the callback to advance it."""
    if not enabled:
        yield lambda _: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def human_bytes(count: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def human_count(count: int) -> str:
    """``22713216`` -> ``22.7 M``; counts under a thousand as they are."""
    if abs(count) < 1000:
        return str(count)
    value = float(count)
    for unit in ("k", "M", "B"):
        value /= 1000
        if abs(value) < 1000 or unit == "B":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def path_size(path: Path) -> int:
    """The bytes of a file, or of every file under a folder (0 when nothing is there)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


@contextmanager
def open_workspace() -> Iterator[Workspace]:
    """The workspace of ``$WEIGHTBASE_HOME`` (or the catalog/store URLs set in the environment)."""
    import weightbase

    with weightbase.open() as wb:
        yield wb
