"""The monitoring benchmark's pieces on small data: the drift comparison agrees with
Evidently, figures from other modules' measures are read either way, and the table says
what was missed or not run."""

from __future__ import annotations

import math
from pathlib import Path

from benchmarks.machine import describe_machine
from benchmarks.monitoring_drift import DriftWorkload, make_frames, measure_drift
from benchmarks.monitoring_report import render_monitoring
from benchmarks.monitoring_results import (
    KEYS,
    Figure,
    MonitoringConfig,
    MonitoringResults,
    figure_of,
)


def test_the_drift_row_times_both_and_they_flag_the_same_columns() -> None:
    workload = DriftWorkload(current_rows=3000, reference_rows=1500, numeric=6, categorical=3,
                             shifted_numeric=2, shifted_categorical=1)  # fmt: skip
    reference, current = make_frames(workload)
    assert reference.shape == (1500, 9)
    assert current.shape == (3000, 9)
    measured = measure_drift(workload, rounds=1, log=lambda _: None)
    assert measured["same_drifted_columns"]
    assert measured["largest_score_difference"] < 1e-9
    assert set(measured["drifted_columns"]) == {"num_00", "num_01", "cat_00"}
    assert measured["methods"] == ["jensenshannon", "wasserstein"]
    assert measured["wasserstein"]["difference"] < 1e-9
    (ratio,) = measured["ratios"]
    assert ratio == measured["evidently_s"][0] / measured["weightbase_s"][0]


def test_figures_of_other_modules_and_the_table() -> None:
    assert figure_of(2.5) == Figure((2.5,))
    assert figure_of({"value": 3.0, "range": [1.0, 4.0]}).values == (1.0, 3.0, 4.0)
    assert figure_of({"rounds": [1, 2]}).values == (1.0, 2.0)
    assert not figure_of(float("nan")).ran
    config = MonitoringConfig.create(workdir=Path("."), quick=True)
    results = MonitoringResults(
        config=config,
        figures={
            "drift_speedup_vs_evidently": Figure((4.0, 9.0)),
            "assignments_per_s": Figure((2e6, 3e6)),
        },
        detail={"drift_speedup_vs_evidently": {"same_drifted_columns": True}},
        versions={"evidently": "0.7.23"},
    )
    summary = results.summary()
    assert summary["drift_speedup_vs_evidently"] == 6.5
    assert summary["drift_speedup_vs_evidently_range"] == [4.0, 9.0]
    assert summary["targets_met"]["drift_speedup_vs_evidently"] is False
    assert summary["targets_met"]["assignments_per_s"] is True
    assert summary["ab_results_ms_at_10m_outcomes"].startswith("not run: ")
    assert set(KEYS) <= set(summary)
    table = render_monitoring(results, describe_machine())
    assert "**missed**: 1 of 2 rounds clear it" in table
    assert "met by every round" in table
    assert "Quick run" in table
    assert not math.isnan(summary["assignments_per_s"])
