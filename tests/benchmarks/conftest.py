"""Fixtures for the benchmark smoke tests: one ``python -m benchmarks … --quick --json`` run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

QuickRun = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def quick_benchmark(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    """Run ``python -m benchmarks <command> --quick --json <options>`` in a fresh workdir.

    Returns its JSON with what it logged under ``"stderr"``; checks that it
    succeeded and, being quick, left the docs alone.
    """

    def run(command: str, *options: str) -> dict[str, Any]:
        docs = tmp_path_factory.mktemp("docs") / "benchmarks.md"
        argv = [sys.executable, "-m", "benchmarks", command, "--quick", "--json", *options]
        argv += [f"--workdir={tmp_path_factory.mktemp('work')}", f"--docs={docs}"]
        done = subprocess.run(
            argv, check=False, cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        assert not docs.exists(), "--quick must never write the docs"
        result: dict[str, Any] = json.loads(done.stdout)
        result["stderr"] = done.stderr
        return result

    return run
