"""``weightbase runs show`` and ``runs compare``: the reproducibility record, shown and compared."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from weightbase.tracking import capture
from weightbase.tracking.environment import GitState, Gpu, Hardware, RunEnvironment

GROUP = "runs"  # the command group the fixtures in conftest.py run


def _environment(**changes: Any) -> RunEnvironment:
    fields: dict[str, Any] = {
        "captured_at": datetime(2026, 12, 1, tzinfo=UTC),
        "git": GitState(commit="a" * 40, branch="main", dirty=True, diff_sha256="f" * 64),
        "python_version": "3.11.9",
        "python_implementation": "CPython",
        "packages": {"numpy": "2.0.0", "torch": "2.4.0", "pandas": "2.2.0"},
        "argv": ("train.py", "--lr", "0.1"),
        "hostname": "laptop",
        "os": "Linux 6.1",
        "platform": "Linux-6.1-x86_64",
        "hardware": Hardware("Intel i7", 8, 2**34, (Gpu("NVIDIA H100", 2**36),), "torch.cuda"),
        "seeds": {"numpy": 7},
    }
    return RunEnvironment(**{**fields, **changes})


@pytest.fixture
def two_runs(weightbase_home: Path) -> list[int]:
    import weightbase

    other = _environment(
        git=GitState(commit="b" * 40, branch="main", dirty=False, diff_sha256="0" * 64),
        python_version="3.12.1",
        packages={"numpy": "2.1.0", "torch": "2.4.0", "scipy": "1.14.0"},
        hostname="gpu-box",
        seeds={"numpy": 8},
    )
    with weightbase.open() as wb:
        return [
            wb.runs.create("repro", capture_environment=_environment()).id,
            wb.runs.create("repro", capture_environment=other).id,
        ]


def test_show_sums_up_the_environment(cli: Any, cli_json: Any, two_runs: list[int]) -> None:
    human = cli("show", str(two_runs[0])).stdout
    for text in (
        "aaaaaaaaaaaa on main, dirty",
        "python: 3.11.9 (CPython)",
        "host: laptop (Linux-6.1-x86_64)",
        "Intel i7 x8, 16.0 GiB, 1 GPU: NVIDIA H100",
        "seeds: numpy=7",
        "packages: 3 installed",
        "command: train.py --lr 0.1",
    ):
        assert text in human, human
    shown = cli_json("show", str(two_runs[0]))
    assert shown["environment"] == _environment().to_dict()


def test_show_a_run_started_here(
    cli: Any, cli_json: Any, weightbase_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import weightbase

    monkeypatch.setattr(capture, "_seeds", {})
    monkeypatch.setattr(sys, "argv", ["train.py", "--password=hunter2"])
    with weightbase.open() as wb:
        quiet = wb.runs.create("repro", capture_environment=False).id
        with wb.runs.start("repro") as run:
            run.set_seed(3)
    shown = cli_json("show", str(run.id))["environment"]
    assert shown["argv"] == ["train.py", "--password=<redacted>"]
    assert shown["seeds"]["numpy"] == 3
    assert len(shown["packages"]) > 10
    human = cli("show", str(run.id)).stdout
    assert "hunter2" not in human
    assert "numpy=3" in human
    assert cli_json("show", str(quiet))["environment"] is None
    assert "environment: not recorded" in cli("show", str(quiet)).stdout


def test_compare_shows_where_environments_differ(
    cli: Any, cli_json: Any, two_runs: list[int]
) -> None:
    human = cli("compare", *map(str, two_runs)).stdout
    for text in (
        f"environment of run {two_runs[1]}, against run {two_runs[0]}",
        "git.commit: " + "a" * 40 + " → " + "b" * 40,
        "git.dirty: True → False",
        "python_version: 3.11.9 → 3.12.1",
        "hostname: laptop → gpu-box",
        "seeds.numpy: 7 → 8",
        "package numpy: 2.0.0 → 2.1.0",
        "package scipy: added (1.14.0)",
        "package pandas: removed (2.2.0)",
    ):
        assert text in human, human
    assert "package torch" not in human
    compared = cli_json("compare", *map(str, two_runs))
    (difference,) = compared["environment"]
    assert difference["run_ids"] == two_runs
    assert difference["packages_changed"] == {"numpy": ["2.0.0", "2.1.0"]}
    assert difference["fields"]["hostname"] == ["laptop", "gpu-box"]
    same = cli("compare", str(two_runs[0]), str(two_runs[0])).stdout
    assert f"the same as run {two_runs[0]}'s" in same
