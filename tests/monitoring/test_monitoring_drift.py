"""``wb.monitoring.drift``: a served model's sampled inputs against the training split that
lineage names, embedded and through a server, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from tests.conftest import remote_variants

from weightbase.datasets import from_numpy
from weightbase.errors import NotFound, ValidationError
from weightbase.monitoring.drift import drift_report
from weightbase.monitoring.records import ObservedRequest
from weightbase.monitoring.values import positional
from weightbase.workspace import Workspace


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    remote_variants(metafunc)


@pytest.fixture
def wb(remote_or_embedded: Workspace) -> Workspace:
    """``clf@0.1.0`` trained on ``points`` (400 rows of 4 features, two classes)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4)).astype(np.float32)
    data = remote_or_embedded.datasets.register("points", from_numpy(x, np.arange(400) % 2))
    version = remote_or_embedded.models.push("clf", {"w": np.zeros((4, 2), dtype=np.float32)})
    remote_or_embedded.models.link(version, "trained_on", remote_or_embedded.datasets.node(data))
    return remote_or_embedded


def _requests(rows: np.ndarray, at: datetime, prefix: str) -> list[ObservedRequest]:
    """OIP requests of one row each, answered with two class scores."""
    out = []
    for index, row in enumerate(rows):
        tensor = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": row.tolist()}
        scores = [float(row[0] > 0), float(row[0] <= 0)]
        answer = [{"name": "output", "shape": [1, 2], "datatype": "FP32", "data": scores}]
        out.append(
            ObservedRequest("clf@0.1.0", f"{prefix}-{index}", at, 1.0, None, [tensor], answer)
        )
    return out


def test_sampled_inputs_are_compared_with_the_training_split(wb: Workspace) -> None:
    now = datetime.now(UTC)
    rng = np.random.default_rng(1)
    calm = rng.normal(size=(150, 4))
    shifted = rng.normal(size=(150, 4))
    shifted[:, 0] += 2.5
    wb.monitoring.record_samples(_requests(calm, now - timedelta(hours=2), "calm"))
    wb.monitoring.record_samples(_requests(shifted, now, "now"))

    before = wb.monitoring.drift("clf@0.1.0", until=now - timedelta(hours=1))
    after = wb.monitoring.drift("clf", since=now - timedelta(minutes=5))
    assert before.current_rows == after.current_rows == 150
    assert after.drifted_columns[0] == "0"  # the shifted feature, by position
    assert "0" not in before.drifted_columns
    assert {c.column for c in after.columns} == {"0", "1", "2", "3"}
    # the same figures as the statistics on the training split and the samples' rows
    train, targets = wb.datasets.arrays("points@latest", "train")
    expected = drift_report(
        {**{str(i): np.asarray(train)[:, i] for i in range(4)}, "prediction": np.asarray(targets)},
        {
            **{str(i): shifted[:, i].astype(np.float32) for i in range(4)},
            "prediction": (shifted[:, 0] <= 0).astype(int),
        },
        prediction="prediction",
    )
    assert [(c.column, c.method, c.drifted) for c in after.columns] == [
        (c.column, c.method, c.drifted) for c in expected.columns
    ]
    assert after.column("0").score == pytest.approx(expected.column("0").score, rel=1e-6)
    assert after.prediction is not None


def test_drift_needs_samples_in_the_window_and_lineage(wb: Workspace) -> None:
    now = datetime.now(UTC)
    with pytest.raises(NotFound):
        wb.monitoring.drift("clf@0.1.0")  # no samples yet
    wb.monitoring.record_samples(_requests(np.zeros((3, 4)), now, "few"))
    with pytest.raises(NotFound):
        wb.monitoring.drift("clf@0.1.0", since=now + timedelta(hours=1))
    orphan = wb.models.push("orphan", {"w": np.ones(2, dtype=np.float32)})
    wb.monitoring.record_samples(
        [ObservedRequest(f"orphan@{orphan.version}", "o-1", now, 1.0, None, {"a": 1.0})]
    )
    with pytest.raises(NotFound, match="trained_on"):
        wb.monitoring.drift("orphan")


def test_a_reference_of_the_callers_is_compared_with_its_options(wb: Workspace) -> None:
    now = datetime.now(UTC)
    rows = np.random.default_rng(3).normal(size=(60, 4))
    wb.monitoring.record_samples(_requests(rows, now, "mine"))
    reference = {f"x[{i}]": np.random.default_rng(4).normal(size=80) for i in range(4)}
    found = wb.monitoring.drift("clf@0.1.0", reference=reference, method="psi")
    assert {c.method for c in found.columns} == {"psi"}
    assert found.reference_rows == 80


def test_columns_of_one_tensor_are_named_by_position() -> None:
    columns: dict[str, list[Any]] = {"x[0]": [1], "x[1]": [2], "prediction": [0]}
    assert positional(columns) == {"0": [1], "1": [2], "prediction": [0]}
    mixed: dict[str, list[Any]] = {"x[0]": [1], "y[0]": [2]}
    assert positional(mixed) == mixed  # two tensors: names kept
    named: dict[str, list[Any]] = {"age": [1]}
    assert positional(named) == named


def test_the_report_reads_back_from_its_dict(wb: Workspace) -> None:
    from weightbase.monitoring.drift_records import DriftReport

    wb.monitoring.record_samples(_requests(np.ones((20, 4)), datetime.now(UTC), "d"))
    report = wb.monitoring.drift("clf@0.1.0")
    assert DriftReport.from_dict(report.to_dict()) == report
    with pytest.raises(ValidationError):
        wb.monitoring.drift("clf@0.1.0", limit=0)
