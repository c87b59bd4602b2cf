"""``weightbase.training.ports``: the workspace training needs, and nothing more of it."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

from weightbase.datasets import from_numpy
from weightbase.lineage import Node
from weightbase.tracking.run import ActiveRun
from weightbase.training import Training
from weightbase.training.ports import (
    TrainingDatasets,
    TrainingModels,
    TrainingRun,
    TrainingRuns,
    TrainingStore,
    TrainingWorkspace,
)
from weightbase.workspace import Workspace

torch = pytest.importorskip("torch")


def _typed(wb: Workspace) -> TrainingWorkspace[ActiveRun]:
    # mypy checks that the real workspace satisfies the protocol (``mypy tests/training``)
    return wb


class _OnlyWhatTrainingUses:
    """The four services and nothing else: all that a remote workspace needs to offer."""

    def __init__(self, wb: Workspace) -> None:
        self.runs = wb.runs
        self.models = wb.models
        self.datasets = wb.datasets
        self.store = wb.store


def _members(protocol: type) -> list[str]:
    return [name for name in vars(protocol) if not name.startswith("_")]


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_the_workspace_has_every_member_the_protocols_name(workspace: Workspace) -> None:
    with workspace.runs.start("ports") as run:
        pairs: list[tuple[type, Any]] = [
            (TrainingWorkspace, _typed(workspace)),
            (TrainingRuns, workspace.runs),
            (TrainingModels, workspace.models),
            (TrainingDatasets, workspace.datasets),
            (TrainingStore, workspace.store),
            (TrainingRun, run),
        ]
        for protocol, implementation in pairs:
            for name in _members(protocol):
                assert hasattr(implementation, name), f"{protocol.__name__}.{name}"
                wanted = getattr(protocol, name)
                if isinstance(wanted, property):
                    continue
                have = inspect.signature(getattr(implementation, name)).parameters
                takes_any = any(p.kind is p.VAR_KEYWORD for p in have.values())
                for parameter in list(inspect.signature(wanted).parameters.values())[1:]:
                    if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                        continue
                    assert parameter.name in have or takes_any, (
                        f"{protocol.__name__}.{name}({parameter.name}=...)"
                    )


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_training_needs_only_runs_models_datasets_and_store(workspace: Workspace) -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(64, 4)).astype(np.float32)
    labels = rng.integers(0, 2, 64)
    dataset = workspace.datasets.register("points", from_numpy(features, labels))
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.from_numpy(features), torch.from_numpy(labels)

    services = _OnlyWhatTrainingUses(workspace)

    def train(training: Training[Any], stop: int | None = None) -> None:
        for epoch in training.epochs(2):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            training.step({"loss": loss})
            training.end_epoch({"loss": loss})
            if epoch + 1 == stop:
                raise KeyboardInterrupt

    kept = {"model": model, "optimizer": optimizer, "dataset": dataset, "monitor": "loss"}
    with pytest.raises(KeyboardInterrupt), Training(services, "ports", **kept) as first:
        train(first, stop=1)
    run_id = first.run.id
    assert workspace.runs.get(run_id).status.value == "cancelled"

    # resuming, checkpointing and registering go through the same four services
    with Training(services, "ports", resume=True, **kept) as training:
        assert (training.run.id, training.start_epoch) == (run_id, 1)
        train(training)
        version = training.register("points-linear")

    assert workspace.runs.get(run_id).status.value == "completed"
    assert [c.epoch for c in training.checkpoints.list()] == [1, 2]
    ancestors = {(r.node, r.relation) for r in workspace.models.lineage(version, depth=1)}
    assert ancestors == {
        (Node("run", str(run_id)), "produced_by"),
        (workspace.datasets.node(dataset), "trained_on"),
    }
