"""``weightbase models show`` prints a version's metrics per dataset, and --json has them all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

GROUP = "models"  # the command group the fixtures in conftest.py run


def test_show_prints_one_value_per_metric_and_dataset(
    cli: Any, cli_json: Any, weightbase_home: Path
) -> None:
    import weightbase

    with weightbase.open() as wb:
        wb.models.push("m", {"w": np.ones(4, dtype=np.float32)})
        wb.models.log_metrics("m@0.1.0", {"accuracy": 0.91}, dataset="iris-test")
        wb.models.log_metrics("m@0.1.0", {"accuracy": 0.84}, dataset="digits-[test]")
    shown = cli_json("show", "m@0.1.0")
    assert shown["dataset_metrics"] == {
        "digits-[test]": {"accuracy": 0.84},
        "iris-test": {"accuracy": 0.91},
    }
    human = cli("show", "m@0.1.0").stdout
    assert "on iris-test" in human
    assert "accuracy 0.91" in human
    assert "on digits-[test]" in human
    assert "accuracy 0.84" in human
