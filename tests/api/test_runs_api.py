"""``/api/v1/experiments`` and ``/api/v1/runs``: runs, params, tags, batched metrics, history."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from tests.api.support import Server, assert_error

from weightbase.api.runs import downsample
from weightbase.tracking.records import MetricHistory


@pytest.fixture
def run(editor: httpx.Client) -> dict[str, Any]:
    created = editor.post(
        "/runs",
        json={"experiment": "api/tests", "name": "r1", "params": {"lr": 0.1}, "tags": ["a"]},
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


def test_experiments_create_get_and_page(editor: httpx.Client) -> None:
    for name in ("exp/one", "exp/two", "exp/three"):
        assert editor.post("/experiments", json={"name": name}).status_code == 201
    assert_error(editor.post("/experiments", json={"name": "exp/one"}), 409, "conflict")
    again = editor.post("/experiments", json={"name": "exp/one", "exist_ok": True})
    assert again.status_code == 201
    found = editor.get("/experiments/exp/one").json()
    assert found["name"] == "exp/one"
    assert editor.get(f"/experiments/id:{found['id']}").json() == found
    assert_error(editor.get("/experiments/exp/none"), 404, "not_found")
    names: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"after": cursor} if cursor else {})
        page = editor.get("/experiments", params=params).json()
        names += [item["name"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert {"exp/one", "exp/two", "exp/three"} <= set(names)
    assert len(names) == len(set(names))
    for cursor in ("x", "\u00b2", "\u0663"):  # "²" and an Arabic-Indic 3 are digits to str
        assert_error(editor.get("/experiments", params={"after": cursor}), 422, "validation_error")


def test_run_create_get_status_params_tags(editor: httpx.Client, run: dict[str, Any]) -> None:
    assert run["status"] == "running"
    assert run["params"] == {"lr": 0.1}
    # the server holds no handle: none of its own CPU or memory is counted to the run
    assert run["resources"] == {
        "cpu_hours": 0.0,
        "gpu_hours": 0.0,
        "peak_memory_bytes": None,
        "storage_bytes": 0,
    }
    assert editor.get(f"/runs/{run['id']}").json()["name"] == "r1"
    params = editor.post(f"/runs/{run['id']}/params", json={"params": {"layers": 2}}).json()
    assert params["params"] == {"lr": 0.1, "layers": 2}
    assert_error(
        editor.post(f"/runs/{run['id']}/params", json={"params": {"lr": 0.5}}), 409, "conflict"
    )
    tags = editor.post(f"/runs/{run['id']}/tags", json={"add": ["b"], "remove": ["a"]}).json()
    assert tags["tags"] == ["b"]
    done = editor.put(f"/runs/{run['id']}/status", json={"status": "completed"}).json()
    assert done["status"] == "completed"
    assert_error(
        editor.put(f"/runs/{run['id']}/status", json={"status": "running"}), 409, "conflict"
    )
    assert_error(editor.get("/runs/999999"), 404, "not_found")
    assert_error(editor.get("/runs/abc"), 422, "validation_error")


def test_batched_metrics_history_and_downsampling(
    editor: httpx.Client, run: dict[str, Any]
) -> None:
    points = [{"name": "train/loss", "value": 1.0 / (step + 1), "step": step} for step in range(50)]
    points += [{"name": "val/acc", "value": 0.5, "step": 0, "epoch": 1.0, "time": 1.7e9}]
    points += [{"name": "val/acc", "value": "nan", "step": 1}]
    stored = editor.post(f"/runs/{run['id']}/metrics", json={"points": points})
    assert stored.json() == {"run_id": run["id"], "stored": 52}
    names = editor.get(f"/runs/{run['id']}/metrics").json()["names"]
    assert names == ["train/loss", "val/acc"]
    full = editor.get(f"/runs/{run['id']}/metrics/train/loss").json()
    assert full["steps"] == list(range(50))
    assert full["total_points"] == 50
    thin = editor.get(f"/runs/{run['id']}/metrics/train/loss", params={"max_points": 10}).json()
    assert len(thin["steps"]) == 10
    assert thin["steps"][0] == 0
    assert thin["steps"][-1] == 49
    assert thin["total_points"] == 50
    acc = editor.get(f"/runs/{run['id']}/metrics/val/acc").json()
    assert acc["values"] == [0.5, "nan"]
    assert acc["epochs"] == [1.0, None]
    assert acc["times"][0] == 1.7e9
    summary = editor.get(f"/runs/{run['id']}").json()["metrics"]["train/loss"]
    assert summary["count"] == 50
    assert_error(editor.get(f"/runs/{run['id']}/metrics/none"), 404, "not_found")


def test_bad_metric_batches_are_refused_whole(editor: httpx.Client, run: dict[str, Any]) -> None:
    url = f"/runs/{run['id']}/metrics"
    bad_name = [{"name": "ok", "value": 1, "step": 0}, {"name": "", "value": 1, "step": 1}]
    assert_error(editor.post(url, json={"points": bad_name}), 422, "validation_error")
    bad_step = [{"name": "ok", "value": 1, "step": -1}]
    assert_error(editor.post(url, json={"points": bad_step}), 422, "validation_error")
    bad_epoch = [{"name": "ok", "value": 1, "step": 0, "epoch": "inf"}]
    assert_error(editor.post(url, json={"points": bad_epoch}), 422, "validation_error")
    assert editor.get(f"/runs/{run['id']}/metrics").json()["names"] == []
    editor.put(f"/runs/{run['id']}/status", json={"status": "completed"})
    finished = [{"name": "ok", "value": 1, "step": 0}]
    assert_error(editor.post(url, json={"points": finished}), 409, "conflict")
    assert_error(editor.post("/runs/999999/metrics", json={"points": finished}), 404, "not_found")


def test_search_runs_with_filters_and_pages(editor: httpx.Client, server: Server) -> None:
    made = []
    for index in range(3):
        body = {"experiment": "api/search", "tags": ["searched"] + (["odd"] if index % 2 else [])}
        made.append(editor.post("/runs", json=body).json()["id"])
        editor.post(
            f"/runs/{made[-1]}/metrics",
            json={"points": [{"name": "acc", "value": index / 2, "step": 0}]},
        )
    page = editor.get("/runs", params={"experiment": "api/search", "limit": 2}).json()
    assert [item["id"] for item in page["items"]] == made[::-1][:2]
    rest = editor.get(
        "/runs", params={"experiment": "api/search", "limit": 2, "after": page["next"]}
    ).json()
    assert [item["id"] for item in rest["items"]] == [made[0]]
    assert rest["next"] is None
    odd = editor.get("/runs", params={"tag": ["searched", "odd"]}).json()["items"]
    assert [item["id"] for item in odd] == [made[1]]
    good = editor.get("/runs", params={"experiment": "api/search", "metric": "acc>=0.5"}).json()
    assert sorted(item["id"] for item in good["items"]) == made[1:]
    running = editor.get("/runs", params={"experiment": "api/search", "status": "running"})
    assert len(running.json()["items"]) == 3
    assert_error(editor.get("/runs", params={"metric": "acc~1"}), 422, "validation_error")
    assert_error(editor.get("/runs", params={"metric": "acc>=high"}), 422, "validation_error")


def test_artifacts_list(editor: httpx.Client, run: dict[str, Any], server: Server) -> None:
    assert editor.get(f"/runs/{run['id']}/artifacts").json() == {"items": [], "next": None}
    server.wb.runs.log_artifact(run["id"], {"w": np.ones(3)}, name="weights")
    items = editor.get(f"/runs/{run['id']}/artifacts").json()["items"]
    assert [(item["name"], item["kind"]) for item in items] == [("weights", "tensors")]
    assert_error(editor.get("/runs/999999/artifacts"), 404, "not_found")


def test_downsample_keeps_short_histories_whole() -> None:
    steps = np.arange(5, dtype=np.int64)
    values = np.linspace(0, 1, 5)
    history = MetricHistory(1, "m", steps, np.full(5, np.nan), values.copy(), values)
    assert downsample(history, None) is history
    assert downsample(history, 5) is history
    assert downsample(history, 2).steps.tolist() == [0, 4]
