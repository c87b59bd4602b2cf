"""``weightbase runs history``: a resumed run's superseded points, and metrics per dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

GROUP = "runs"  # the command group the fixtures in conftest.py run


def test_history_hides_superseded_points_unless_asked(
    cli: Any, cli_json: Any, weightbase_home: Path
) -> None:
    import weightbase

    with weightbase.open() as wb:
        run = wb.runs.start("resumed")
        for step in range(1, 6):
            run.log({"train/loss": 1.0 / step}, step=step)
        run.flush()
        run.fail("worker lost")
        again = wb.runs.resume(run.id, from_step=3)  # its checkpoint was at step 3
        for step in range(4, 7):
            again.log({"train/loss": 0.5 / step}, step=step)
        again.complete()
    shown = cli_json("history", str(run.id), "train/loss")
    assert shown["steps"] == [1, 2, 3, 4, 5, 6]
    everything = cli_json("history", str(run.id), "train/loss", "--include-superseded")
    assert everything["steps"] == [1, 2, 3, 4, 4, 5, 5, 6]
    assert everything["superseded"] == [False, False, False, True, False, True, False, False]
    human = cli("history", str(run.id), "train/loss", "--include-superseded").stdout
    assert "superseded" in human
    assert human.count("yes") == 2
    assert "8 points" in human
    assert "6 points" in cli("history", str(run.id), "train/loss").stdout


def test_history_of_a_metric_on_one_dataset(cli_json: Any, weightbase_home: Path) -> None:
    import weightbase

    with weightbase.open() as wb, wb.runs.start("eval") as run:
        run.log({"accuracy": 0.91}, step=1, dataset="iris-test")
        run.log({"accuracy": 0.84}, step=1, dataset="digits-test")
    on_iris = cli_json("history", str(run.id), "accuracy", "--dataset", "iris-test")
    on_digits = cli_json("history", str(run.id), "accuracy", "--dataset", "digits-test")
    assert (on_iris["values"], on_digits["values"]) == ([0.91], [0.84])
