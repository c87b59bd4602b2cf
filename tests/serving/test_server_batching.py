"""``weightbase serve`` under load, on loopback: dynamic batching, the concurrency bound
(429), the timeout (504), the response cache, eviction under the memory budget and a
model that fails to load."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
httpx = pytest.importorskip("httpx")

from tests.serving.test_server_models import running_server  # noqa: E402

from weightbase.serving.server_options import ServeOptions  # noqa: E402

REFS = ["encoder@latest", "writer@latest", "slow@latest", "broken@latest", "missing@latest"]
# the tiny encoder's and writer's parameters are 160 kB and 144 kB: one fits at a time
OPTIONS = ServeOptions(
    memory_budget=200_000, batch_size=16, max_wait_ms=150, max_concurrency=6, timeout_s=3.0
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Any]]:
    home = tmp_path_factory.mktemp("batching")
    with (
        running_server(home, REFS, OPTIONS) as (url, engine),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client, engine


def _rows(*first: float) -> dict[str, Any]:
    data = [[value, 1.0] for value in first]
    return {"inputs": [{"name": "x", "shape": [len(first), 2], "datatype": "FP32", "data": data}]}


def _at_once(client: httpx.Client, count: int, path: str, body: dict[str, Any]) -> list[Any]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: client.post(path, json=body), range(count)))


def test_concurrent_requests_run_as_one_batch(server: tuple[httpx.Client, Any]) -> None:
    client, engine = server
    assert client.post("/v2/models/slow/infer", json=_rows(0.0)).status_code == 200  # loaded
    batches = engine.metrics.sample("weightbase_serve_batch_size_count", model="slow")
    inputs = engine.metrics.sample("weightbase_serve_batch_size_sum", model="slow")
    responses = _at_once(client, 5, "/v2/models/slow/infer", _rows(0.2))
    assert [r.status_code for r in responses] == [200] * 5
    assert all(r.json()["outputs"][0]["data"] == pytest.approx([1.2]) for r in responses)
    ran = engine.metrics.sample("weightbase_serve_batch_size_count", model="slow") - batches
    summed = engine.metrics.sample("weightbase_serve_batch_size_sum", model="slow") - inputs
    # the first request may be cached: the rest must have shared forward passes
    assert summed >= 4
    assert ran < summed


def test_beyond_max_concurrency_is_429_with_retry_after(server: tuple[httpx.Client, Any]) -> None:
    client, _ = server
    responses = _at_once(client, 12, "/v2/models/slow/infer", _rows(0.7))
    codes = sorted(r.status_code for r in responses)
    assert set(codes) == {200, 429}, codes
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["Retry-After"] == "1"
    assert "in flight" in refused.json()["error"]


def test_a_request_past_the_timeout_is_504(server: tuple[httpx.Client, Any]) -> None:
    client, engine = server
    response = client.post("/v2/models/slow/infer", json=_rows(3.5))
    assert response.status_code == 504
    assert "within 3 s" in response.json()["error"]
    assert (
        engine.metrics.sample("weightbase_serve_rejected_total", model="slow", reason="timeout")
        == 1
    )


def test_a_repeated_request_is_answered_from_the_cache(server: tuple[httpx.Client, Any]) -> None:
    client, engine = server
    body = {"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": ["a cached cat"]}]}
    hits = engine.metrics.sample("weightbase_serve_cache_hits_total", model="encoder")
    misses = engine.metrics.sample("weightbase_serve_cache_misses_total", model="encoder")
    first = client.post("/v2/models/encoder/infer", json=body).json()
    second = client.post("/v2/models/encoder/infer", json=body).json()
    assert first["parameters"] == {"cached": False}
    assert second["parameters"] == {"cached": True}
    assert first["outputs"] == second["outputs"]
    assert engine.metrics.sample("weightbase_serve_cache_hits_total", model="encoder") == hits + 1
    assert (
        engine.metrics.sample("weightbase_serve_cache_misses_total", model="encoder") == misses + 1
    )
    assert 'weightbase_serve_cache_hits_total{model="encoder"}' in client.get("/metrics").text


def test_the_least_recently_used_model_is_evicted_past_the_budget(
    server: tuple[httpx.Client, Any],
) -> None:
    client, engine = server
    embed = {"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": ["evict"]}]}
    write = {**embed, "parameters": {"max_tokens": 2}}
    assert client.post("/v2/models/encoder/infer", json=embed).status_code == 200
    loads = engine.pool.models["encoder"].loads
    evicted = weakref.ref(engine.pool.models["encoder"].runnable)
    assert client.post("/v2/models/writer/infer", json=write).status_code == 200
    gc.collect()
    assert evicted() is None  # nothing holds an evicted model: its memory is free
    models = client.get("/readyz").json()["models"]
    assert models["writer"]["state"] == "loaded"
    assert models["encoder"]["state"] == "unloaded"  # evicted: both do not fit
    assert engine.pool.loaded_bytes <= OPTIONS.memory_budget
    assert engine.metrics.sample("weightbase_serve_model_evictions_total", model="encoder") >= 1
    embed["inputs"][0]["data"] = ["evict again"]  # not from the cache: loaded again
    assert client.post("/v2/models/encoder/infer", json=embed).status_code == 200
    assert engine.pool.models["encoder"].loads == loads + 1
    assert client.get("/readyz").json()["models"]["writer"]["state"] == "unloaded"


def test_a_model_that_fails_to_load_shows_on_readyz(server: tuple[httpx.Client, Any]) -> None:
    client, engine = server
    body = {"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}
    for _ in range(3):  # tried once, then reported without loading again
        response = client.post("/v2/models/broken/infer", json=body)
        assert response.status_code == 503
        assert "failed to load" in response.json()["error"]
    assert (
        engine.metrics.sample(
            "weightbase_serve_model_loads_total", model="broken", outcome="failed"
        )
        == 1
    )
    assert client.post("/v2/models/missing/infer", json=body).status_code == 503
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["broken", "missing"]
    assert "config.json" in ready.json()["models"]["broken"]["error"]
    metadata = client.get("/v2/models/broken").json()
    assert metadata["state"] == "failed"
    assert "config.json" in metadata["error"]
    assert client.get("/v2/models/broken/ready").status_code == 503
    assert client.get("/healthz").status_code == 200  # alive: not a crash loop
    assert client.post("/v2/models/slow/infer", json=_rows(0.0)).status_code == 200
