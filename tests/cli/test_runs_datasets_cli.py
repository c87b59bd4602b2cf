"""``weightbase runs show`` prints one row per (metric, dataset)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

GROUP = "runs"  # the command group the fixtures in conftest.py run


def test_show_has_a_row_per_dataset(cli: Any, cli_json: Any, weightbase_home: Path) -> None:
    import weightbase

    with weightbase.open() as wb, wb.runs.start("eval") as run:
        run.log({"accuracy": 0.91}, step=1, dataset="iris-test")
        run.log({"accuracy": 0.84}, step=1, dataset="digits-test")
    shown = cli_json("show", str(run.id))
    assert shown["metrics"]["accuracy@iris-test"]["last"] == 0.91
    assert shown["metrics"]["accuracy@digits-test"]["last"] == 0.84
    human = cli("show", str(run.id)).stdout
    assert "accuracy@iris-test" in human
    assert "accuracy@digits-test" in human
