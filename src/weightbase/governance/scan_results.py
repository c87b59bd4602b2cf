"""Scans kept with model versions: a push's check of its pickled files, and ``wb.scans``.

A push calls :func:`check_pickled` before it stores anything and :func:`store_scan` in the
transaction that publishes the version; ``wb.scans.history("bert@1.2.0")`` reads them back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from weightbase.catalog.schema import ScanResultRow
from weightbase.errors import UnsafeFormatError
from weightbase.governance.scan import scan_pickled, scan_pickled_files
from weightbase.governance.scan_records import Finding, FindingKind, ScanReport

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.tensors import Snapshot, TensorStore

__all__ = ["Scans", "check_pickled", "check_snapshot", "store_scan"]

#: How many findings a refusal names; the report in its context holds them all.
NAMED_FINDINGS = 3


def check_pickled(path: str | os.PathLike[str]) -> ScanReport | None:
    """Scan what a loader would unpickle at ``path``; refuse it if anything was found.

    Returns the clean report, or None when nothing there is pickled (safetensors only).
    Raises ``UnsafeFormatError`` naming the first findings, with the whole ``report``.
    """
    return _refuse_findings(scan_pickled(path))


def check_snapshot(store: TensorStore, snapshot: Snapshot) -> ScanReport | None:
    """:func:`check_pickled` for a snapshot already stored (a push from a remote workspace).

    Its files kept byte for byte are scanned from the store: a client's own scan is not
    taken on trust. Weights files it holds as layouts (torch, safetensors) are rebuilt from
    tensors on export, so nothing of theirs is ever unpickled.
    """
    files = (
        (name, store.file_bytes(snapshot, name))
        for name, entry in snapshot.files.items()
        if entry.kind == "blob"
    )
    return _refuse_findings(scan_pickled_files(files, target=f"snapshot {snapshot.id[:12]}"))


def _refuse_findings(report: ScanReport | None) -> ScanReport | None:
    if report is None or report.clean:
        return report
    named = "; ".join(_describe(finding) for finding in report.findings[:NAMED_FINDINGS])
    more = len(report.findings) - NAMED_FINDINGS
    # A file that is only malformed names no code; it is refused because it cannot be judged.
    unreadable = all(finding.kind == FindingKind.MALFORMED for finding in report.findings)
    why = "loading it could run code"
    if unreadable:
        why = "it cannot be read to its end, so it cannot be judged safe"
    raise UnsafeFormatError(
        f"refusing {report.target}: {why}; {named}"
        + (f"; and {more} more" if more > 0 else "")
        + f" (weightbase scan {report.target} lists every finding)",
        path=report.target,
        report=report,
    )


def _describe(finding: Finding) -> str:
    """``os.system (unsafe_global) in model.pt!archive/data.pkl at offset 12``."""
    what = f"{finding.global_name} ({finding.kind})" if finding.global_name else finding.kind
    where = finding.path if finding.member is None else f"{finding.path}!{finding.member}"
    at = "" if finding.offset is None else f" at offset {finding.offset}"
    return f"{what} in {where}{at}: {finding.detail}"


def store_scan(session: Session, version_id: int, report: ScanReport) -> None:
    """Keep ``report`` with the version, in the caller's transaction."""
    session.add(ScanResultRow(version_id=version_id, report=report.to_dict(), clean=report.clean))


class Scans:
    """``wb.scans``: the scans kept with each model version."""

    def __init__(self, catalog: Catalog, *, version_id: Callable[[Any], int]) -> None:
        self._catalog = catalog
        self._version_id = version_id

    def history(self, ref: Any) -> list[ScanReport]:
        """Every scan of the version ``ref`` (``NAME@REF`` or a ``ModelVersion``), oldest first."""
        version_id = self._version_id(ref)
        with self._catalog.session() as session:
            rows = session.scalars(
                select(ScanResultRow.report)
                .where(ScanResultRow.version_id == version_id)
                .order_by(ScanResultRow.id)
            )
            return [ScanReport.from_dict(report) for report in rows]
