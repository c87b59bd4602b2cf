"""``weightbase reactors create|list|show|operations|fit-stacker``, with ``--json``; every
command has help and is in docs/ensembles.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import weightbase
from weightbase.cli import app
from weightbase.cli._common import console

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from weightbase.sample_models import DIGITS_MLP, DigitsMLP  # noqa: E402
from weightbase.serving.runnable import clear_runnables, load_runnable  # noqa: E402

DOCS = Path(__file__).parents[2] / "docs" / "ensembles.md"
COMMANDS = ["create", "list", "show", "operations", "fit-stacker"]
SMALL, LARGE = "small@0.1.0", "large@0.1.0"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "_width", 200)


@pytest.fixture
def pushed(weightbase_home: Path) -> None:
    clear_runnables()
    with weightbase.open() as wb:
        for seed, (name, hidden) in enumerate((("small", 8), ("large", 16))):
            torch.manual_seed(seed)
            wb.models.push(
                name, DigitsMLP(hidden=hidden), entry_point=DIGITS_MLP, init_args={"hidden": hidden}
            )


def _cli(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, ["reactors", *args])
    assert result.exit_code == code, (result.output, result.exception)
    return result


@pytest.mark.usefixtures("pushed")
def test_create_list_show_and_operations(weightbase_home: Path) -> None:
    created = json.loads(
        _cli(
            "create", "digits", "-m", f"{SMALL},priority=0", "-m", f"{LARGE},priority=1,weight=2",
            "--strategy", "cascade", "--threshold", "0.5", "-e", f"{SMALL},{LARGE}", "--json",
        ).stdout
    )  # fmt: skip
    assert [m["ref"] for m in created["members"]] == [SMALL, LARGE]
    assert created["members"][1]["weight"] == 2.0
    assert created["edges"] == [{"source": SMALL, "target": LARGE, "relation": "feeds_into"}]
    assert "digits" in _cli("list").stdout
    shown = _cli("show", "digits").stdout
    assert "cascade, threshold 0.5" in shown
    assert f"{SMALL} feeds_into {LARGE}" in shown
    with weightbase.open() as wb:
        runnable = load_runnable(wb, "reactor:digits")
        runnable.predict(list(np.random.default_rng(0).random((4, 64)).astype(np.float32)))
        runnable.log.flush()  # type: ignore[attr-defined]
    (operation,) = json.loads(_cli("operations", "digits", "--json").stdout)
    assert operation["batch_size"] == 4
    assert SMALL in operation["members"]
    assert SMALL in _cli("operations", "digits").stdout
    bad = _cli("create", "bad", "-m", f"{SMALL},speed=3", "-m", LARGE, code=2)
    assert "REF[,role=R]" in str(bad.exception) + bad.output


@pytest.mark.usefixtures("pushed")
def test_fit_stacker_reads_npy_files(tmp_path: Path) -> None:
    _cli("create", "stack", "-m", SMALL, "-m", LARGE, "--strategy", "stacking")
    rng = np.random.default_rng(1)
    np.save(tmp_path / "x.npy", rng.random((30, 64)).astype(np.float32))
    np.save(tmp_path / "y.npy", rng.integers(0, 3, 30))
    fitted = json.loads(
        _cli(
            "fit-stacker", "stack", "--inputs", str(tmp_path / "x.npy"),
            "--labels", str(tmp_path / "y.npy"), "--json",
        ).stdout
    )  # fmt: skip
    assert fitted["stacker"]["samples"] == 30
    assert fitted["stacker"]["classes"] == [0, 1, 2]


def test_every_command_has_help_and_docs(weightbase_home: Path) -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for command in COMMANDS:
        assert _cli(command, "--help").stdout.strip()
        assert f"weightbase reactors {command}" in docs, command


def test_the_docs_python_example_runs(weightbase_home: Path, capsys: Any) -> None:
    text = DOCS.read_text(encoding="utf-8")
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    clear_runnables()
    exec(compile(example, str(DOCS), "exec"), {})
    printed = capsys.readouterr().out
    assert "cascade accuracy" in printed
    assert "sent to the large model" in printed
    clear_runnables()
