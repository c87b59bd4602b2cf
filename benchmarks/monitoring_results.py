"""What ``python -m benchmarks monitoring`` measured: its configuration, rows and their JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import figures

__all__ = ["KEYS", "TARGETS", "Figure", "MonitoringConfig", "MonitoringResults", "figure_of"]

#: The contract's targets: key → (bound, "max" if the figure must stay at or below it).
TARGETS: dict[str, tuple[float, str]] = {
    "drift_speedup_vs_evidently": (5.0, "min"),
    "assignments_per_s": (1_000_000.0, "min"),
    "ab_results_ms_at_10m_outcomes": (500.0, "max"),
    "monitoring_overhead_pct": (5.0, "max"),
    # the issue: the cascade reaches within 1 point of the large model's accuracy
    "cascade_accuracy_gap": (1.0, "max"),
}

#: Every row's JSON key, in the table's order.
KEYS = (
    "drift_speedup_vs_evidently",
    "assignments_per_s",
    "ab_results_ms_at_10m_outcomes",
    "monitoring_overhead_pct",
    "cascade_large_model_fraction",
    "cascade_accuracy_gap",
)


@dataclass(frozen=True, slots=True)
class MonitoringConfig:
    """Workload sizes; ``create`` picks the full or the ``--quick`` ones."""

    workdir: Path
    quick: bool
    rounds: int
    #: rows of the current and reference windows of the drift comparison
    drift_rows: int
    reference_rows: int
    #: unit ids assigned per round
    assignment_units: int
    #: outcomes recorded before ``results`` is timed, and per ``record`` call
    ab_outcomes: int
    ab_batch: int
    #: timed ``results`` calls per round
    ab_result_calls: int

    @classmethod
    def create(cls, *, workdir: Path, quick: bool, rounds: int | None = None) -> MonitoringConfig:
        if quick:
            return cls(
                workdir=workdir,
                quick=True,
                rounds=rounds or 2,
                drift_rows=100_000,
                reference_rows=10_000,
                assignment_units=200_000,
                ab_outcomes=200_000,
                ab_batch=100_000,
                ab_result_calls=5,
            )
        return cls(
            workdir=workdir,
            quick=False,
            rounds=rounds or 2,
            drift_rows=1_000_000,
            reference_rows=100_000,
            assignment_units=2_000_000,
            ab_outcomes=10_000_000,
            ab_batch=1_000_000,
            ab_result_calls=20,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["workdir"] = str(self.workdir)
        return data


class Figure(figures.Figure):
    """One row's figure (:class:`benchmarks.figures.Figure`), judged by this table's targets."""

    __slots__ = ()

    def meets(self, key: str) -> bool | None:
        """Whether every round clears ``key``'s target; None without one or a run."""
        return self.clears(TARGETS.get(key))


def figure_of(value: Any) -> Figure:
    """A figure from what another module's ``measure`` returned for a key: a number, or a
    mapping with ``rounds`` (or ``range`` and ``value``)."""
    if isinstance(value, dict):
        if value.get("rounds"):
            return Figure(tuple(float(v) for v in value["rounds"]))
        if "value" in value:
            low, high = value.get("range") or (value["value"], value["value"])
            return Figure(tuple(float(v) for v in (low, value["value"], high)))
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return Figure((float(value),))
    return Figure(not_run=f"not run: no figure ({value!r})")


@dataclass(frozen=True, slots=True)
class MonitoringResults:
    config: MonitoringConfig
    figures: dict[str, Figure]
    #: what each row measured besides its figure, by key
    detail: dict[str, dict[str, Any]]
    versions: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)

    def figure(self, key: str) -> Figure:
        return self.figures.get(key) or Figure(not_run="not run: not measured")

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in KEYS:
            figure = self.figure(key)
            if figure.ran:
                out[key] = figure.median
                out[f"{key}_range"] = [figure.low, figure.high]
            else:
                out[key] = figure.not_run
                out[f"{key}_range"] = None
        out["targets_met"] = {key: self.figure(key).meets(key) for key in TARGETS}
        return out

    def details(self) -> dict[str, Any]:
        rows = {key: {**self.figure(key).to_dict(), **self.detail.get(key, {})} for key in KEYS}
        return {
            "quick": self.config.quick,
            "config": self.config.to_dict(),
            "versions": self.versions,
            "rows": rows,
            **self.extra,
        }
