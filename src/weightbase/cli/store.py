"""``weightbase store …``: put, get, show, refs, fsck and gc on the tensor store."""

from __future__ import annotations

import time
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
from weightbase.cli.options import JsonOption, OutArgument, StoreOption
from weightbase.cli.render import sizes_text, table
from weightbase.tensors import TensorStore, WriteStats, export_path, import_path
from weightbase.tensors.formats import EXPORT_FORMATS
from weightbase.tensors.maintenance import DEFAULT_GRACE_SECONDS

store_app = typer.Typer(
    help="The content-addressed tensor store: put weights in, get them out, check and clean it.",
    no_args_is_help=True,
)

SnapshotArgument = Annotated[str, typer.Argument(help="Snapshot id, id prefix or ref.")]


def _open(url: str | None) -> TensorStore:
    return TensorStore.open(url)


@store_app.command("put")
def put(
    path: Annotated[
        Path, typer.Argument(help="A .safetensors file, a torch file or a model folder.")
    ],
    ref: Annotated[str | None, typer.Option(help="Name to pin the snapshot under.")] = None,
    parent: Annotated[
        str | None, typer.Option(help="Snapshot (id or ref) to share with and delta against.")
    ] = None,
    codec: Annotated[str, typer.Option(help="auto, raw, zstd, lz4, bytegroup or delta.")] = "auto",
    store: StoreOption = None,
    json: JsonOption = False,
) -> None:
    """Store weights as a snapshot; unchanged chunks are shared with everything stored before."""
    tensor_store = _open(store)
    stats = WriteStats()
    started = time.perf_counter()
    with byte_progress(f"storing {path.name}", path_size(path), enabled=not json) as advance:
        snapshot = import_path(
            tensor_store,
            path,
            ref=ref,
            parent=parent,
            codec=codec,
            progress=advance,
            stats=stats,
        )
    elapsed = time.perf_counter() - started
    result = {
        "snapshot": snapshot.id,
        "ref": ref or f"snapshots/{snapshot.id}",
        "tensors": len(snapshot.tensors),
        "files": len(snapshot.files),
        "logical_bytes": snapshot.nbytes,
        "stored_bytes": snapshot.stored_bytes,
        "new_bytes": stats.new_bytes,
        "reused_chunks": stats.reused_chunks,
        "new_chunks": stats.new_chunks,
        "seconds": round(elapsed, 3),
    }
    if json:
        emit_json(result)
        return
    ratio = snapshot.stored_bytes / snapshot.nbytes if snapshot.nbytes else 1.0
    ref_name = escape(str(result["ref"]))
    console.print(f"[bold green]stored[/] snapshot [cyan]{snapshot.id[:16]}[/] as {ref_name}")
    console.print(
        f"  {len(snapshot.tensors)} tensors, {len(snapshot.files)} files, "
        f"{sizes_text(snapshot.nbytes, snapshot.stored_bytes)} ({ratio:.3f}); "
        f"{human_bytes(stats.new_bytes)} new, {stats.reused_chunks} chunks reused; "
        f"{elapsed:.2f} s"
    )


