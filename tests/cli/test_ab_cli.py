"""``weightbase ab create|list|show|results|stop|promote``, with ``--json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import weightbase
from weightbase.cli import ExitCode
from weightbase.cli._common import console

GROUP = "ab"
A, B = "ranker@0.1.0", "ranker@0.2.0"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "_width", 200)


@pytest.fixture
def pushed(weightbase_home: Path) -> None:
    with weightbase.open() as wb:
        wb.models.push("ranker", {"w": np.ones((3, 2), dtype=np.float32)})
        wb.models.push("ranker", {"w": np.zeros((3, 2), dtype=np.float32)})


def _record_a_winner(test: str) -> None:
    rng = np.random.default_rng(0)
    with weightbase.open() as wb:
        outcomes = [(A, "click", float(v)) for v in rng.random(1500) < 0.10]
        outcomes += [(B, "click", float(v)) for v in rng.random(1500) < 0.20]
        wb.abtests.record(test, outcomes)


@pytest.mark.usefixtures("pushed")
def test_create_list_show_results_and_promote(cli: Any, cli_json: Any) -> None:
    created = cli_json(
        "create",
        "ranker-v2",
        "-v",
        A,
        "-v",
        B,
        "--metric",
        "click",
        "--guardrail",
        "latency_ms:continuous:lower",
        "--planned-units",
        "3000",
    )
    assert [v["name"] for v in created["variants"]] == [A, B]
    assert created["guardrails"] == [
        {"name": "latency_ms", "kind": "continuous", "higher_is_better": False}
    ]
    listed = cli("list").stdout
    assert "ranker-v2" in listed
    assert created["id"] in listed
    shown = cli("show", "ranker-v2").stdout
    assert "control ranker@0.1.0" in shown
    assert "50% of traffic" in shown
    _record_a_winner(created["id"])
    printed = cli("results", "ranker-v2").stdout
    assert "sample ratio: ok" in printed
    assert f"Promote {B}" in printed
    found = cli_json("results", created["id"])
    assert found["winner"] == B
    assert found["results"]["variants"][0]["count"] == 1500
    promoted = cli_json("promote", created["id"], "--reason", "clicks up")
    assert (promoted["decision"], promoted["winner"]) == ("promoted", B)
    with weightbase.open() as wb:
        assert wb.models.version("ranker@production").version == "0.2.0"
    assert cli_json("list", "--status", "stopped")[0]["id"] == created["id"]


@pytest.mark.usefixtures("pushed")
def test_stop_records_the_decision(cli: Any, cli_json: Any) -> None:
    cli("create", "t", "-v", A, "-v", B, "--weight", "1", "--weight", "3")
    stopped = cli_json("stop", "t", "--decision", "keep-control", "--reason", "flat")
    assert (stopped["status"], stopped["decision"], stopped["reason"]) == (
        "stopped",
        "keep-control",
        "flat",
    )
    assert stopped["weights"] == [1.0, 3.0]
    assert "decision keep-control" in cli("show", stopped["id"]).stdout


@pytest.mark.usefixtures("pushed")
def test_errors_are_one_line(fail: Any) -> None:
    assert "no A/B test" in fail("show", "nothing", code=ExitCode.NOT_FOUND)
    assert "guardrail" in fail("create", "t", "-v", A, "-v", B, "--guardrail", "a:b:c:d")
    assert "at least 2" in fail("create", "t", "-v", A)
