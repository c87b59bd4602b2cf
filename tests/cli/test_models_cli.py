"""``weightbase models …`` on real weights: a tiny BERT folder and safetensors files."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from tests.tiny_models import tiny_bert_config

from weightbase.cli import ExitCode, app

GROUP = "models"  # the command group the fixtures in conftest.py run

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

DOCS = Path(__file__).parents[2] / "docs" / "registry.md"
QUERY = "encoder.layer.1.attention.self.query.weight"


# -- fixtures ---------------------------------------------------------------------------------


def _save_bert(folder: Path, *, nudge: float = 0.0) -> Path:
    torch.manual_seed(0)
    config = tiny_bert_config()
    model = transformers.BertModel(config)
    if nudge:
        with torch.no_grad():
            model.get_parameter(QUERY).add_(nudge)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT saved with ``save_pretrained``: config.json and model.safetensors."""
    return _save_bert(tmp_path_factory.mktemp("bert") / "bert-tiny")


@pytest.fixture(scope="module")
def tuned_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same BERT with one attention weight moved by 0.01."""
    return _save_bert(tmp_path_factory.mktemp("bert-tuned") / "bert-tiny", nudge=0.01)


def _safetensors(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    safetensors_numpy.save_file(
        {
            "fc1.weight": rng.standard_normal((64, 32)).astype(np.float32),
            "fc1.bias": rng.standard_normal(64).astype(np.float32),
        },
        str(path),
    )
    return path


@pytest.fixture
def weights(tmp_path: Path) -> list[Path]:
    """Three safetensors files with different contents."""
    return [_safetensors(tmp_path / f"w{seed}.safetensors", seed) for seed in range(3)]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- push, pull, show -------------------------------------------------------------------------


def test_push_folder_then_pull_it_back(
    cli: Any, cli_json: Any, bert_folder: Path, tmp_path: Path
) -> None:
    pushed = cli_json("push", "bert", str(bert_folder))
    assert (pushed["version"], pushed["created"]) == ("0.1.0", True)
    assert (pushed["framework"], pushed["model_type"], pushed["num_layers"]) == (
        "transformers",
        "bert",
        2,
    )
    assert pushed["total_params"] > 30_000
    assert pushed["new_bytes"] > 0

    again = cli("push", "bert", str(bert_folder)).stdout
    assert "identical to bert@0.1.0" in again
    assert "no new version" in again
    assert [v["version"] for v in cli_json("show", "bert")["versions"]] == ["0.1.0"]

    out = tmp_path / "pulled"
    assert "wrote bert@0.1.0" in cli("pull", "bert@latest", str(out)).stdout
    for name in ("config.json", "model.safetensors"):
        assert _sha256(out / name) == _sha256(bert_folder / name)
    file = cli_json("pull", "bert@0.1.0", str(tmp_path / "w.bin"), "--format", "safetensors")
    assert file["version"] == "bert@0.1.0"
    loaded = safetensors_numpy.load_file(file["path"])
    assert QUERY in loaded
    npz = tmp_path / "w.npz"
    cli("pull", "bert@0.1.0", str(npz))
    assert QUERY in np.load(npz).files


def test_show_model_and_version(cli: Any, cli_json: Any, bert_folder: Path) -> None:
    cli("push", "bert", str(bert_folder), "--description", "tiny", "--metric", "f1=0.5")
    model = cli_json("show", "bert")
    assert model["name"] == "bert"
    assert model["latest_version"] == "0.1.0"
    assert model["versions"][0]["description"] == "tiny"

    version = cli_json("show", "bert@0.1.0")
    assert version["metrics"] == {"f1": 0.5}
    assert version["dtypes"] == {"F32": version["total_params"]}
    architecture = version["analysis"]["architecture"]
    assert (architecture["model_type"], architecture["hidden_size"]) == ("bert", 32)
    assert [layer["index"] for layer in architecture["layers"]] == [0, 1]

    human = cli("show", "bert@0.1.0").stdout
    for text in ("bert@0.1.0", "development", "encoder.layer.0", "query, key, value", "f1 0.5"):
        assert text in human
    listing = cli("show", "bert").stdout
    assert "1 version" in listing
    assert "0.1.0" in listing


def test_push_versions_bumps_and_options(
    cli: Any, cli_json: Any, fail: Any, weights: list[Path]
) -> None:
    first = cli_json(
        "push",
        "mlp",
        str(weights[0]),
        "--version",
        "v1.0.0",
        "--description",
        "first",
        "--tag",
        "base",
        "--tag",
        "small",
        "--alias",
        "candidate",
        "--stage",
        "staging",
        "--metric",
        "accuracy=0.91",
    )
    assert first["version"] == "1.0.0"
    assert (first["stage"], first["description"]) == ("staging", "first")
    assert (first["tags"], first["aliases"]) == (["base", "small"], ["candidate"])
    assert first["metrics"] == {"accuracy": 0.91}
    assert first["framework"] == "safetensors"
    assert cli_json("push", "mlp", str(weights[1]), "--bump", "major")["version"] == "2.0.0"
    assert cli_json("push", "mlp", str(weights[2]), "--bump", "patch")["version"] == "2.0.1"

    same = cli_json("push", "mlp", str(weights[0]), "--alias", "production", "--tag", "x")
    assert (same["version"], same["created"]) == ("1.0.0", False)
    assert same["aliases"] == ["candidate", "production"]
    assert "x" in same["tags"]
    human = cli("push", "mlp", str(weights[0]), "--version", "1.0.0").stdout
    assert "identical to mlp@1.0.0" in human
    conflict = fail("push", "mlp", str(weights[0]), "--version", "9.0.0", code=ExitCode.CONFLICT)
    assert "already mlp@1.0.0; it cannot also be 9.0.0" in conflict


def test_list_pages_and_filters(
    cli: Any, cli_json: Any, weights: list[Path], bert_folder: Path
) -> None:
    for name, path in zip(("alpha", "beta", "gamma"), weights, strict=True):
        cli("push", name, str(path))
    cli("push", "bert", str(bert_folder), "--alias", "production", "--tag", "nlp")
    cli("tag", "bert", "nlp")

    first = cli_json("list", "--limit", "2")
    assert [m["name"] for m in first["models"]] == ["alpha", "bert"]
    assert first["next_after"] == "bert"
    second = cli_json("list", "--limit", "2", "--after", "bert")
    assert [m["name"] for m in second["models"]] == ["beta", "gamma"]
    assert second["next_after"] is None
    assert "--after bert" in cli("list", "--limit", "2").stdout

    def names(*args: str) -> list[str]:
        return [m["name"] for m in cli_json("list", *args)["models"]]

    assert names("--name", "amm") == ["gamma"]
    assert names("--framework", "transformers") == ["bert"]
    assert names("--architecture", "bert") == ["bert"]
    assert names("--alias", "production") == ["bert"]
    assert names("--tag", "nlp") == ["bert"]
    assert names("--framework", "safetensors") == ["alpha", "beta", "gamma"]

    table = cli("list").stdout
    assert "production → 0.1.0" in table
    assert "transformers" in table
    assert "no models match" in cli("list", "--name", "zzz").stdout


# -- diff -------------------------------------------------------------------------------------


def test_diff_json_table_and_no_values(
    cli: Any, cli_json: Any, bert_folder: Path, tuned_folder: Path
) -> None:
    cli("push", "bert", str(bert_folder), "--metric", "accuracy=0.8")
    cli("push", "bert", str(tuned_folder), "--metric", "accuracy=0.85", "--metric", "f1=0.7")

    result = cli_json("diff", "bert@0.1.0", "bert@0.2.0")
    assert (result["a"], result["b"], result["identical"]) == ("bert@0.1.0", "bert@0.2.0", False)
    assert [change["name"] for change in result["changed"]] == [QUERY]
    values = result["changed"][0]["values"]
    assert values["max_abs_diff"] == pytest.approx(0.01, rel=1e-3)
    assert 0 < values["cosine"] < 1
    assert values["changed_elements"] == 32 * 32
    assert (result["added"], result["removed"]) == ([], [])
    assert len(result["unchanged"]) > 30
    assert result["sharing"]["shared_bytes"] > result["sharing"]["only_b_bytes"] > 0
    metrics = {m["name"]: m for m in result["metrics"]}
    assert metrics["accuracy"]["delta"] == pytest.approx(0.05)
    assert (metrics["f1"]["before"], metrics["f1"]["after"]) == (None, 0.7)

    fast = cli_json("diff", "bert@0.1.0", "bert@0.2.0", "--no-values")
    assert [change["values"] for change in fast["changed"]] == [None]

    table = cli("diff", "bert@0.1.0", "bert@latest").stdout
    assert "changed tensors" in table
    assert "1 changed, 0 added, 0 removed" in table
    assert "shared" in table
    assert "+0.05" in table
    assert "identical weights" in cli("diff", "bert@0.2.0", "bert@latest").stdout


def test_diff_lists_added_and_removed(cli: Any, cli_json: Any, tmp_path: Path) -> None:
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    safetensors_numpy.save_file({"x": np.ones(4, np.float32), "old": np.ones(2, np.float32)}, a)
    safetensors_numpy.save_file({"x": np.ones((2, 2), np.float32), "new": np.zeros(3)}, b)
    cli("push", "m", str(a))
    cli("push", "m", str(b))
    result = cli_json("diff", "m@0.1.0", "m@0.2.0")
    assert [s["name"] for s in result["added"]] == ["new"]
    assert [s["name"] for s in result["removed"]] == ["old"]
    (change,) = result["changed"]
    assert (change["shape_before"], change["shape_after"], change["values"]) == ([4], [2, 2], None)
    table = cli("diff", "m@0.1.0", "m@0.2.0").stdout
    assert "added (1)" in table
    assert "removed (1)" in table
    assert "F32 4 → 2x2" in table


# -- aliases, stages, tags, rollback, history -------------------------------------------------


def test_alias_promote_rollback_and_history(
    cli: Any, cli_json: Any, fail: Any, weights: list[Path]
) -> None:
    cli("push", "m", str(weights[0]))
    cli("push", "m", str(weights[1]))
    assert "m@production: — → 0.1.0" in cli("alias", "m", "production", "0.1.0").stdout
    moved = cli_json("alias", "m", "production", "0.2.0", "--reason", "better")
    assert (moved["before"], moved["after"]) == ("0.1.0", "0.2.0")
    assert "already points at 0.2.0" in cli("alias", "m", "production", "latest").stdout
    cli("alias", "m", "candidate", "0.2.0")
    assert "removed m@candidate (was 0.2.0)" in cli("alias", "m", "candidate", "--remove").stdout

    promoted = cli_json("promote", "m@production", "staging", "--reason", "canary")
    assert (promoted["previous_stage"], promoted["stage"]) == ("development", "staging")
    assert "m@0.2.0: staging → production" in cli("promote", "m@0.2.0", "production").stdout

    back = cli_json("rollback", "m", "--to", "0.1.0", "--reason", "latency regression")
    assert (back["before"], back["after"]) == ("0.2.0", "0.1.0")
    assert cli_json("show", "m")["aliases"] == {"production": "0.1.0"}
    assert "rolled back m@production: 0.1.0 → 0.2.0" in (
        cli("rollback", "m", "--to", "0.2.0", "--alias", "production").stdout
    )
    assert "already points at" in fail("rollback", "m", "--to", "0.2.0")

    entries = cli_json("history", "m")
    actions = [entry["action"] for entry in entries]
    assert actions == [
        "model.create",
        "version.create",
        "version.create",
        "alias.set",
        "alias.set",
        "alias.set",
        "alias.remove",
        "version.stage",
        "version.stage",
        "alias.rollback",
        "alias.rollback",
    ]
    assert entries[-2]["reason"] == "latency regression"
    assert entries[-2]["before"] == {"alias": "production", "version": "0.2.0"}
    assert all(entry["actor"] == "test-user" for entry in entries)
    table = cli("history", "m").stdout
    assert "alias.rollback" in table
    assert "latency" in table
    assert len(cli_json("history", "m", "--limit", "3")) == 3


def test_tags_on_models_and_versions(cli: Any, cli_json: Any, weights: list[Path]) -> None:
    cli("push", "m", str(weights[0]))
    assert cli_json("tag", "m", "vision", "small") == {"ref": "m", "tags": ["small", "vision"]}
    assert cli_json("tag", "m@0.1.0", "golden")["tags"] == ["golden"]
    assert cli_json("tag", "m", "small", "--remove")["tags"] == ["vision"]
    assert cli_json("show", "m@0.1.0")["tags"] == ["golden"]
    assert "tags now: vision" in cli("tag", "m", "vision").stdout
    assert "tags now: none" in cli("tag", "m@0.1.0", "golden", "--remove").stdout


# -- lineage ----------------------------------------------------------------------------------


def test_lineage_both_ways(cli: Any, cli_json: Any, weights: list[Path]) -> None:
    cli("push", "base", str(weights[0]))
    cli("push", "tuned", str(weights[1]), "--fine-tuned-from", "base@0.1.0")
    cli("push", "tuned", str(weights[2]), "--derived-from", "tuned@0.1.0")

    up = cli_json("lineage", "tuned@0.2.0")
    assert up["direction"] == "ancestors"
    found = [(n["name"], n["relation"], n["distance"], n["via_name"]) for n in up["nodes"]]
    assert found == [
        ("tuned@0.1.0", "derived_from", 1, "tuned@0.2.0"),
        ("base@0.1.0", "fine_tuned_from", 2, "tuned@0.1.0"),
    ]
    assert [n["name"] for n in cli_json("lineage", "tuned@0.2.0", "--depth", "1")["nodes"]] == [
        "tuned@0.1.0"
    ]
    down = cli_json("lineage", "base@0.1.0", "--descendants")
    assert [(n["name"], n["distance"]) for n in down["nodes"]] == [
        ("tuned@0.1.0", 1),
        ("tuned@0.2.0", 2),
    ]
    tree = cli("lineage", "tuned@latest").stdout
    assert re.search(r"derived_from →.*tuned@0\.1\.0", tree)
    assert re.search(r"fine_tuned_from →.*base@0\.1\.0", tree)
    assert "no recorded ancestors" in cli("lineage", "base@0.1.0").stdout


# -- update, card, delete ---------------------------------------------------------------------


def test_update_card_and_delete(
    cli: Any, cli_json: Any, fail: Any, weights: list[Path], tmp_path: Path
) -> None:
    cli("push", "m", str(weights[0]), "--alias", "production")
    assert "no model card" in cli("show", "m", "--card").stdout
    card = tmp_path / "README.md"
    card.write_text("# Tiny MLP\n\nTrained on *nothing*.\n", encoding="utf-8")
    updated = cli_json("update", "m", "--card", str(card), "--licence", "mit", "--description", "d")
    assert (updated["licence"], updated["description"]) == ("mit", "d")
    shown = cli("show", "m@production", "--card").stdout
    assert "Tiny MLP" in shown
    assert "#" not in shown  # rendered, not printed as source
    assert cli_json("show", "m", "--card")["model_card"] == card.read_text()
    assert "nothing to update" in fail("update", "m")
    assert "update" in [entry["action"].split(".")[1] for entry in cli_json("history", "m")]

    assert "has aliases (production → 0.1.0)" in fail("delete", "m", code=ExitCode.CONFLICT)
    assert "deleted m" in cli("delete", "m", "--force", "--reason", "retired").stdout
    assert cli_json("list")["models"] == []
    assert "no model called 'm'" in fail("show", "m", code=ExitCode.NOT_FOUND)
    # the name is free again
    assert cli_json("push", "m", str(weights[1]))["version"] == "0.1.0"


# -- errors -----------------------------------------------------------------------------------


@pytest.fixture
def broken_folder(bert_folder: Path, tmp_path: Path) -> Path:
    """The BERT folder with a shard index that names a shard which is not there."""
    folder = tmp_path / "broken"
    shutil.copytree(bert_folder, folder)
    index = {"metadata": {}, "weight_map": {QUERY: "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


USAGE, NOT_FOUND = ExitCode.USAGE, ExitCode.NOT_FOUND


@pytest.mark.parametrize(
    ("args", "expected", "code"),
    [
        (("show", "nope"), "no model called 'nope'", NOT_FOUND),
        (("pull", "nope@1.0.0", "out"), "no model called 'nope'", NOT_FOUND),
        (("show", "m@9.9.9"), "no version m@9.9.9", NOT_FOUND),
        (("pull", "m@staging", "out"), "has no version or alias 'staging'", NOT_FOUND),
        (
            ("push", "m", "{w}", "--version", "one.two"),
            "'one.two' is not a semantic version",
            USAGE,
        ),
        (("push", "m", "{w}", "--bump", "huge"), "cannot bump 'huge'", USAGE),
        (("push", "m", "{w}", "--version", "1.0.0", "--bump", "major"), "not both", USAGE),
        (("push", "m", "{w}", "--metric", "accuracy"), "--metric expects key=value", USAGE),
        (("push", "m", "{w}", "--stage", "live"), "unknown stage 'live'", USAGE),
        (("push", "bad name!", "{w}"), "invalid model name", USAGE),
        (("push", "m", "missing.safetensors"), "does not exist", USAGE),
        (("push", "m", "{broken}"), "names shards missing", USAGE),
        (("alias", "m", "production"), "give the VERSION", USAGE),
        (("alias", "m", "nope", "--remove"), "has no alias 'nope'", NOT_FOUND),
        (("rollback", "m", "--to", "0.1.0"), "has no alias 'production' to roll back", NOT_FOUND),
        (("promote", "m@0.1.0", "live"), "unknown stage 'live'", USAGE),
        (("diff", "m@0.1.0", "m@2.0.0"), "no version m@2.0.0", NOT_FOUND),
        (("pull", "m@0.1.0", "out", "--format", "zip"), "unknown export format", USAGE),
        (("list", "--limit", "0"), "limit must be between 1 and 1000", USAGE),
    ],
)
def test_errors_are_one_line_with_their_exit_code(
    cli: Any,
    fail: Any,
    weights: list[Path],
    broken_folder: Path,
    tmp_path: Path,
    args: tuple[str, ...],
    expected: str,
    code: ExitCode,
) -> None:
    cli("push", "m", str(weights[0]))
    filled = [
        arg.format(w=weights[1], broken=broken_folder).replace("out", str(tmp_path / "out"))
        for arg in args
    ]
    line = fail(*filled, code=code)
    assert expected in line, line
    # nothing half-done: the failed push made no version
    assert [v["version"] for v in json.loads(cli("show", "m", "--json").stdout)["versions"]] == [
        "0.1.0"
    ]


def test_error_in_a_real_process(weightbase_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIGHTBASE_")}
    env["WEIGHTBASE_HOME"] = str(weightbase_home)
    result = subprocess.run(
        [sys.executable, "-m", "weightbase", "models", "pull", "nope@production", "out"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == ExitCode.NOT_FOUND, result.stderr
    assert result.stderr.strip() == "error: no model called 'nope'"


# -- help and docs ----------------------------------------------------------------------------


_GROUP: Any = typer.main.get_command(app)
MODELS_COMMANDS = sorted(_GROUP.commands["models"].commands)


def test_the_models_commands() -> None:
    assert set(MODELS_COMMANDS) == {
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
    }


@pytest.mark.parametrize("command", MODELS_COMMANDS)
def test_every_models_command_is_documented(command: str) -> None:
    assert f"weightbase models {command}" in DOCS.read_text(encoding="utf-8")
