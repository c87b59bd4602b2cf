"""``weightbase runs analyze RUN``: the convergence report, as text and as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

GROUP = "runs"  # the command group the fixtures in conftest.py run

DOCS = Path(__file__).parents[2] / "docs" / "tracking.md"


@pytest.fixture
def memorised(weightbase_home: Path) -> int:
    """A run whose training loss sinks to 0.0017 while validation stays at 0.26."""
    import weightbase

    epochs = np.arange(40)
    with weightbase.open() as wb, wb.runs.start("tiny", name="memorise") as run:
        run.log_series("train/loss", 2.3 * np.exp(-epochs / 4) + 0.0017, steps=epochs)
        run.log_series("val/loss", 2.07 * np.exp(-epochs / 4) + 0.26, steps=epochs)
    return run.id


def test_analyze_reports_the_gap_s_size(cli: Any, cli_json: Any, memorised: int) -> None:
    report = cli_json("analyze", str(memorised))
    assert report["run_id"] == memorised
    assert report["overfitting_risk"] == "high"
    assert report["relative_gap"] > 0.99
    assert report["converged"] is True
    assert report["plateau_detected"] is True
    human = cli("analyze", str(memorised)).stdout
    for text in ("converged: yes", "overfitting risk: high", "of validation", "gap is"):
        assert text in human


def test_analyze_without_validation_and_bad_input(cli: Any, fail: Any, memorised: int) -> None:
    assert "not assessed" in cli("analyze", str(memorised), "--validation", "").stdout
    assert "--mode" in fail("analyze", str(memorised), "--mode", "up")
    fail("analyze", "999", code=3)


def test_analyze_is_documented() -> None:
    assert "weightbase runs analyze" in DOCS.read_text()
