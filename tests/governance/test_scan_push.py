"""Pushes scan what a loader would unpickle: refused on findings, the clean scan kept."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from tests.governance.pickle_corpus import Pickle, hostile_corpus, zip_of
from typer.testing import CliRunner

from weightbase.catalog.schema import ScanResultRow
from weightbase.cli import app
from weightbase.errors import NotFound, UnsafeFormatError
from weightbase.governance.scan import ScanReport, scan_bytes, scan_pickled
from weightbase.governance.scan_results import check_pickled
from weightbase.workspace import Workspace

torch = pytest.importorskip("torch")


def _hostile_torch_zip(tmp_path: Path) -> tuple[Path, int]:
    """A torch zip whose ``data.pkl`` calls ``os.system``; and that global's offset."""
    corpus = hostile_corpus(tmp_path / "marker")
    case = next(c for c in corpus if c.id == "torch-zip-hostile-data.pkl")
    path = tmp_path / case.filename
    path.write_bytes(case.data)
    (expected,) = case.expected
    assert expected.offset is not None
    return path, expected.offset


def _state_dict() -> dict[str, object]:
    return {"layer.weight": torch.arange(12.0).reshape(3, 4), "layer.bias": torch.zeros(3)}


def _scan_rows(workspace: Workspace) -> int:
    with workspace.catalog.session() as session:
        return session.scalar(select(func.count()).select_from(ScanResultRow)) or 0


def test_a_hostile_torch_file_is_refused_and_nothing_is_stored(
    workspace: Workspace, tmp_path: Path
) -> None:
    path, offset = _hostile_torch_zip(tmp_path)
    with pytest.raises(UnsafeFormatError) as refused:
        workspace.models.push("bert", path)
    message = str(refused.value)
    assert "os.system (unsafe_global)" in message
    assert f"{path}!archive/data.pkl at offset {offset}" in message
    report = refused.value.context["report"]
    assert isinstance(report, ScanReport)
    assert [f.global_name for f in report.findings] == ["os.system"]
    assert not workspace.models.list().items
    assert workspace.store.refs() == {}
    assert list(workspace.store.snapshots()) == []
    assert _scan_rows(workspace) == 0
    assert not (tmp_path / "marker").exists()


def test_a_hostile_file_in_a_folder_is_refused_too(workspace: Workspace, tmp_path: Path) -> None:
    first = workspace.models.push("bert", {"w": np.ones(4, dtype=np.float32)})
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    hostile, _ = _hostile_torch_zip(tmp_path)
    (folder / "pytorch_model.bin").write_bytes(hostile.read_bytes())
    with pytest.raises(UnsafeFormatError, match=r"pytorch_model\.bin!archive/data\.pkl"):
        workspace.models.push("bert", folder)
    assert [v.version for v in workspace.models.versions("bert")] == [first.version]
    assert _scan_rows(workspace) == 0


