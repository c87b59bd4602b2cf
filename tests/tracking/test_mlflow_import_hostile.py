"""An MLflow import only reads: a source that is missing or is not an MLflow store is refused.

Each case is one ``error:`` line and exit code 2 from the CLI, a
``ValidationError`` from Python, and nothing created: MLflow's client, left to
itself, makes an empty ``mlflow.db`` where a path names none.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from weightbase.cli import ExitCode, main
from weightbase.errors import ValidationError
from weightbase.tracking import RunTracker
from weightbase.tracking.mlflow_import import SUPPORTED_SCHEMES, import_mlflow

mlflow = pytest.importorskip("mlflow", reason="importing from MLflow needs the [mlflow] extra")

pytestmark = [
    # MLflow's own deprecation notices about its internals and dependencies, not ours
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:alembic.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pydantic.*"),
    pytest.mark.filterwarnings("ignore:.*is deprecated.*:DeprecationWarning"),
]


def _garbage_folder(root: Path) -> str:
    (root / "garbage").mkdir()
    (root / "garbage" / "notes.txt").write_text("not an experiment\n")
    return str(root / "garbage")


def _text_file(root: Path) -> Path:
    (root / "notes.db").write_text("SQLite? no, just text\n")
    return root / "notes.db"


def _other_sqlite(root: Path) -> str:
    with sqlite3.connect(root / "other.db") as db:
        db.execute("CREATE TABLE things (id INTEGER)")
    return f"sqlite:///{root / 'other.db'}"


def _empty_file(root: Path) -> str:
    (root / "empty.db").touch()
    return f"sqlite:///{root / 'empty.db'}"


# (how to make the URI in a folder, what the one error line says)
CASES: dict[str, tuple[Callable[[Path], str], str]] = {
    "empty": (lambda root: "", "give the MLflow tracking URI"),
    "blank": (lambda root: "  ", "give the MLflow tracking URI"),
    "garbage folder": (_garbage_folder, "is not an MLflow file store"),
    "garbage folder as file://": (
        lambda root: Path(_garbage_folder(root)).as_uri(),
        "is not an MLflow file store",
    ),
    "missing folder": (lambda root: str(root / "mlruns"), "the folder does not exist"),
    "missing file://": (lambda root: (root / "mlruns").as_uri(), "the folder does not exist"),
    "text file as a folder": (lambda root: str(_text_file(root)), "is a file, not an MLflow"),
    "text file as sqlite": (
        lambda root: f"sqlite:///{_text_file(root)}",
        "is not a SQLite database",
    ),
    "empty file as sqlite": (_empty_file, "is not a SQLite database"),
    "folder as sqlite": (lambda root: f"sqlite:///{root}", "is not a file"),
    "missing sqlite": (lambda root: f"sqlite:///{root / 'mlflow.db'}", "does not exist"),
    "relative missing sqlite": (lambda root: "sqlite:///mlflow.db", "does not exist"),
    "in-memory sqlite": (lambda root: "sqlite://", "names no database file"),
    "another sqlite database": (_other_sqlite, "not an MLflow tracking store"),
    "unknown scheme": (lambda root: "foo://bar", "unsupported scheme 'foo'"),
    "s3 scheme": (lambda root: "s3://bucket/mlruns", "unsupported scheme 's3'"),
    "remote file host": (lambda root: "file://elsewhere/mlruns", "on host 'elsewhere'"),
}


def _tree(root: Path) -> list[tuple[str, int]]:
    return sorted(
        (str(path.relative_to(root)), path.stat().st_size if path.is_file() else -1)
        for path in root.rglob("*")
    )


@pytest.fixture
def source_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working folder, where MLflow would put a default ``mlflow.db``."""
    root = tmp_path / "source"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return root


@pytest.mark.parametrize("case", list(CASES))
def test_python_refuses_and_creates_nothing(
    tracker: RunTracker, source_root: Path, case: str
) -> None:
    make, expected = CASES[case]
    uri = make(source_root)
    before = _tree(source_root)
    with pytest.raises(ValidationError, match=expected):
        import_mlflow(tracker, uri)
    assert _tree(source_root) == before
    assert tracker.experiments() == []


@pytest.mark.parametrize("case", list(CASES))
def test_the_cli_says_one_line_exits_2_and_creates_nothing(
    weightbase_home: Path,
    source_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    make, expected = CASES[case]
    uri = make(source_root)
    before = _tree(source_root)
    monkeypatch.setattr(sys, "argv", ["weightbase", "runs", "import-mlflow", uri])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    assert exited.value.code == ExitCode.USAGE, captured
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert _tree(source_root) == before


def test_an_unknown_scheme_lists_the_supported_ones(tracker: RunTracker) -> None:
    with pytest.raises(ValidationError) as caught:
        import_mlflow(tracker, "ftp://host/mlruns")
    assert caught.value.supported == SUPPORTED_SCHEMES
    for shown in ("sqlite:///", "file:///", "http(s)://"):
        assert shown in str(caught.value)


@pytest.fixture
def file_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An MLflow file store (the format MLflow 3 keeps in maintenance) with one run."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=folder.as_uri())
    experiment = client.create_experiment("vision")
    run = client.create_run(experiment, run_name="resnet")
    client.log_param(run.info.run_id, "lr", "0.1")
    client.log_metric(run.info.run_id, "loss", 0.5, step=3)
    client.set_terminated(run.info.run_id)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    return folder


@pytest.mark.parametrize("as_uri", [True, False], ids=["file-uri", "folder-path"])
def test_a_file_store_imports_as_the_help_says(
    tracker: RunTracker, file_store: Path, as_uri: bool
) -> None:
    before = _tree(file_store)
    report = import_mlflow(tracker, file_store.as_uri() if as_uri else str(file_store))
    assert report.experiments == ("Default", "vision")
    (run,) = [tracker.get(run_id) for _, run_id in report.imported]
    assert (run.name, run.params) == ("resnet", {"lr": "0.1"})
    assert report.points == 1
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ
    assert _tree(file_store) == before


def test_the_cli_help_names_what_the_import_reads() -> None:
    from typer.testing import CliRunner

    from weightbase.cli import app

    result = CliRunner().invoke(app, ["runs", "import-mlflow", "--help"])
    assert result.exit_code == 0
    assert "must exist" in result.output
    assert "file:///path/mlruns" in result.output
