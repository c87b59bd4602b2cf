"""``weightbase runs analyze RUN``: whether a run's training converged, plateaued or overfits.

Prints ``wb.runs.convergence``'s report (the rules are in docs/tracking.md);
registered on ``runs_app`` by :mod:`weightbase.cli.runs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.options import JsonOption
from weightbase.errors import ValidationError

if TYPE_CHECKING:
    from weightbase.tracking.convergence import ConvergenceReport

__all__ = ["analyze", "register"]

_RISK_STYLE = {"none": "green", "low": "yellow", "high": "bold red"}


def analyze(
    run_id: Annotated[int, typer.Argument(help="The run's id (`weightbase runs list`).")],
    train: Annotated[str, typer.Option("--train", help="The training metric.")] = "train/loss",
    validation: Annotated[
        str,
        typer.Option(
            "--validation",
            help="The validation metric; empty: none. A missing val/loss is skipped.",
        ),
    ] = "val/loss",
    mode: Annotated[
        str, typer.Option("--mode", help="min for loss-like metrics, max for accuracy-like.")
    ] = "min",
    json: JsonOption = False,
) -> None:
    """Convergence analysis of a run: converged, plateau, overfitting risk, when to stop."""
    if mode not in ("min", "max"):
        raise ValidationError(f"--mode must be min or max, not {mode!r}")
    chosen: Literal["min", "max"] = "min" if mode == "min" else "max"
    with open_workspace() as wb:
        report = wb.runs.convergence(
            run_id, train=train, validation=validation or None, mode=chosen
        )
    if json:
        emit_json(
            {"run_id": run_id, "train": train, "validation": validation or None, **report.to_dict()}
        )
        return
    _print(run_id, report)


def _print(run_id: int, report: ConvergenceReport) -> None:
    risk = report.overfitting_risk
    console.print(f"[bold]run {run_id}[/]: {report.points} training points, window {report.window}")
    console.print(f"  converged: {'yes' if report.converged else 'no'}")
    console.print(f"  plateau: {'yes' if report.plateau_detected else 'no'}")
    console.print(f"  overfitting risk: [{_RISK_STYLE[risk]}]{risk}[/]")
    if report.best_validation is not None:
        console.print(
            f"  best validation: {report.best_validation:.6g} at {report.best_validation_at:g}"
        )
    if report.final_gap is not None and report.relative_gap is not None:
        console.print(
            f"  final gap: {report.final_gap:.6g} ({report.relative_gap:.1%} of validation)"
        )
    stop = report.suggested_stop
    console.print(f"  suggested stop: {'none' if stop is None else f'{stop:g}'}")
    if report.dropped_nonfinite:
        console.print(f"  non-finite points dropped: {report.dropped_nonfinite}")
    for reason in report.reasons:
        console.print(f"  [dim]{escape(reason)}[/]", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``analyze`` to the ``runs`` command group."""
    app.command("analyze")(analyze)
