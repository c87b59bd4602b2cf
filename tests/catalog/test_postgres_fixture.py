"""Without a PostgreSQL server the PostgreSQL tests fail under CI and are skipped elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
A_POSTGRES_TEST = "tests/catalog/test_catalog.py::test_a_transaction_commits[postgres]"
NOWHERE = "postgresql+psycopg://postgres@127.0.0.1:1/test"


def _run_without_a_server(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WEIGHTBASE_TEST_POSTGRES_URL": NOWHERE}
    env.pop("CI", None)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsE", "-p", "no:cacheprovider", A_POSTGRES_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ci_fails_loudly() -> None:
    result = _run_without_a_server("true")
    assert result.returncode != 0, result.stdout
    assert "cannot reach PostgreSQL" in result.stdout
    assert "never skips" in result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1]


def test_elsewhere_it_skips_and_says_how_to_enable() -> None:
    result = _run_without_a_server(None)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "WEIGHTBASE_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test" in (
        result.stdout
    )
