"""Markdown for ``python -m benchmarks monitoring``: its section of docs/benchmarks.md."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from benchmarks.monitoring_results import TARGETS, Figure

if TYPE_CHECKING:
    from benchmarks.machine import Machine
    from benchmarks.monitoring_results import MonitoringResults

__all__ = ["render_monitoring"]

# written as escapes: ruff flags the literal signs
_X = "\N{MULTIPLICATION SIGN}"
_TO = "\N{EN DASH}"


def _target(key: str, figure: Figure, unit: str) -> str:
    if key not in TARGETS:
        return "reported"
    bound, kind = TARGETS[key]
    sign = "≤" if kind == "max" else "≥"
    limit = f"{sign} {bound:,.0f}{unit}" if bound >= 1000 else f"{sign} {bound:g}{unit}"
    if not figure.ran:
        return f"{limit} (not run)"
    if figure.meets(key):
        return f"{limit} (met by every round)" if len(figure.values) > 1 else f"{limit} (met)"
    cleared = sum(1 for value in figure.values if Figure((value,)).meets(key))
    return f"{limit} (**missed**: {cleared} of {len(figure.values)} rounds clear it)"


def _spread(figure: Figure, fmt: str, unit: str = "") -> str:
    if not figure.ran:
        return str(figure.not_run)
    if len(figure.values) == 1:
        return f"{figure.median:{fmt}}{unit} (one run)"
    return (
        f"{figure.median:{fmt}}{unit} ({figure.low:{fmt}}{_TO}{figure.high:{fmt}}{unit} over "
        f"{len(figure.values)} rounds)"
    )


def _median(values: Any, fmt: str) -> str:
    return f"{statistics.median(values):{fmt}}" if values else "n/a"


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def render_monitoring(results: MonitoringResults, machine: Machine) -> str:
    """The section for ``python -m benchmarks monitoring``: header, one table, footnotes."""
    config = results.config

    def figure(key: str) -> Figure:
        return results.figure(key)

    drift = results.detail.get("drift_speedup_vs_evidently", {})
    assign = results.detail.get("assignments_per_s", {})
    ab = results.detail.get("ab_results_ms_at_10m_outcomes", {})
    agree = "yes" if drift.get("same_drifted_columns") else "**no**"
    wasserstein = drift.get("wasserstein")
    rows: list[tuple[str, ...]] = [
        (
            f"1. Drift report, {config.drift_rows:,} rows x 50 features (35 numeric, 15"
            f" categorical strings; 10 + 5 shifted) against a {config.reference_rows:,}-row"
            " reference, default statistics (normed Wasserstein, Jensen-Shannon)",
            f"`drift_report`: {_median(drift.get('weightbase_s'), '.2f')} s",
            "Evidently `Report([DataDriftPreset()]).run`:"
            f" {_median(drift.get('evidently_s'), '.1f')} s; same drifted columns: {agree}"
            f" ({len(drift.get('drifted_columns', []))} of 50), largest score difference"
            f" {drift.get('largest_score_difference', float('nan')):.1e}"
            + (
                f"; one column's normed Wasserstein: {wasserstein['weightbase_ms']:.1f} ms,"
                f" `scipy.stats.wasserstein_distance` (what Evidently calls):"
                f" {wasserstein['scipy_ms']:.1f} ms, difference {wasserstein['difference']:.1e}"
                if wasserstein
                else ""
            ),
            _spread(figure("drift_speedup_vs_evidently"), ".1f", _X),
            _target("drift_speedup_vs_evidently", figure("drift_speedup_vs_evidently"), _X),
            "`drift_speedup_vs_evidently`",
        ),
        (
            f"2. Sticky A/B assignments, {config.assignment_units:,} unit ids (`user-<n>` in a"
            " NumPy string array) to 3 variants (50/30/20), one process",
            f"`assign_many`: {_spread(figure('assignments_per_s'), ',.0f', '/s')}; the same ids"
            f" as integers: {_median(assign.get('int_ids_per_s'), ',.0f')}/s",
            "",
            "",
            _target("assignments_per_s", figure("assignments_per_s"), "/s"),
            "`assignments_per_s`",
        ),
        (
            f"3. `wb.abtests.results(test)` after {ab.get('outcomes', config.ab_outcomes):,}"
            f" binary outcomes recorded with `wb.abtests.record` in batches of"
            f" {config.ab_batch:,} (embedded, SQLite); p50 of {config.ab_result_calls} calls a"
            " round",
            _spread(figure("ab_results_ms_at_10m_outcomes"), ".2f", " ms"),
            f"recording: {ab.get('record_outcomes_per_s') or 0:,.0f} outcomes/s",
            "",
            _target(
                "ab_results_ms_at_10m_outcomes", figure("ab_results_ms_at_10m_outcomes"), " ms"
            ),
            "`ab_results_ms_at_10m_outcomes`",
        ),
        (
            "4. Monitoring and sampling on vs off (`benchmarks.monitoring_overhead`)",
            _spread(figure("monitoring_overhead_pct"), ".2f", " %"),
            "",
            "",
            _target("monitoring_overhead_pct", figure("monitoring_overhead_pct"), " %"),
            "`monitoring_overhead_pct`",
        ),
        (
            "5. Cascade small → large on scikit-learn's digits (`benchmarks.monitoring_cascade`):"
            " share of inputs sent to the large model; accuracy gap to the large model, points",
            _spread(figure("cascade_large_model_fraction"), ".3f"),
            _spread(figure("cascade_accuracy_gap"), ".2f", " points"),
            "",
            _target("cascade_accuracy_gap", figure("cascade_accuracy_gap"), " points"),
            "`cascade_large_model_fraction`, `cascade_accuracy_gap`",
        ),
    ]
    header = ("Measurement", "weightbase", "Anchor / detail", "weightbase vs anchor", "Target",
              "JSON key")  # fmt: skip
    table = [_row(header), _row(tuple("---" for _ in header))]
    table.extend(_row(cells) for cells in rows)
    note = (
        "\n\n**Quick run (`--quick`): small workloads; not the reported numbers.**"
        if config.quick
        else ""
    )
    versions = results.versions
    return "\n".join(
        [
            "## Monitoring (`python -m benchmarks monitoring`)",
            "",
            machine.summary()
            + f" Evidently {versions.get('evidently', '?')} (telemetry off, `DO_NOT_TRACK=1`),"
            + f" pandas {versions.get('pandas', '?')}, scipy {versions.get('scipy', '?')},"
            + f" scikit-learn {versions.get('scikit-learn', '?')}. Everything runs in the"
            + " benchmark's process; the machine is shared, so timings are noisy; every round"
            + " is in the `--json` details."
            + note,
            "",
            *table,
            "",
            "Figures are the median and the range over rounds; a target is met only when"
            " every round clears it."
            " (1) Both sides get the same two DataFrames and choose the same statistic per"
            " column (Evidently's defaults, which weightbase reproduces); each round times"
            " both, alternating which goes first, and checks that they flag the same columns"
            " with the same method. Evidently's time includes what its preset computes"
            " besides the scores (per-column histograms, correlations, widgets): that is what"
            " a user of its preset waits for. weightbase's Wasserstein distance is exact (each"
            " window sorted once, the merged quantile grid in closed form), not a histogram"
            " estimate; its scores equal Evidently's to the difference printed."
            " (2) Assignment hashes each id with the test's salt (FNV-1a twice, 10,000"
            " buckets), vectorised in NumPy; integer ids are first turned into their decimal"
            " text, which is what costs the difference."
            " (3) Outcomes are stored as running sums per variant and metric, so `results`"
            " reads a few rows whatever the number of outcomes; recording is the cost that"
            " grows with them."
            " (4) Requests/s of `weightbase serve` (the serving benchmark's MLP as an entry"
            " point, `--batch-size 1 --cache-size 0`) with `--sample-rate 0.1` against the same"
            " server with `--sample-rate 0`, 8 closed-loop clients, each round 8 s a side in"
            " alternating stretches; the overhead is 100 * (1 - on / off)."
            " (5) Measured by the module named, which says how.",
            "",
            "Run it with `python -m benchmarks monitoring` (about eight minutes, most of them"
            " Evidently's); `--quick`, about one, is a smoke test that never writes this file.",
        ]
    )
