"""The model-file scanner: every hostile file is flagged where it acts, real files are clean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.governance.pickle_corpus import HostileCase, hostile_corpus

from weightbase.governance.scan import FindingKind, ScanReport, scan_bytes, scan_path

CORPUS = hostile_corpus(Path("/nonexistent/marker"))


def _projected(report: ScanReport) -> set[tuple[Any, ...]]:
    return {(str(f.kind), f.module, f.name, f.opcode, f.offset, f.member) for f in report.findings}


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_every_hostile_file_is_flagged_with_its_global_and_offset(case: HostileCase) -> None:
    report = scan_bytes(case.data, name=case.filename)
    expected = {(e.kind, e.module, e.name, e.opcode, e.offset, e.member) for e in case.expected}
    assert not report.clean
    assert _projected(report) == expected


def test_the_corpus_covers_the_published_bypasses() -> None:
    flagged = {(e.module, e.name) for case in CORPUS for e in case.expected}
    for bypass in [
        ("os", "system"),
        ("builtins", "eval"),
        ("builtins", "exec"),
        ("builtins", "getattr"),
        ("importlib", "import_module"),
        ("operator", "methodcaller"),
        ("operator", "attrgetter"),
        ("pkgutil", "resolve_name"),
        ("marshal", "loads"),
        ("runpy", "run_path"),
        ("subprocess", "Popen"),
    ]:
        assert bypass in flagged
    opcodes = {e.opcode for case in CORPUS for e in case.expected}
    assert {"GLOBAL", "STACK_GLOBAL", "INST", "EXT1", "EXT2", "EXT4", "BUILD"} <= opcodes


def test_scanning_never_runs_a_payload(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    folder = tmp_path / "corpus"
    folder.mkdir()
    for case in hostile_corpus(marker):
        (folder / f"{case.id}-{case.filename}").write_bytes(case.data)
        assert not scan_bytes(case.data, name=case.filename).clean
    report = scan_path(folder)
    assert len({f.path for f in report.findings}) == len(CORPUS)
    assert not marker.exists()


def test_a_finding_says_where_it_is() -> None:
    case = next(c for c in CORPUS if c.id == "zip-in-zip")
    (finding,) = scan_bytes(case.data, name=case.filename).findings
    assert finding.global_name == "os.system"
    assert finding.location == f"bundle.zip!inner.zip!weights/payload.pkl@{finding.offset}"
    as_dict = finding.to_dict()
    assert as_dict["global"] == "os.system"
    assert as_dict["kind"] == "unsafe_global"
    assert as_dict["member"] == "inner.zip!weights/payload.pkl"


def test_findings_of_every_kind_have_a_name() -> None:
    assert {str(kind) for kind in FindingKind} >= {"unsafe_global", "unsupported", "malformed"}
