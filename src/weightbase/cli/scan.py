"""``weightbase scan``: check model files for code a loader would run, without running any."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.options import JsonOption
from weightbase.cli.render import table
from weightbase.errors import ValidationError
from weightbase.governance.scan import scan_path


def scan(
    path: Annotated[Path | None, typer.Argument(help="A model file or a folder of them.")] = None,
    version: Annotated[
        str | None,
        typer.Option("--version", help="NAME@REF: show the scans stored with this version."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Scan pickle, torch, joblib, NumPy and safetensors files for globals off the allowlist.

    Nothing is unpickled or imported. Exit 0 when clean, 1 when anything was found.
    With --version, the scans its pushes stored instead, oldest first.
    """
    if (path is None) == (version is None):
        raise ValidationError("name a PATH to scan or a --version whose scans to show")
    if path is None:
        _stored(str(version), json=json)
        return
    report = scan_path(path)
    if json:
        emit_json(report.to_dict())
    else:
        if report.findings:
            found = table(
                ("file", "offset", "kind", "global", "detail"),
                right=("offset",),
                no_wrap=("file", "global"),
            )
            for finding in report.findings:
                # under a folder, paths are shown relative to it; members after a "!"
                where = Path(finding.path)
                shown = str(where.relative_to(path) if path.is_dir() else where)
                if finding.member is not None:
                    shown = f"{shown}!{finding.member}"
                found.add_row(
                    escape(shown),
                    "" if finding.offset is None else str(finding.offset),
                    str(finding.kind),
                    escape(finding.global_name or ""),
                    escape(finding.detail),
                )
            console.print(found)
        files = len({scanned.path for scanned in report.files_scanned})
        verdict = (
            "[bold green]clean[/]"
            if report.clean
            else f"[bold red]{len(report.findings)} finding{'s' * (len(report.findings) > 1)}[/]"
        )
        console.print(f"scanned {files} files ({len(report.files_scanned)} parts): {verdict}")
    if not report.clean:
        raise typer.Exit(1)


def _stored(version: str, *, json: bool) -> None:
    with open_workspace() as wb:
        reports = wb.scans.history(version)
    if json:
        emit_json([report.to_dict() for report in reports])
        return
    if not reports:
        console.print(f"{escape(version)} was never scanned (nothing pickled was pushed)")
    for number, report in enumerate(reports, 1):
        verdict = "[green]clean[/]" if report.clean else f"[red]{len(report.findings)} findings[/]"
        files = len({scanned.path for scanned in report.files_scanned})
        console.print(f"scan {number}: {escape(report.target)}: {files} files, {verdict}")
