"""``weightbase datasets show`` and ``splits``: the quality grade and the split report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_iris  # type: ignore[import-untyped]

GROUP = "datasets"  # the command group the fixtures in conftest.py run


def test_show_prints_the_grade_and_splits_the_duplicate_groups(
    cli: Any, cli_json: Any, tmp_path: Path
) -> None:
    iris = load_iris()
    rng = np.random.default_rng(0)
    extra = rng.choice(150, size=30, replace=False)
    x = np.concatenate([iris.data, iris.data[extra]])
    y = np.concatenate([iris.target, iris.target[extra]])
    path = tmp_path / "iris.npz"
    np.savez(path, x=x, y=y)

    added = cli_json("add", "iris", str(path))
    assert added["quality_grade"] == added["quality"]["grade"] == "C"
    assert added["split_duplicate_groups"] == 31  # the 30 copies and iris's own duplicate
    human = cli("show", "iris").stdout
    assert "grade C" in human
    assert "duplicates: C 0.569" in human  # each part's own letter and value
    assert "31 groups of copies of one sample kept together" in human

    report = cli_json("splits", "iris")
    assert report["duplicate_groups"] == 31
    assert report["spec"]["group_duplicates"] is True
    assert "31 groups of copies" in cli("splits", "iris").stdout
