"""``POST /runs/{id}/metrics`` with points on datasets: one series per (metric, dataset)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.api.support import assert_error


@pytest.fixture
def run(editor: httpx.Client) -> dict[str, Any]:
    created = editor.post("/runs", json={"experiment": "api-datasets"})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def test_points_on_two_datasets_stay_apart(editor: httpx.Client, run: dict[str, Any]) -> None:
    url = f"/runs/{run['id']}/metrics"
    points = [
        {"name": "accuracy", "value": 0.91, "step": 1, "dataset": "iris-test"},
        {"name": "accuracy", "value": 0.84, "step": 1, "dataset": "digits-test"},
    ]
    assert editor.post(url, json={"points": points}).status_code == 200
    metrics = editor.get(f"/runs/{run['id']}").json()["metrics"]
    assert metrics["accuracy@iris-test"]["last"] == 0.91
    assert metrics["accuracy@digits-test"]["last"] == 0.84
    assert metrics["accuracy@digits-test"]["dataset"] == "digits-test"
    history = editor.get(f"{url}/accuracy@iris-test").json()
    assert history["values"] == [0.91]
    bad = [{"name": "accuracy", "value": 1.0, "step": 2, "dataset": "bad\nname"}]
    assert_error(editor.post(url, json={"points": bad}), 422, "validation_error")