def test_a_torch_file_is_pushed_with_its_clean_scan(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(_state_dict(), path)
    version = workspace.models.push("bert", path)
    assert workspace.models.pull(version.ref)["layer.weight"].shape == (3, 4)
    (scan,) = workspace.scans.history(version.ref)
    assert scan.clean
    assert scan.target == str(path)
    assert {(s.path, s.format) for s in scan.files_scanned} >= {(str(path), "torch-zip")}
    with workspace.catalog.session() as session:
        row = session.scalars(select(ScanResultRow)).one()
    assert (row.version_id, row.clean) == (version.id, True)
    # the same content pushed again is the same version, scanned once more
    again = workspace.models.push("bert", path)
    assert again.id == version.id
    assert len(workspace.scans.history(version)) == 2


def test_the_compliance_scan_check_passes_after_a_push(
    workspace: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "model.pth"
    torch.save(_state_dict(), path)
    version = workspace.models.push("bert", path)
    (result,) = workspace.compliance.check(version.ref, [{"check": "scan"}]).results
    assert (result.passed, result.detail) == (True, "clean")


def test_only_the_pickled_files_of_a_folder_are_scanned(
    workspace: Workspace, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    torch.save(_state_dict(), folder / "pytorch_model.bin")
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "tokenizer.model").write_bytes(b"\x0a\x05hello")  # not pickled: left alone
    version = workspace.models.push("bert", folder)
    (scan,) = workspace.scans.history(version.ref)
    assert scan.target == str(folder)
    assert {Path(s.path).name for s in scan.files_scanned} == {"pytorch_model.bin"}


def test_nothing_pickled_is_not_scanned_and_records_nothing(
    workspace: Workspace, tmp_path: Path
) -> None:
    from safetensors.numpy import save_file

    path = tmp_path / "model.safetensors"
    save_file({"w": np.ones((2, 2), dtype=np.float32)}, str(path))
    from_file = workspace.models.push("st", path)
    in_memory = workspace.models.push("mem", _state_dict())
    assert workspace.scans.history(from_file.ref) == []
    assert workspace.scans.history(in_memory.ref) == []
    assert _scan_rows(workspace) == 0
    (result,) = workspace.compliance.check(from_file.ref, [{"check": "scan"}]).results
    assert result.passed is None


def test_scan_pickled_picks_files_by_suffix_or_first_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / ".hidden").mkdir(parents=True)
    (folder / ".hidden" / "extra.pkl").write_bytes(pickle.dumps([1, 2], protocol=4))
    (folder / "no_suffix").write_bytes(pickle.dumps({"a": 1}, protocol=2))
    (folder / "arrays.npy").write_bytes(b"")  # by its suffix, even empty
    header = b"{" + b" " * 0x27F  # a length whose first byte is PROTO, 2
    (folder / "w.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    (folder / "notes.md").write_bytes(b"\x80\x04 not a pickle")
    (folder / "blob.dat").write_bytes(b"\x80\x09")
    (folder / "dangling").symlink_to(tmp_path / "nowhere")  # unreadable: the import says so
    report = scan_pickled(folder)
    assert report is not None
    assert {Path(s.path).name for s in report.files_scanned} == {
        "extra.pkl",
        "no_suffix",
        "arrays.npy",
    }
    assert scan_pickled(folder / "w.safetensors") is None
    with pytest.raises(NotFound):
        scan_pickled(tmp_path / "absent")


def test_a_refusal_names_three_findings_and_counts_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(5):
        payload = Pickle()
        payload.stack_global("os", f"system{number}")
        payload.call("true")
        (folder / f"{number}.pkl").write_bytes(payload.bytes())
    with pytest.raises(UnsafeFormatError) as refused:
        check_pickled(folder)
    message = str(refused.value)
    assert "os.system0" in message
    assert "os.system2" in message
    assert "os.system3" not in message
    assert "and 2 more" in message
    assert refused.value.context["path"] == str(folder)


def test_a_finding_without_a_global_is_named_by_its_kind(tmp_path: Path) -> None:
    (tmp_path / "cut.pkl").write_bytes(b"\x80\x04\x95")
    with pytest.raises(UnsafeFormatError, match=r"malformed in .*cut\.pkl"):
        check_pickled(tmp_path / "cut.pkl")


def test_a_stored_report_reads_back_as_it_was() -> None:
    inner = zip_of({"weights/payload.pkl": Pickle().bytes()})
    case = next(c for c in hostile_corpus(Path("/nonexistent")) if c.id == "zip-in-zip")
    for report in (scan_bytes(case.data, name="bundle.zip"), scan_bytes(inner, name="x.zip")):
        assert ScanReport.from_dict(report.to_dict()) == report
    assert ScanReport.from_dict({"findings": []}) == ScanReport("", (), ())


def test_weightbase_scan_version_shows_the_stored_scans(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = workspace.catalog.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("WEIGHTBASE_CATALOG_URL", url)
    monkeypatch.setenv("WEIGHTBASE_HOME", str(workspace.home))
    path = tmp_path / "model.pt"
    torch.save(_state_dict(), path)
    pushed = workspace.models.push("bert", path).ref
    bare = workspace.models.push("bare", {"w": np.ones(2, dtype=np.float32)}).ref
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["scan", *args])
        return result.exit_code, result.stdout

    code, out = run("--version", pushed)
    assert code == 0
    assert "scan 1:" in out
    assert "1 files, clean" in out
    code, out = run("--version", pushed, "--json")
    assert code == 0
    assert [report["clean"] for report in json.loads(out)] == [True]
    assert "never scanned" in run("--version", bare)[1]
    assert run()[0] == 2
    assert run(str(path), "--version", pushed)[0] == 2