@store_app.command("get")
def get(
    snapshot: SnapshotArgument,
    out: OutArgument,
    format: Annotated[
        str | None,
        typer.Option(help=f"One of {', '.join(EXPORT_FORMATS)} (default: from the path)."),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Write a snapshot back out, bit-exact (a stored file or folder is rebuilt byte for byte)."""
    tensor_store = _open(store)
    snap = tensor_store.snapshot(snapshot)
    target = export_path(tensor_store, snap, out, format=format)
    console.print(f"[bold green]wrote[/] {escape(str(target))} ({human_bytes(snap.nbytes)})")


@store_app.command("show")
def show(
    snapshot: SnapshotArgument,
    store: StoreOption = None,
    json: JsonOption = False,
) -> None:
    """List a snapshot's tensors and files with their dtype, shape, codec and sizes."""
    snap = _open(store).snapshot(snapshot)
    if json:
        emit_json(
            {
                "snapshot": snap.id,
                "parent": snap.parent,
                "metadata": dict(snap.metadata),
                "logical_bytes": snap.nbytes,
                "stored_bytes": snap.stored_bytes,
                "tensors": {n: e.to_dict() for n, e in snap.tensors.items()},
                "files": {n: f.to_dict() for n, f in snap.files.items()},
            }
        )
        return
    tensors = table(
        ("tensor", "dtype", "shape", "size", "stored", "chunks"),
        title=f"snapshot {snap.id[:16]}",
        right=("size", "stored", "chunks"),
    )
    for name, entry in snap.tensors.items():
        stored = sum(ref.stored for ref in entry.chunks if not ref.offset)
        tensors.add_row(
            escape(name),
            entry.dtype,
            "x".join(map(str, entry.shape)) or "scalar",
            human_bytes(entry.nbytes),
            human_bytes(stored) if stored else "packed",
            str(len(entry.chunks)),
        )
    console.print(tensors)
    for name, file in snap.files.items():
        console.print(f"  file {escape(name)} ({file.kind}, {human_bytes(file.size)})")
    console.print(
        f"{human_bytes(snap.nbytes)} logical, {human_bytes(snap.stored_bytes)} stored"
        + (f", parent {snap.parent[:16]}" if snap.parent else "")
    )


@store_app.command("refs")
def refs(store: StoreOption = None, json: JsonOption = False) -> None:
    """List refs (the names that keep snapshots alive) and what they point at."""
    found = _open(store).refs()
    if json:
        emit_json(found)
        return
    for name, target in sorted(found.items()):
        console.print(f"{target[:16]}  {escape(name)}")


@store_app.command("tag")
def tag(
    name: Annotated[str, typer.Argument(help="Ref name, for example models/bert/v1.")],
    snapshot: SnapshotArgument,
    store: StoreOption = None,
) -> None:
    """Point a ref at a snapshot."""
    tensor_store = _open(store)
    tensor_store.set_ref(name, snapshot)
    console.print(f"{escape(name)} → {tensor_store.get_ref(name)[:16]}")


@store_app.command("untag")
def untag(
    name: Annotated[str, typer.Argument(help="Ref to remove; its snapshot becomes collectable.")],
    store: StoreOption = None,
) -> None:
    """Remove a ref; gc may then collect what only it kept alive."""
    _open(store).delete_ref(name)
    console.print(f"removed ref {escape(name)}")


@store_app.command("fsck")
def fsck_command(store: StoreOption = None, json: JsonOption = False) -> None:
    """Re-hash every chunk and manifest; list corrupt or missing chunks. Exit 1 if any."""
    tensor_store = _open(store)
    total = sum(info.size for info in tensor_store.objects.list("chunks/"))
    with byte_progress("checking", total, enabled=not json) as advance:
        report = tensor_store.fsck(progress=advance)
    if json:
        emit_json({**_as_dict(report), "ok": report.ok})
    else:
        console.print(
            f"checked {report.chunks_checked} chunks ({human_bytes(report.bytes_checked)}) "
            f"and {report.snapshots_checked} snapshots"
        )
        for problem in report.problems:
            hurt = f" — tensors {', '.join(problem.tensors[:5])}" if problem.tensors else ""
            detail = escape(f"{problem.key}: {problem.detail}{hurt}")
            console.print(f"[red]{problem.kind}[/] {detail}")
        console.print(
            "[bold green]ok[/]" if report.ok else f"[bold red]{len(report.problems)} problems[/]"
        )
    if not report.ok:
        raise typer.Exit(1)


@store_app.command("gc")
def gc_command(
    grace: Annotated[
        float, typer.Option(help="Keep unreferenced objects younger than this many seconds.")
    ] = DEFAULT_GRACE_SECONDS,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, remove nothing.")] = False,
    store: StoreOption = None,
    json: JsonOption = False,
) -> None:
    """Remove chunks and snapshots no ref reaches. Safe while other processes write.

    On the workspace's own store (no --store), publishes that a killed process
    left half done are settled first: a version whose catalog row committed gets
    its ref, content no row took is left for the sweep.
    """
    publishes = None
    if store is None:
        with open_workspace() as wb:
            collected = wb.gc(grace_seconds=grace, dry_run=dry_run)
        report, publishes = collected.store, collected.publishes
    else:
        report = _open(store).gc(grace_seconds=grace, dry_run=dry_run)
    if json:
        emit_json({**_as_dict(report), "publishes": _as_dict(publishes) if publishes else None})
        return
    verb = "would remove" if dry_run else "removed"
    if publishes is not None and (publishes.pinned or publishes.released):
        console.print(
            f"{'would finish' if dry_run else 'finished'} {len(publishes.pinned)} interrupted "
            f"publishes and {'would drop' if dry_run else 'dropped'} "
            f"{len(publishes.released)} pending refs"
        )
    console.print(
        f"{verb} {report.removed_chunks} chunks ({human_bytes(report.removed_bytes)}) and "
        f"{report.removed_snapshots} snapshots; kept {report.live_chunks} live chunks of "
        f"{report.live_snapshots} snapshots ({report.kept_young} unreferenced but younger than "
        f"{grace:.0f} s)"
    )


def _as_dict(report: object) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(report)  # type: ignore[call-overload,no-any-return]
