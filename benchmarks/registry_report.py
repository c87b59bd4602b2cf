"""Markdown for the registry benchmark's MLflow anchor: one table of ratios with their ranges."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.registry_mlflow import CONTRACT, MLFLOW_OPERATIONS, SPEEDUP_TARGET

if TYPE_CHECKING:
    from benchmarks.registry import RegistryResults
    from benchmarks.registry_mlflow import MlflowComparison

__all__ = ["render_mlflow_anchor", "verdict"]

_X = "\N{MULTIPLICATION SIGN}"
_TO = "\N{EN DASH}"  # written as escapes: ruff flags the literal signs
_LABELS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def verdict(comparison: MlflowComparison, key: str) -> str:
    """``met`` when every round clears the target, ``within noise`` when only the median does."""
    if comparison.met(key):
        return "met"
    return "within noise" if comparison.speedup(key) >= SPEEDUP_TARGET else "missed"


def _cell(comparison: MlflowComparison | None, key: str) -> str:
    if comparison is None:
        return "n/a"
    ratios = comparison.ratios(key)
    return (
        f"{comparison.speedup(key):.2f}{_X} ({min(ratios):.2f}{_TO}{max(ratios):.2f}); "
        f"{comparison.p50_ms('weightbase', key):.2f} vs {comparison.p50_ms('mlflow', key):.2f} ms"
    )


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def render_mlflow_anchor(results: RegistryResults) -> list[str]:
    """The anchor's table and its note (no lines when no database was measured)."""
    from benchmarks.registry import BACKENDS

    comparisons = {
        backend: result.mlflow if result is not None else None
        for backend, result in results.backends.items()
    }
    measured = [found for found in comparisons.values() if found is not None]
    if not measured:
        return []
    first = measured[0]
    header = ["MLflow call ↔ `wb.models` call"]
    header += [
        f"{_LABELS[backend]}: MLflow ÷ weightbase (min{_TO}max); p50 weightbase vs MLflow"
        for backend in BACKENDS
    ]
    header += ["Target", "JSON key"]
    lines = [_row(tuple(header)), _row(tuple("---" for _ in header))]
    for key, theirs, ours in MLFLOW_OPERATIONS:
        cells = [f"{theirs} ↔ {ours}"]
        verdicts = []
        for backend in BACKENDS:
            found = comparisons.get(backend)
            cells.append(_cell(found, key))
            if found is not None:
                word = verdict(found, key)
                verdicts.append(word if word == "met" else f"**{word}** on {_LABELS[backend]}")
        target = f"≥ {SPEEDUP_TARGET:g}{_X}, every round"
        summary = "met" if verdicts and all(v == "met" for v in verdicts) else None
        shown = summary or ", ".join(v for v in verdicts if v != "met")
        cells.append(f"{target} ({shown})" if key in CONTRACT else f"(reported; {shown})")
        cells.append(f"`{key}_speedup_vs_mlflow_*`")
        lines.append(_row(tuple(cells)))
    loads = "; ".join(
        f"{_LABELS[found.backend]} loaded in {found.load_seconds:.1f} s, {found.method}"
        for found in measured
    )
    rounds = len(first.weightbase["list"])
    calls = len(first.weightbase["list"][0])
    return [
        "",
        f"**Anchor: MLflow's model registry** (`SqlAlchemyStore`, MLflow's own schema and"
        f" migrations) on its own fresh database beside weightbase's, holding the same"
        f" catalog: **{first.models:,} registered models, {first.versions:,} versions**"
        f" (weightbase's catalog above has the same {first.models:,} models and"
        f" {first.versions:,} versions), with the same tags (as keys with empty values),"
        f" aliases and descriptions; versions numbered 1… in SemVer order, the stage of an"
        f" aliased version as MLflow's stage, '/' in names written '.' (MLflow refuses '/')."
        f" MLflow's rows: {loads}. weightbase's catalog on SQLite runs the same WAL +"
        f" `synchronous=FULL` (MLflow's SQLite engine gets them through a SQLAlchemy"
        f" `connect` event, read back after the load). {rounds} rounds of {calls} paired"
        f" calls of each operation: each pair draws its arguments outside the timed region"
        f" and runs both registries back to back, alternating which goes first; a round's"
        f" ratio is MLflow's median ÷ weightbase's, the key is the median over rounds,"
        f" and a target is met only when every round's ratio clears it.",
        "",
        *lines,
    ]
