"""A Lightning fit that failed and is fitted again into the same run: one point per step."""

from __future__ import annotations

import numpy as np
import pytest

from weightbase.workspace import Workspace

pytest.importorskip("lightning")

from tests.training.test_lightning_callback import _fit

from weightbase.training import WeightbaseLightningCallback

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning"),
    pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated"),
]


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_a_fit_resumed_into_its_run_leaves_single_valued_curves(workspace: Workspace) -> None:
    failing = WeightbaseLightningCallback(workspace, "digits-lightning", name="flaky")
    with pytest.raises(RuntimeError, match="boom"):
        _fit(failing, fail_at=10)
    resumed = WeightbaseLightningCallback(workspace, "digits-lightning", resume=True)
    resumed.load_state_dict(failing.state_dict())
    _fit(resumed)  # Lightning starts again from step 0: every earlier point is redone
    assert resumed.run_id == failing.run_id
    names = [n for n in workspace.runs.metric_names(resumed.run_id) if "/" not in n]
    assert names
    superseded = 0
    for name in names:
        history = workspace.runs.history(resumed.run_id, name)
        assert np.unique(history.steps).shape[0] == len(history), name
        everything = workspace.runs.history(resumed.run_id, name, include_superseded=True)
        superseded += int(everything.superseded.sum())
    assert superseded > 0
