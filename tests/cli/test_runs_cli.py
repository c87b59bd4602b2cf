"""``weightbase runs …``: list, show, compare, history, TensorBoard export and MLflow import."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from weightbase.cli import ExitCode

GROUP = "runs"  # the command group the fixtures in conftest.py run

DOCS = Path(__file__).parents[2] / "docs" / "tracking.md"
COMMANDS = ["list", "show", "compare", "history", "export-tensorboard", "import-mlflow"]


@pytest.fixture
def two_runs(weightbase_home: Path) -> list[int]:
    import weightbase

    ids = []
    with weightbase.open() as wb:
        for lr, tag in ((0.1, "baseline"), (0.01, "tuned")):
            with wb.runs.start("mnist", name=f"lr-{lr}", params={"lr": lr, "bs": 32}) as run:
                for step in range(50):
                    run.log({"train/loss": 1 / (step + 1) + lr}, step=step, epoch=step // 10)
                run.log({"val/acc": math.nan}, step=49)
                run.set_tags(tag)
            ids.append(run.id)
    return ids


def test_list_show_and_filters(cli: Any, cli_json: Any, two_runs: list[int]) -> None:
    listed = cli_json("list")
    assert [run["id"] for run in listed["runs"]] == two_runs[::-1]
    assert listed["more"] is False
    assert [r["id"] for r in cli_json("list", "--tag", "tuned")["runs"]] == [two_runs[1]]
    assert cli_json("list", "--status", "failed")["runs"] == []
    assert cli_json("list", "--limit", "1")["more"] is True
    human = cli("list").stdout
    for text in ("mnist", "lr-0.1", "completed"):
        assert text in human

    shown = cli_json("show", str(two_runs[0]))
    assert shown["params"] == {"bs": 32, "lr": 0.1}
    assert shown["metrics"]["train/loss"]["count"] == 50
    assert shown["metrics"]["val/acc"]["last"] == "nan"
    human = cli("show", str(two_runs[0])).stdout
    for text in ("run", "lr-0.1", "baseline", "train/loss", "nan"):
        assert text in human


def test_compare_and_history(cli: Any, cli_json: Any, two_runs: list[int]) -> None:
    compared = cli_json("compare", *map(str, two_runs))
    assert compared["run_ids"] == two_runs
    assert compared["differing_params"] == ["lr"]
    assert "param:bs" not in cli("compare", *map(str, two_runs), "--only-differences").stdout
    assert "metric:train/loss" in cli("compare", *map(str, two_runs)).stdout

    history = cli_json("history", str(two_runs[1]), "train/loss")
    assert history["steps"] == list(range(50))
    assert history["epochs"][-1] == 4.0
    assert history["values"][0] == pytest.approx(1.01)
    human = cli("history", str(two_runs[1]), "train/loss", "--tail", "5").stdout
    assert "50 points, the last 5 shown" in human
    assert "49" in human
    assert "all shown" in cli("history", str(two_runs[1]), "train/loss", "--tail", "0").stdout


@pytest.mark.filterwarnings("ignore::DeprecationWarning:tensorboard.*")
def test_export_tensorboard(
    cli: Any, cli_json: Any, fail: Any, two_runs: list[int], tmp_path: Path
) -> None:
    pytest.importorskip("tensorboard")
    exported = cli_json("export-tensorboard", str(two_runs[0]), str(tmp_path / "tb"))
    folder = Path(exported["folder"])
    assert folder == tmp_path / "tb" / f"run-{two_runs[0]}"
    assert any(path.name.startswith("events.out.tfevents.") for path in folder.iterdir())
    assert "already holds TensorBoard events" in fail(
        "export-tensorboard", str(two_runs[0]), str(tmp_path / "tb"), code=ExitCode.CONFLICT
    )
    again = cli("export-tensorboard", str(two_runs[0]), str(tmp_path / "tb"), "--overwrite")
    assert "exported" in again.stdout


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_import_mlflow(cli: Any, cli_json: Any, fail: Any, tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("vision", artifact_location=str(tmp_path / "a"))
    run = client.create_run(experiment, run_name="resnet")
    client.log_param(run.info.run_id, "lr", "0.1")
    for step in range(5):
        client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
    client.set_terminated(run.info.run_id)

    report = cli_json("import-mlflow", uri, "--experiment", "vision")
    assert report["points"] == 5
    (imported,) = report["imported"]
    assert imported["mlflow_run_id"] == run.info.run_id
    shown = cli_json("show", str(imported["run_id"]))
    assert (shown["status"], shown["params"]) == ("completed", {"lr": "0.1"})
    again = cli("import-mlflow", uri).stdout
    assert "imported 0 run(s)" in again
    assert "1 imported before" in again
    assert "no experiment 'nope'" in fail(
        "import-mlflow", uri, "--experiment", "nope", code=ExitCode.NOT_FOUND
    )


def test_errors_are_one_line(fail: Any, two_runs: list[int]) -> None:
    not_found = ExitCode.NOT_FOUND
    assert "no run 999" in fail("show", "999", code=not_found)
    assert "has no metric 'nope'" in fail("history", str(two_runs[0]), "nope", code=not_found)
    assert "at least two run ids" in fail("compare", str(two_runs[0]))
    assert "no run 999" in fail("compare", str(two_runs[0]), "999", code=not_found)
    assert "unknown run status 'bogus'" in fail("list", "--status", "bogus")
    assert "--tail must be 0 or more" in fail("history", str(two_runs[0]), "x", "--tail", "-1")


def test_every_command_has_help_and_docs(cli: Any) -> None:
    docs = DOCS.read_text()
    for command in COMMANDS:
        assert cli(command, "--help").stdout.strip()
        assert f"weightbase runs {command}" in docs, command
