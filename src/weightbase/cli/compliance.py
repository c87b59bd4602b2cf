"""``weightbase compliance …``: evaluate policies on a version, and its reports over time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.options import JsonOption, VersionRefArgument
from weightbase.cli.render import table
from weightbase.errors import ValidationError

if TYPE_CHECKING:
    from weightbase.governance.compliance import ComplianceReport

__all__ = ["compliance_app"]

compliance_app = typer.Typer(
    help="Compliance: policies (licence, model card, metrics, fairness, scan) per version.",
    no_args_is_help=True,
)

_MARKS = {True: "[green]pass[/]", False: "[red]fail[/]", None: "[yellow]not evaluated[/]"}
_RISK = {"low": "green", "medium": "yellow", "high": "red"}


def _show(report: ComplianceReport) -> None:
    colour = _RISK[report.risk_level]
    console.print(
        f"{escape(report.model)}@{escape(report.version)}: risk "
        f"[bold {colour}]{report.risk_level}[/]"
    )
    shown = table(["check", "severity", "result", "detail"])
    for result in report.results:
        shown.add_row(result.check, result.severity, _MARKS[result.passed], escape(result.detail))
    console.print(shown)


@compliance_app.command("check")
def check(
    version: VersionRefArgument,
    policy: Annotated[Path, typer.Option(help="A YAML or JSON file listing the checks.")],
    fairness: Annotated[
        Path | None,
        typer.Option(help="An .npz with arrays predictions, labels and groups, for fairness."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Evaluate a policy file on a version; the report is stored with it. Exit 1 unless low risk."""
    import numpy as np

    from weightbase.governance.compliance import FairnessEvidence

    evidence = None
    if fairness is not None:
        if not fairness.is_file():
            raise ValidationError(f"no file {fairness}")
        with np.load(fairness, allow_pickle=False) as arrays:
            missing = {"predictions", "labels", "groups"} - set(arrays.files)
            if missing:
                raise ValidationError(f"{fairness} lacks {', '.join(sorted(missing))}")
            evidence = FairnessEvidence(arrays["predictions"], arrays["labels"], arrays["groups"])
    with open_workspace() as wb:
        report = wb.compliance.check(version, policy, fairness=evidence)
    if json:
        emit_json(report.to_dict())
    else:
        _show(report)
    if report.risk_level != "low":
        raise typer.Exit(1)


@compliance_app.command("history")
def history(version: VersionRefArgument, json: JsonOption = False) -> None:
    """Every compliance report of a version, oldest first."""
    with open_workspace() as wb:
        reports = wb.compliance.history(version)
    if json:
        emit_json([report.to_dict() for report in reports])
        return
    shown = table(["when", "by", "risk", "failed or not evaluated"])
    for report in reports:
        open_checks = [r.check for r in report.results if not r.passed]
        shown.add_row(
            report.created_at.strftime("%Y-%m-%d %H:%M") if report.created_at else "",
            escape(report.created_by or ""),
            report.risk_level,
            escape(", ".join(open_checks)),
        )
    console.print(shown)
