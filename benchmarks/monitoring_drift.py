"""The drift row of ``python -m benchmarks monitoring``: weightbase's ``drift_report`` against
Evidently's ``DataDriftPreset`` on the same DataFrames, same default statistics.

The frames: ``numeric`` float columns (normal, each with its own scale) and
``categorical`` string columns (pandas' ``str`` dtype, 4 to 12 levels); the first
``shifted_numeric`` numeric columns move by 0.3 of their standard deviation in the
current window, the first ``shifted_categorical`` categorical ones change their level
shares. Every round times both on the same frames, alternating which goes first, and
checks that both flag the same columns with the same statistic.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DriftWorkload", "make_frames", "measure_drift"]

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class DriftWorkload:
    """The sizes of the drift comparison."""

    current_rows: int
    reference_rows: int
    numeric: int = 35
    categorical: int = 15
    shifted_numeric: int = 10
    shifted_categorical: int = 5
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "current_rows": self.current_rows,
            "reference_rows": self.reference_rows,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "shifted_numeric": self.shifted_numeric,
            "shifted_categorical": self.shifted_categorical,
        }


def _window(workload: DriftWorkload, rows: int, moved: bool, rng: np.random.Generator) -> Any:
    import pandas as pd

    columns: dict[str, Any] = {}
    for index in range(workload.numeric):
        scale = 1.0 + index % 7
        shift = 0.3 * scale if moved and index < workload.shifted_numeric else 0.0
        columns[f"num_{index:02d}"] = rng.normal(10.0 * index + shift, scale, rows)
    for index in range(workload.categorical):
        levels = np.array([f"level_{index}_{k}" for k in range(4 + index % 9)])
        weights = np.linspace(1.0, 2.0, levels.size)
        if moved and index < workload.shifted_categorical:
            weights = weights[::-1] ** 2
        codes = rng.choice(levels.size, size=rows, p=weights / weights.sum())
        columns[f"cat_{index:02d}"] = pd.array(levels[codes], dtype="str")
    return pd.DataFrame(columns)


def make_frames(workload: DriftWorkload) -> tuple[Any, Any]:
    """The reference and current DataFrames of ``workload``."""
    rng = np.random.default_rng(workload.seed)
    return (
        _window(workload, workload.reference_rows, False, rng),
        _window(workload, workload.current_rows, True, rng),
    )


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def measure_drift(workload: DriftWorkload, rounds: int, log: Log) -> dict[str, Any]:
    """Seconds of each side per round, their ratios, and whether the verdicts agree."""
    from benchmarks.monitoring_evidently import load, preset_drift
    from weightbase.monitoring.drift import drift_report

    load()
    log(f"drift: making {workload.current_rows:,} + {workload.reference_rows:,} rows")
    reference, current = make_frames(workload)
    ours_s: list[float] = []
    theirs_s: list[float] = []
    agreement: dict[str, Any] = {}
    for round_index in range(rounds):
        order = ("weightbase", "evidently") if round_index % 2 == 0 else ("evidently", "weightbase")
        for side in order:
            if side == "weightbase":
                seconds, report = _timed(lambda: drift_report(reference, current))
                ours_s.append(seconds)
            else:
                seconds, (columns, share) = _timed(lambda: preset_drift(reference, current))
                theirs_s.append(seconds)
            log(f"drift round {round_index + 1}: {side} {seconds:.2f} s")
        agreement = _agreement(report, columns, share)
    ratios = [theirs / ours for ours, theirs in zip(ours_s, theirs_s, strict=True)]
    return {
        "ratios": ratios,
        "wasserstein": _wasserstein(reference, current),
        "weightbase_s": ours_s,
        "evidently_s": theirs_s,
        "workload": workload.to_dict(),
        **agreement,
    }


def _wasserstein(reference: Any, current: Any, repeats: int = 5) -> dict[str, float]:
    """One numeric column's normed Wasserstein distance: weightbase's exact merged-grid
    computation against ``scipy.stats.wasserstein_distance`` (Evidently's), median ms."""
    from scipy import stats

    from weightbase.monitoring.drift_stats import wasserstein_norm

    ref = reference["num_00"].to_numpy(dtype=np.float64)
    cur = current["num_00"].to_numpy(dtype=np.float64)
    ours_ms, scipy_ms = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        ours = wasserstein_norm(ref, cur).statistic
        ours_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        theirs = stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
        scipy_ms.append((time.perf_counter() - started) * 1000)
    return {
        "weightbase_ms": float(np.median(ours_ms)),
        "scipy_ms": float(np.median(scipy_ms)),
        "difference": abs(ours - theirs),
    }


def _agreement(report: Any, columns: dict[str, Any], share: float) -> dict[str, Any]:
    ours = {c.column: c for c in report.columns}
    same_flags = sorted(ours) == sorted(columns) and all(
        ours[name].drifted == columns[name].drifted and ours[name].method == columns[name].method
        for name in ours
    )
    largest_gap = max(
        (abs(ours[name].score - columns[name].score) for name in ours if name in columns),
        default=float("nan"),
    )
    return {
        "same_drifted_columns": same_flags,
        "drifted_columns": list(report.drifted_columns),
        "evidently_drifted_columns": sorted(n for n, c in columns.items() if c.drifted),
        "methods": sorted({c.method for c in report.columns}),
        "largest_score_difference": largest_gap,
        "drifted_share": report.drifted_share,
        "evidently_drifted_share": share,
    }
