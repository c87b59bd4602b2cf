"""``weightbase models lineage`` starts from any lineage node, as ``weightbase lineage`` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.lineage.lineage_support import Made, record_lineage

from weightbase.cli import ExitCode

GROUP = "models"  # the command group the fixtures in conftest.py run


@pytest.fixture
def made(weightbase_home: Path) -> Made:
    import weightbase

    with weightbase.open() as wb:
        return record_lineage(wb)


def test_models_lineage_starts_from_a_dataset(cli: Any, cli_json: Any, made: Made) -> None:
    down = cli_json("lineage", "dataset:digits@0.1.0", "--descendants")
    assert (down["version"], down["direction"]) == ("digits@0.1.0", "descendants")
    assert [(n["name"], n["distance"]) for n in down["nodes"]] == [
        ("mlp@0.1.0", 1),
        (f"run {made.run_id}", 1),
        (f"checkpoint runs/{made.run_id}/10", 2),
        ("mlp-tuned@0.1.0", 2),
    ]
    near = cli_json("lineage", "dataset:digits@0.1.0", "--descendants", "--depth", "1")
    assert len(near["nodes"]) == 2
    up = cli_json("lineage", f"run:{made.run_id}")
    assert [n["name"] for n in up["nodes"]] == ["digits@0.1.0"]
    assert "no recorded ancestors" in cli("lineage", "dataset:digits@0.1.0").stdout
    assert "mlp@0.1.0" in cli("lineage", "model:mlp-tuned@0.1.0").stdout


def test_models_lineage_of_an_unknown_node(fail: Any, made: Made) -> None:
    fail("lineage", "dataset:nope@0.1.0", code=ExitCode.NOT_FOUND)
    fail("lineage", "run:abc", code=ExitCode.USAGE)
    assert "weightbase lineage" in fail("lineage", "digits@0.1.0", code=ExitCode.NOT_FOUND)
