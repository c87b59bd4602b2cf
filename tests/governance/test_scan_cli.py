"""``weightbase scan``: a table or JSON, exit 0 clean, 1 with findings, 3 for a missing path."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from tests.governance.pickle_corpus import hostile_corpus
from typer.testing import CliRunner

from weightbase.cli import ExitCode, app
from weightbase.cli._common import console


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows on one line each, whatever terminal the tests run in."""
    monkeypatch.setattr(console, "_width", 200)


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["scan", *args])
    return result.exit_code, result.stdout, result.stderr


def _folder(tmp_path: Path, *, hostile: bool) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "arrays.pkl").write_bytes(pickle.dumps({"w": np.arange(3.0)}))
    (folder / "config.json").write_text("{}")
    if hostile:
        case = next(c for c in hostile_corpus(tmp_path / "marker") if c.id == "os.system-inst")
        (folder / "evil.pkl").write_bytes(case.data)
    return folder


def test_a_clean_folder_exits_0(tmp_path: Path) -> None:
    code, out, _ = _invoke(str(_folder(tmp_path, hostile=False)))
    assert code == ExitCode.OK
    assert "scanned 2 files" in out
    assert "clean" in out


def test_findings_are_a_table_and_exit_1(tmp_path: Path) -> None:
    code, out, _ = _invoke(str(_folder(tmp_path, hostile=True)))
    assert code == ExitCode.FAILED
    assert "os.system" in out
    assert "evil.pkl" in out
    assert "unsafe_global" in out
    assert "1 finding" in out


def test_json_output_is_the_report(tmp_path: Path) -> None:
    folder = _folder(tmp_path, hostile=True)
    code, out, _ = _invoke(str(folder), "--json")
    assert code == ExitCode.FAILED
    report = json.loads(out)
    assert report["clean"] is False
    assert report["target"] == str(folder)
    (finding,) = report["findings"]
    assert (finding["global"], finding["opcode"]) == ("os.system", "INST")
    assert finding["path"] == str(folder / "evil.pkl")
    assert {f["format"] for f in report["files_scanned"]} == {"pickle", "text"}

    code, out, _ = _invoke(str(folder / "arrays.pkl"), "--json")
    assert code == ExitCode.OK
    assert json.loads(out)["findings"] == []


def test_members_of_archives_are_named(tmp_path: Path) -> None:
    case = next(c for c in hostile_corpus(tmp_path / "marker") if c.id == "zip-in-zip")
    path = tmp_path / case.filename
    path.write_bytes(case.data)
    code, out, _ = _invoke(str(path))
    assert code == ExitCode.FAILED
    assert "inner.zip!weights/payload.pkl" in out


def test_a_missing_path_exits_not_found(tmp_path: Path) -> None:
    code, _, err = _invoke(str(tmp_path / "nothing.pt"))
    assert code == ExitCode.NOT_FOUND
    assert "error: no file or folder at" in err
