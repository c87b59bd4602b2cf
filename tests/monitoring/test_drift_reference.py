"""The default drift reference: the training split of the dataset lineage says a model
version was trained_on; errors saying to pass a reference when lineage has none."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from weightbase.datasets import from_numpy, from_pandas
from weightbase.errors import NotFound, ValidationError
from weightbase.lineage import Node
from weightbase.monitoring.drift import drift_report
from weightbase.monitoring.reference import DriftAnalyzer

if TYPE_CHECKING:
    from weightbase.workspace import Workspace


def _table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, rows),
            "city": rng.choice(["oslo", "rome", "lima"], rows),
            "label": rng.integers(0, 2, rows),
        }
    )


def _model(wb: Workspace, name: str = "clf") -> object:
    return wb.models.push(name, {"w": np.zeros((3, 2), dtype=np.float32)})


def test_the_reference_is_the_train_split_of_the_trained_on_dataset(workspace: Workspace) -> None:
    data = workspace.datasets.register("people", from_pandas(_table(600, 0), target="label"))
    version = _model(workspace)
    workspace.models.link(version, "trained_on", workspace.datasets.node(data))
    analyzer = DriftAnalyzer(workspace)
    assert analyzer.reference_dataset(version) == data.ref
    train_inputs, train_targets = workspace.datasets.arrays(data.ref, "train")
    current = _table(300, 1)
    current["age"] += 15
    report = analyzer.report(version, current, prediction="label")
    assert report.reference_rows == len(train_inputs) < 600  # the train split, not all rows
    assert report == drift_report(
        train_inputs.assign(label=train_targets.to_numpy()), current, prediction="label"
    )
    assert "age" in report.drifted_columns
    assert report.prediction is not None
    assert report.prediction.reference_count == len(train_targets)


def test_a_run_that_was_trained_on_the_dataset_leads_to_it(workspace: Workspace) -> None:
    x = np.random.default_rng(2).normal(size=(200, 3))
    data = workspace.datasets.register("vectors", from_numpy(x, np.arange(200) % 2))
    with workspace.runs.start("fit") as run:
        run.link(workspace.datasets.node(data), "trained_on")
    version = _model(workspace)
    workspace.models.link(version, "produced_by", Node("run", str(run.id)))
    train_inputs, _ = workspace.datasets.arrays(data.ref, "train")
    report = DriftAnalyzer(workspace).report(version, {"0": x[:50, 0] + 3, "1": x[:50, 1]})
    assert [c.column for c in report.columns] == ["0", "1"]
    assert report.reference_rows == len(train_inputs)
    assert report.column("0").drifted
    assert report.ignored == ("2",)


def test_no_lineage_says_to_pass_a_reference(workspace: Workspace) -> None:
    version = _model(workspace)
    analyzer = DriftAnalyzer(workspace)
    with pytest.raises(NotFound, match="pass reference="):
        analyzer.report(version, _table(50, 3))
    given = analyzer.report(version, _table(50, 3), reference=_table(80, 4))
    assert given.reference_rows == 80
    with pytest.raises(NotFound):
        analyzer.report("nope@1.0.0", _table(50, 3), reference=_table(80, 4))


def test_two_training_datasets_at_once_are_ambiguous(workspace: Workspace) -> None:
    version = _model(workspace)
    for name, seed in (("first", 5), ("second", 6)):
        data = workspace.datasets.register(name, from_pandas(_table(40, seed), target="label"))
        workspace.models.link(version, "trained_on", workspace.datasets.node(data))
    with pytest.raises(ValidationError, match="several datasets"):
        DriftAnalyzer(workspace).report(version, _table(30, 7))
