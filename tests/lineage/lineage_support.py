"""A small lineage graph over every kind of node, for the CLI, API and remote tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from weightbase.lineage import Node

__all__ = ["Made", "record_lineage"]


@dataclass(frozen=True)
class Made:
    """What ``record_lineage`` recorded: the nodes of the graph, by id."""

    dataset: Node
    run_id: int
    base: Node
    tuned: Node
    checkpoint: str


def record_lineage(wb: Any) -> Made:
    """dataset ← run ← checkpoint; dataset ← mlp@0.1.0 (produced_by the run) ← tuned@0.1.0."""
    from weightbase.datasets import from_numpy

    rng = np.random.default_rng(0)
    data = wb.datasets.register(
        "digits", from_numpy(rng.standard_normal((40, 4)), np.arange(40) % 2)
    )
    dataset = wb.datasets.node(data)
    with wb.runs.start("lineage") as run:
        run.link(dataset, "trained_on")
    checkpoint = f"checkpoints/runs/{run.id}/10"
    snapshot = wb.store.write({"model.w": np.ones(4, dtype=np.float32)})
    wb.store.set_ref(checkpoint, snapshot)
    base = wb.models.push("mlp", {"w": np.zeros((4, 4), dtype=np.float32)})
    wb.models.link(base, "produced_by", Node("run", str(run.id)))
    wb.models.link(base, "trained_on", dataset)
    wb.models.link(base, "derived_from", Node("checkpoint", checkpoint))
    tuned = wb.models.push("mlp-tuned", {"w": np.ones((4, 4), dtype=np.float32)})
    wb.models.link(tuned, "fine_tuned_from", base)
    # the checkpoint was written by the run: recorded as any other edge
    wb.lineage.add_edge(Node("checkpoint", checkpoint), Node("run", str(run.id)), "produced_by")
    return Made(dataset, run.id, wb.models.node(base), wb.models.node(tuned), checkpoint)
