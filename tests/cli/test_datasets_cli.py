"""``weightbase datasets …``: add files and folders in every format, list, show, splits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from weightbase.cli import ExitCode

GROUP = "datasets"  # the command group the fixtures in conftest.py run

DOCS = Path(__file__).parents[2] / "docs" / "datasets.md"
COMMANDS = ["add", "list", "show", "splits"]


@pytest.fixture
def npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "digits.npz"
    np.savez(path, x=rng.standard_normal((200, 4)), y=rng.integers(0, 3, 200))
    return path


def test_add_npz_then_show_list_splits(cli: Any, cli_json: Any, npz: Path) -> None:
    added = cli_json("add", "digits", str(npz), "--tag", "raw", "--description", "toy")
    assert (added["version"], added["created"], added["sample_count"]) == ("0.1.0", True, 200)
    assert added["format"] == "tensor"
    assert added["statistics"]["label_distribution"] is not None
    assert 0 <= added["quality"]["score"] <= 1
    assert added["quality"]["parts"]
    assert sum(added["splits"].values()) == 200

    again = cli("add", "digits", str(npz)).stdout
    assert "identical to digits@0.1.0" in again

    human = cli("show", "digits").stdout
    for text in ("digits@0.1.0", "200 samples", "quality score", "features", "splits: train"):
        assert text in human
    part_name = added["quality"]["parts"][0]["name"]
    assert part_name in human
    assert cli_json("show", "digits@0.1.0")["id"] == added["id"]

    listed = cli_json("list")
    assert [d["name"] for d in listed["datasets"]] == ["digits"]
    assert "digits" in cli("list").stdout
    assert cli_json("list", "--name", "nothing")["datasets"] == []

    splits = cli_json("splits", "digits", "--indices")
    assert splits["sizes"] == added["splits"]
    assert sorted(i for part in splits["indices"].values() for i in part) == list(range(200))
    assert "train:" in cli("splits", "digits@0.1.0").stdout


def test_add_csv_parquet_npy_and_folders(cli_json: Any, tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": ["x", "y", "x", "y"]})
    frame["label"] = [0, 1, 0, 1]
    frame.to_csv(tmp_path / "table.csv", index=False)
    csv = cli_json("add", "table", str(tmp_path / "table.csv"), "--target", "label")
    assert (csv["format"], csv["sample_count"]) == ("table", 4)

    pytest.importorskip("pyarrow")
    frame.to_parquet(tmp_path / "table.parquet")
    parquet = cli_json("add", "table-pq", str(tmp_path / "table.parquet"))
    assert parquet["format"] == "table"

    np.save(tmp_path / "x.npy", np.arange(12.0).reshape(6, 2))
    assert cli_json("add", "plain", str(tmp_path / "x.npy"))["sample_count"] == 6

    texts = tmp_path / "texts"
    for label in ("pos", "neg"):
        (texts / label).mkdir(parents=True)
        for index in range(3):
            (texts / label / f"{index}.txt").write_text(f"{label} sample {index}")
    text = cli_json("add", "reviews", str(texts))
    assert (text["format"], text["sample_count"]) == ("text", 6)
    assert cli_json("add", "reviews2", str(texts), "--format", "text")["format"] == "text"

    pillow = pytest.importorskip("PIL.Image")
    images = tmp_path / "images" / "cat"
    images.mkdir(parents=True)
    for index in range(2):
        pillow.new("RGB", (4, 4), (index, 0, 0)).save(images / f"{index}.png")
    assert cli_json("add", "pets", str(tmp_path / "images"))["format"] == "image"


def test_errors_are_one_line(fail: Any, npz: Path, tmp_path: Path) -> None:
    assert "does not exist" in fail("add", "d", str(tmp_path / "missing.npz"))
    (tmp_path / "notes.md").write_text("hi")
    assert "cannot tell the format" in fail("add", "d", str(tmp_path / "notes.md"))
    (tmp_path / "empty").mkdir()
    assert "holds no Parquet, image" in fail("add", "d", str(tmp_path / "empty"))
    assert "reads a folder" in fail("add", "d", str(npz), "--format", "image")
    assert "has no array 'label'" in fail("add", "d", str(npz), "--target", "label")
    assert "no dataset" in fail("show", "nope", code=ExitCode.NOT_FOUND)
    assert "no dataset" in fail("splits", "nope@1.0.0", code=ExitCode.NOT_FOUND)


def test_every_command_has_help_and_docs(cli: Any) -> None:
    docs = DOCS.read_text()
    for command in COMMANDS:
        assert cli(command, "--help").stdout.strip()
        assert f"weightbase datasets {command}" in docs, command
