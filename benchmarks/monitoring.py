"""``python -m benchmarks monitoring``: drift against Evidently, A/B assignment and results,
and the monitoring and cascade rows measured by their own modules.

1. ``drift_speedup_vs_evidently``: ``drift_report`` on 1,000,000 rows x 50 features
   (35 numeric, 15 categorical, 15 of them shifted) against a 100,000-row reference,
   against Evidently's ``DataDriftPreset`` on the same DataFrames (default statistics:
   normed Wasserstein and Jensen-Shannon at that size); both must flag the same columns
   (see :mod:`benchmarks.monitoring_drift`);
2. ``assignments_per_s``: sticky assignments of unit ids to variants per second in one
   process, ``weightbase.serving.ab_assign.assign_many`` over a NumPy array of ids;
3. ``ab_results_ms_at_10m_outcomes``: ``wb.abtests.results`` after 10 million outcomes
   recorded through ``wb.abtests.record`` (embedded workspace, SQLite);
4. ``monitoring_overhead_pct`` from :mod:`benchmarks.monitoring_overhead` and
   ``cascade_large_model_fraction`` / ``cascade_accuracy_gap`` from
   :mod:`benchmarks.monitoring_cascade`, each module's ``measure(quick)``.
"""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import numpy as np

from benchmarks.monitoring_drift import DriftWorkload, measure_drift
from benchmarks.monitoring_results import (
    Figure,
    MonitoringConfig,
    MonitoringResults,
    figure_of,
)

__all__ = ["MonitoringConfig", "MonitoringResults", "run_monitoring"]

Log = Callable[[str], None]

_PACKAGES = ("evidently", "pandas", "scipy", "scikit-learn", "numpy")
#: Other modules' rows: module → the keys its ``measure(quick)`` returns.
_MEASURED_ELSEWHERE = {
    "benchmarks.monitoring_overhead": ("monitoring_overhead_pct",),
    "benchmarks.monitoring_cascade": ("cascade_large_model_fraction", "cascade_accuracy_gap"),
}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _assignments(config: MonitoringConfig, log: Log) -> tuple[Figure, dict[str, Any]]:
    from weightbase.serving.ab_assign import allocate, assign_many

    allocation = allocate([0.5, 0.3, 0.2])
    ids = np.array([f"user-{i}" for i in range(config.assignment_units)])
    numbers = np.arange(config.assignment_units)
    assign_many(allocation, "warm-up", ids[:1000])
    rates, int_rates = [], []
    for round_index in range(config.rounds):
        salt = f"bench-{round_index}"
        started = time.perf_counter()
        variants = assign_many(allocation, salt, ids)
        rates.append(ids.size / (time.perf_counter() - started))
        started = time.perf_counter()
        assign_many(allocation, salt, numbers)
        int_rates.append(numbers.size / (time.perf_counter() - started))
        shares = np.bincount(variants, minlength=3) / ids.size
        log(f"assignments round {round_index + 1}: {rates[-1]:,.0f}/s (str ids)")
    return Figure(tuple(rates)), {
        "units_per_round": config.assignment_units,
        "int_ids_per_s": int_rates,
        "variant_shares": [float(s) for s in shares],
        "weights": [0.5, 0.3, 0.2],
    }


def _ab_results(config: MonitoringConfig, log: Log) -> tuple[Figure, dict[str, Any]]:
    import weightbase

    rng = np.random.default_rng(0)
    home = config.workdir / "abtests"
    wb = weightbase.open(home)
    try:
        for _ in range(2):
            wb.models.push("ranker", {"w": rng.standard_normal(4).astype(np.float32)})
        test = wb.abtests.create(
            "bench", variants=["ranker@0.1.0", "ranker@0.2.0"], metric="click", kind="binary"
        )
        names = ["ranker@0.1.0", "ranker@0.2.0"]
        recorded, record_s = 0, 0.0
        while recorded < config.ab_outcomes:
            size = min(config.ab_batch, config.ab_outcomes - recorded)
            variant = rng.integers(0, 2, size)
            clicks = rng.random(size) < np.where(variant == 0, 0.10, 0.11)
            batch = [
                (names[v], "click", float(c))
                for v, c in zip(variant.tolist(), clicks.tolist(), strict=True)
            ]
            started = time.perf_counter()
            recorded += wb.abtests.record(test.id, batch)
            record_s += time.perf_counter() - started
            log(f"ab: {recorded:,} outcomes recorded")
        wb.abtests.results(test.id)  # warm-up
        per_round: list[float] = []
        for _ in range(config.rounds):
            calls = []
            for _ in range(config.ab_result_calls):
                started = time.perf_counter()
                result = wb.abtests.results(test.id)
                calls.append((time.perf_counter() - started) * 1000)
            per_round.append(statistics.median(calls))
            log(f"ab results: p50 {per_round[-1]:.2f} ms")
        counts = [variant.count for variant in result.results.variants]
    finally:
        wb.close()
    return Figure(tuple(per_round)), {
        "outcomes": recorded,
        "record_seconds": record_s,
        "record_outcomes_per_s": recorded / record_s if record_s else None,
        "calls_per_round": config.ab_result_calls,
        "variant_counts": counts,
    }


def _elsewhere(config: MonitoringConfig, log: Log) -> tuple[dict[str, Figure], dict[str, Any]]:
    figures: dict[str, Figure] = {}
    detail: dict[str, Any] = {}
    for module_name, keys in _MEASURED_ELSEWHERE.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            reason = f"not run: not measured ({module_name} is not there yet)"
            figures.update({key: Figure(not_run=reason) for key in keys})
            continue
        log(f"{module_name}.measure(quick={config.quick})")
        try:
            measured = module.measure(config.quick)
        except Exception as exc:  # another module's failure is reported, not fatal here
            reason = f"not run: {module_name}.measure failed ({type(exc).__name__}: {exc})"
            figures.update({key: Figure(not_run=reason[:300]) for key in keys})
            continue
        for key in keys:
            figures[key] = figure_of(measured.get(key))
            if isinstance(measured.get(key), dict):
                detail[key] = {k: v for k, v in measured[key].items() if k != "rounds"}
        if isinstance(measured.get("details"), dict):
            detail[keys[0]] = {**detail.get(keys[0], {}), **measured["details"]}
    return figures, detail


def run_monitoring(config: MonitoringConfig, log: Log) -> MonitoringResults:
    """Every row, in the table's order."""
    figures: dict[str, Figure] = {}
    detail: dict[str, dict[str, Any]] = {}
    workload = DriftWorkload(current_rows=config.drift_rows, reference_rows=config.reference_rows)
    drift = measure_drift(workload, config.rounds, log)
    figures["drift_speedup_vs_evidently"] = Figure(tuple(drift.pop("ratios")))
    detail["drift_speedup_vs_evidently"] = drift
    figures["assignments_per_s"], detail["assignments_per_s"] = _assignments(config, log)
    key = "ab_results_ms_at_10m_outcomes"
    figures[key], detail[key] = _ab_results(config, log)
    elsewhere, more = _elsewhere(config, log)
    figures.update(elsewhere)
    for name, values in more.items():
        detail[name] = values
    return MonitoringResults(
        config=config,
        figures=figures,
        detail=detail,
        versions={name: _version(name) for name in _PACKAGES},
    )
