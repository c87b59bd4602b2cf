"""The demo's training part: register digits, train with tracking and checkpoints, register.

Everything is seeded, so a rerun trains the same weights: the dataset and the
model version are found identical, and only a new run is recorded.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.table import Table

from weightbase.cli._common import console, human_bytes
from weightbase.errors import MissingExtraError

if TYPE_CHECKING:
    from weightbase.workspace import Workspace

__all__ = ["render_training", "train_digits"]

DATASET = "sklearn-digits"
MODEL = "digits-mlp"
EPOCHS = 8
#: The JSON init arguments of the registered ``DigitsMLP``: 8x8 pixels in, 10 digits out.
MODEL_ARGS = {"inputs": 64, "hidden": 128, "outputs": 10}
_PARTS = ("train", "validation", "test")


def train_digits(wb: Workspace) -> dict[str, Any]:
    """Register scikit-learn's digits, train a small MLP on it, register the best checkpoint."""
    try:
        import torch
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - the demo extra brings both
        raise MissingExtraError(
            f"the demo's training part needs torch and scikit-learn ({exc.name} is missing): "
            "pip install torch==2.13.0 'weightbase[all]'"
        ) from exc
    from weightbase.datasets import Preprocessing, SplitSpec, from_numpy
    from weightbase.sample_models import DIGITS_MLP, DigitsMLP
    from weightbase.training import Training

    started = time.perf_counter()
    digits = load_digits()
    steps = Preprocessing().then("normalisation", "scale", factor=1 / 16)
    dataset = wb.datasets.register(
        DATASET,
        from_numpy(digits.data.astype(np.float32), digits.target),
        split=SplitSpec(train=0.7, validation=0.15, test=0.15, seed=0, stratify=True),
        preprocessing=steps,
        description="scikit-learn's 8x8 handwritten digits",
    )
    stored_splits = wb.datasets.splits(dataset)
    # the stored index arrays are read-only views; torch wants its own copies
    splits = {part: torch.tensor(getattr(stored_splits, part)) for part in _PARTS}
    x = torch.from_numpy(digits.data.astype(np.float32) / 16)
    y = torch.from_numpy(digits.target)
    train = torch.utils.data.TensorDataset(x[splits["train"]], y[splits["train"]])

    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(train, batch_size=64, shuffle=True)
    model = DigitsMLP(**MODEL_ARGS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
    params = {"lr": 3e-3, "weight_decay": 1e-4, "batch_size": 64, "epochs": EPOCHS, **MODEL_ARGS}

    def validate(part: Any) -> tuple[float, Any]:
        model.eval()
        with torch.no_grad():
            logits = model(x[part])
            loss = torch.nn.functional.cross_entropy(logits, y[part]).item()
        model.train()
        return loss, logits

    with Training(
        wb,
        "digits",
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        params=params,
        dataset=dataset,
        monitor="val/accuracy",
        mode="max",
        keep_last=2,
    ) as training:
        for epoch in training.epochs(EPOCHS):
            losses = []
            for xb, yb in loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                training.step({"train/batch_loss": loss})
                losses.append(loss.item())
            scheduler.step()
            val_loss, logits = validate(splits["validation"])
            accuracy = float((logits.argmax(1) == y[splits["validation"]]).float().mean())
            training.end_epoch(
                {
                    "train/loss": float(np.mean(losses)),
                    "val/loss": val_loss,
                    "val/accuracy": accuracy,
                }
            )
            del epoch
        checkpoints = training.checkpoints.list()
        best = training.checkpoints.best()
        assert best is not None
        # with its entry point, so that ``weightbase serve`` rebuilds the class around it
        version = training.register(
            MODEL,
            description="MLP on sklearn digits (demo)",
            entry_point=DIGITS_MLP,
            init_args=MODEL_ARGS,
        )
        # the registered weights, evaluated on the held-out test split
        wb.models.load_into(model, version)
        _, logits = validate(splits["test"])
        evaluation = training.run.evaluate(
            y[splits["test"]].numpy(), logits.argmax(1).numpy(), prefix="test/", average="macro"
        )
        run_id = training.run.id
        checkpoint_seconds = training.checkpoint_seconds

    report = wb.runs.convergence(run_id, train="train/loss", validation="val/loss")
    stored = [wb.store.snapshot(c.snapshot_id) for c in checkpoints]
    # what each kept checkpoint added to the store beyond the one before it
    added = [stored[0].stored_bytes] + [
        wb.store.sharing(before, after).only_second_bytes
        for before, after in itertools.pairwise(stored)
    ]
    lineage = wb.models.lineage(version, depth=1)
    names = wb.describe(reached.node for reached in lineage)
    return {
        "dataset": {
            "version": dataset.ref,
            "created": dataset.created,
            "samples": dataset.sample_count,
            "quality": round(dataset.quality_score or 0.0, 4),
            "grade": dataset.quality_grade,
            "splits": dict(dataset.split_sizes),
        },
        "run": run_id,
        "epochs": EPOCHS,
        "best_checkpoint": {"epoch": best.epoch, "metrics": dict(best.metrics)},
        "checkpoints_kept": [c.epoch for c in checkpoints],
        "checkpoint_bytes": [s.nbytes for s in stored],
        "checkpoint_new_bytes": added,
        "checkpoint_seconds": round(checkpoint_seconds, 3),
        "model": {"version": version.ref, "created": version.created},
        "test": {k: round(v, 4) for k, v in evaluation.metrics.items()},
        "convergence": report.to_dict(),
        "lineage": [
            {"node": names[reached.node], "relation": reached.relation} for reached in lineage
        ],
        "seconds": round(time.perf_counter() - started, 2),
    }


def render_training(result: dict[str, Any]) -> None:
    """Print the training part for people."""
    data = result["dataset"]
    verb = "registered" if data["created"] else "[yellow]identical[/] to"
    console.rule("[bold]training")
    console.print(
        f"dataset {verb} {data['version']}: {data['samples']} samples, quality "
        f"{data['quality']:.3f} (grade {data['grade']}), splits {data['splits']}"
    )
    best = result["best_checkpoint"]
    console.print(
        f"run {result['run']}: {result['epochs']} epochs, checkpoint every epoch "
        f"({result['checkpoint_seconds']:.2f} s in all), kept epochs {result['checkpoints_kept']} "
        f"(last 2 + best: epoch {best['epoch']}, val/accuracy "
        f"{best['metrics']['val/accuracy']:.3f})"
    )
    table = Table(title="test split, registered weights", show_header=True)
    for name in result["test"]:
        table.add_column(name, justify="right")
    table.add_row(*(f"{value:.3f}" for value in result["test"].values()))
    console.print(table)
    conv = result["convergence"]
    console.print(
        f"convergence: converged={conv['converged']}, plateau={conv['plateau_detected']}, "
        f"overfitting risk={conv['overfitting_risk']}, suggested stop={conv['suggested_stop']}"
    )
    model = result["model"]
    verb = "registered" if model["created"] else "[yellow]identical[/] to"
    links = ", ".join(f"{link['relation']} {link['node']}" for link in result["lineage"])
    console.print(f"model {verb} {model['version']}: {links}")
    sizes = ", ".join(
        f"{human_bytes(size)} → {human_bytes(new)}"
        for size, new in zip(
            result["checkpoint_bytes"], result["checkpoint_new_bytes"], strict=True
        )
    )
    console.print(f"checkpoints kept, logical → stored beyond the previous one: {sizes}\n")
