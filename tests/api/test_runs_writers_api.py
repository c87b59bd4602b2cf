"""The routes a remote ``wb.runs`` needs: numbered batches, imports, compare, convergence,
usage, lineage and artifact pages, on each catalog backend."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import numpy as np
import pytest
from tests.api.support import Server, assert_error

from weightbase.lineage import Node
from weightbase.tracking.wire import MEDIA_TYPE, encode_batch


@pytest.fixture
def run(editor: httpx.Client) -> dict[str, Any]:
    created = editor.post("/runs", json={"experiment": "api/writers", "params": {"lr": 0.1}})
    assert created.status_code == 201, created.text
    return dict(created.json())


def _rows(steps: range, value: float) -> np.ndarray:
    rows = np.zeros((len(steps), 4))
    rows[:, 0] = list(steps)
    rows[:, 1] = np.nan
    rows[:, 2] = 1.7e9
    rows[:, 3] = value
    return rows


def test_a_packed_batch_sent_twice_is_stored_once(
    editor: httpx.Client, run: dict[str, Any]
) -> None:
    writer = uuid.uuid4().hex
    url = f"/runs/{run['id']}/writers/{writer}/batches"
    body = encode_batch({"loss": _rows(range(100), 0.5), "acc": _rows(range(100), np.nan)})
    headers = {"Content-Type": MEDIA_TYPE}
    first = editor.put(f"{url}/1", content=body, headers=headers).json()
    assert first == {
        "run_id": run["id"],
        "writer": writer,
        "sequence": 1,
        "stored": 200,
        "repeat": False,
    }
    again = editor.put(f"{url}/1", content=body, headers=headers).json()
    assert (again["stored"], again["repeat"]) == (0, True)
    state = editor.get(f"/runs/{run['id']}/writers/{writer}").json()
    assert state == {"run_id": run["id"], "writer": writer, "sequence": 1}
    found = editor.get(f"/runs/{run['id']}").json()["metrics"]
    assert found["loss"]["count"] == 100
    assert found["acc"]["nonfinite"] == 100
    assert_error(editor.put(f"{url}/2", content=b"not a batch"), 422, "validation_error")
    assert_error(editor.put(f"{url}/0", content=body), 422, "validation_error")
    assert_error(
        editor.put(f"/runs/{run['id']}/writers/a b/batches/2", content=body),
        422,
        "validation_error",
    )
    assert_error(
        editor.put(f"/runs/999999/writers/{writer}/batches/1", content=body), 404, "not_found"
    )


def test_a_json_batch_with_a_writer_is_stored_once(
    editor: httpx.Client, run: dict[str, Any]
) -> None:
    body = {"points": [{"name": "loss", "value": 1.0, "step": 0}], "writer": "w", "sequence": 1}
    url = f"/runs/{run['id']}/metrics"
    assert editor.post(url, json=body).json()["repeat"] is False
    assert editor.post(url, json=body).json() == {
        "run_id": run["id"],
        "writer": "w",
        "sequence": 1,
        "stored": 0,
        "repeat": True,
    }
    assert_error(editor.post(url, json={**body, "sequence": None}), 422, "validation_error")
    assert editor.get(f"/runs/{run['id']}").json()["metrics"]["loss"]["count"] == 1


def test_status_with_usage_usage_compact_and_convergence(
    editor: httpx.Client, run: dict[str, Any]
) -> None:
    steps = range(60)
    loss = [1.0 / (step + 1) for step in steps]
    points = [
        {"name": "train/loss", "value": v, "step": s} for s, v in zip(steps, loss, strict=True)
    ]
    for start in range(0, 60, 20):
        editor.post(f"/runs/{run['id']}/metrics", json={"points": points[start : start + 20]})
    assert editor.post(f"/runs/{run['id']}/compact").json()["removed_blocks"] == 2
    usage = {"cpu_seconds": 7.2, "peak_memory_bytes": 1000}
    assert editor.post(f"/runs/{run['id']}/usage", json=usage).status_code == 204
    assert_error(
        editor.post(f"/runs/{run['id']}/usage", json={"cpu_seconds": -1}), 422, "validation_error"
    )
    report = editor.get(f"/runs/{run['id']}/convergence", params={"window": 5}).json()
    assert report["points"] == 60
    assert report["window"] == 5
    done = editor.put(
        f"/runs/{run['id']}/status",
        json={"status": "completed", "usage": {"cpu_seconds": 3.6, "gpu_seconds": 0.0}},
    ).json()
    assert done["resources"]["cpu_hours"] == pytest.approx(10.8 / 3600)
    assert done["resources"]["peak_memory_bytes"] == 1000


def test_import_compare_and_search_by_param_and_minimum(editor: httpx.Client) -> None:
    body = {
        "experiment": "api/imported",
        "started_at": "2026-01-01T00:00:00+00:00",
        "ended_at": "2026-01-01T01:00:00+00:00",
        "params": {"opt": "adam", "lr": 0.01},
        "tags": ["imported"],
        "metrics": {
            "val/loss": {
                "steps": [0, 1, 2],
                "epochs": [0.0, None, 2.0],
                "times": [1.7e9, 1.7e9 + 1, 1.7e9 + 2],
                "values": [0.9, "nan", 0.2],
            }
        },
    }
    imported = editor.post("/runs/imports", json=body)
    assert imported.status_code == 201, imported.text
    first = imported.json()
    assert first["status"] == "completed"
    assert first["metrics"]["val/loss"]["nonfinite"] == 1
    second = editor.post("/runs/imports", json={**body, "params": {"opt": "sgd"}}).json()
    history = editor.get(f"/runs/{first['id']}/metrics/val/loss").json()
    assert history["epochs"] == [0.0, None, 2.0]
    found = editor.get(
        "/runs",
        params={"experiment": "api/imported", "param": 'opt="adam"', "metric": "min(val/loss)<0.3"},
    ).json()["items"]
    assert [item["id"] for item in found] == [first["id"]]
    bare = editor.get("/runs", params={"experiment": "api/imported", "param": "opt=sgd"}).json()
    assert [item["id"] for item in bare["items"]] == [second["id"]]
    by_id = editor.get("/runs", params={"experiment": f"id:{first['experiment_id']}"}).json()
    assert len(by_id["items"]) == 2
    compared = editor.get(
        "/runs/compare", params={"run": [first["id"], second["id"]], "param": ["opt"]}
    ).json()
    assert compared["params"] == {"opt": ["adam", "sgd"]}
    assert compared["differing_params"] == ["opt"]
    assert compared["metrics"]["val/loss"] == [0.2, 0.2]
    assert_error(editor.get("/runs/compare", params={"run": 999999}), 404, "not_found")
    assert_error(
        editor.post("/runs/imports", json={**body, "status": "running"}), 422, "validation_error"
    )


def test_links_and_artifact_pages(
    editor: httpx.Client, run: dict[str, Any], server: Server
) -> None:
    link = editor.post(
        f"/runs/{run['id']}/links",
        json={"relation": "trained_on", "kind": "dataset_version", "id": "7"},
    )
    assert link.status_code == 201, link.text
    edges = server.wb.lineage.edges(Node("run", str(run["id"])), direction="out")
    assert [(edge.target, edge.relation) for edge in edges] == [
        (Node("dataset_version", "7"), "trained_on")
    ]
    for name in ("c", "a", "b/x"):
        server.wb.runs.log_artifact(run["id"], {"w": np.ones(2)}, name=name)
    names, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"after": cursor} if cursor else {})
        found = editor.get(f"/runs/{run['id']}/artifacts", params=params).json()
        names += [item["name"] for item in found["items"]]
        cursor = found["next"]
        if cursor is None:
            break
    assert sorted(names) == ["a", "b/x", "c"]
    one = editor.get(f"/runs/{run['id']}/artifacts/b/x").json()
    assert (one["name"], one["kind"]) == ("b/x", "tensors")
    assert_error(editor.get(f"/runs/{run['id']}/artifacts/none"), 404, "not_found")
    assert_error(
        editor.get(f"/runs/{run['id']}/artifacts", params={"after": "zz"}), 422, "validation_error"
    )
    # a snapshot already in the server's store becomes an artifact by name
    snapshot = server.wb.store.write({"w": np.arange(4.0)}, ref="tests/artifact-source")
    kept = editor.post(
        f"/runs/{run['id']}/artifacts", json={"name": "copied", "snapshot": snapshot.id}
    )
    assert kept.status_code == 201, kept.text
    assert kept.json()["snapshot_id"] == snapshot.id
    assert server.wb.store.get_ref(f"runs/{run['id']}/artifacts/copied") == snapshot.id
    again = editor.post(
        f"/runs/{run['id']}/artifacts", json={"name": "copied", "snapshot": snapshot.id}
    )
    assert_error(again, 409, "conflict")
    missing = editor.post(
        f"/runs/{run['id']}/artifacts", json={"name": "gone", "snapshot": "0" * 64}
    )
    assert_error(missing, 404, "not_found")
