"""``export_tensorboard``: events read back with TensorBoard's own reader, every point compared."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from weightbase.errors import Conflict
from weightbase.tracking import RunTracker
from weightbase.tracking.tensorboard import export_tensorboard

pytest.importorskip("tensorboard", reason="exporting to TensorBoard needs the [tracking] extra")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:tensorboard.*")


def _accumulator(folder: Path) -> object:
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(
        str(folder),
        size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0},
    )
    accumulator.Reload()
    return accumulator


def test_every_point_and_the_params_read_back(tracker: RunTracker, tmp_path: Path) -> None:
    params = {"lr": 0.001, "optimizer": "adam", "layers": [64, 32], "amp": True}
    with tracker.start("tb", params=params) as run:
        losses = np.linspace(2.0, 0.1, 2_000)
        losses[11] = math.nan
        times = 1_700_000_000 + np.arange(2_000) * 0.25
        run.log_series("train/loss", losses, steps=np.arange(2_000) * 3, times=times)
        run.log({"val/acc": 0.5}, step=100)
        run.log({"val/acc": float("inf")}, step=200)
    folder = export_tensorboard(tracker, run.id, tmp_path / "logs")
    assert folder == tmp_path / "logs" / f"run-{run.id}"

    accumulator = _accumulator(folder)
    scalar_tags = accumulator.Tags()["scalars"]  # type: ignore[attr-defined]
    assert sorted(scalar_tags) == ["train/loss", "val/acc"]
    for name in ("train/loss", "val/acc"):
        history = tracker.history(run.id, name)
        events = accumulator.Scalars(name)  # type: ignore[attr-defined]
        assert [e.step for e in events] == history.steps.tolist()
        assert [e.wall_time for e in events] == history.times.tolist()
        np.testing.assert_array_equal(
            np.array([e.value for e in events], dtype=np.float32),
            history.values.astype(np.float32),
        )
    tensors = accumulator.Tags()["tensors"]  # type: ignore[attr-defined]
    assert "params" in tensors
    table = accumulator.Tensors("params")[0].tensor_proto.string_val[0].decode()  # type: ignore[attr-defined]
    assert "| lr | 0.001 |" in table
    assert "| layers | [64, 32] |" in table

    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator.SummaryMetadata("_hparams_/session_start_info").plugin_data.content  # type: ignore[attr-defined]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert start.hparams["optimizer"].string_value == "adam"
    assert start.hparams["lr"].number_value == 0.001
    assert start.hparams["amp"].bool_value is True
    assert start.hparams["layers"].string_value == "[64, 32]"


def test_exporting_again_needs_overwrite(tracker: RunTracker, tmp_path: Path) -> None:
    with tracker.start("tb") as run:
        run.log({"loss": 1.0})
    export_tensorboard(tracker, run.id, tmp_path)
    with pytest.raises(Conflict, match="already holds TensorBoard events"):
        export_tensorboard(tracker, run.id, tmp_path)
    folder = export_tensorboard(tracker, run.id, tmp_path, overwrite=True)
    assert len(list(folder.iterdir())) == 1
    assert [e.value for e in _accumulator(folder).Scalars("loss")] == [1.0]  # type: ignore[attr-defined]
