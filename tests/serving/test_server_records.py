"""What ``weightbase serve`` keeps and reports: key/value caches of shared prompt prefixes,
inference metrics and sessions written to the catalog, and its deployments' status.

A real server on loopback (uvicorn in a thread) over a fresh embedded workspace,
driven with httpx; the tiny GPT-2 of ``test_server_models`` generates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
httpx = pytest.importorskip("httpx")

from tests.remote_support import serve_in_thread  # noqa: E402
from tests.serving.test_server_models import push_models  # noqa: E402

import weightbase  # noqa: E402
from weightbase.serving.app import create_serve_app  # noqa: E402
from weightbase.serving.kv_cache import PrefixCache  # noqa: E402
from weightbase.serving.runnable import clear_runnables, load_runnable  # noqa: E402
from weightbase.serving.runnable_outputs import GenerationParams  # noqa: E402
from weightbase.serving.server_options import ServeOptions  # noqa: E402
from weightbase.workspace import Workspace  # noqa: E402

SYSTEM = "user : the cat sat on the mat . the dog is very happy . hello world assistant :"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("records")
    with weightbase.open(tmp / "home") as wb:
        push_models(wb, tmp)
    return tmp / "home"


@contextmanager
def serving(
    home: Path,
    refs: list[str],
    options: ServeOptions,
    before: Callable[[Workspace], Any] | None = None,
) -> Iterator[tuple[Workspace, httpx.Client, Any]]:
    clear_runnables()
    with weightbase.open(home) as wb:
        if before is not None:
            before(wb)
        app = create_serve_app(wb, refs, options)
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
            yield wb, client, app
    clear_runnables()


def _complete(client: httpx.Client, prompt: str, **params: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/completions", json={"model": "writer", "prompt": prompt, "max_tokens": 6, **params}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _sample(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + '{model="writer"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# -- the prefix cache, on its own --------------------------------------------------------


def _writer(home: Path) -> Any:
    clear_runnables()
    with weightbase.open(home) as wb:
        return load_runnable(wb, "writer@latest")


def test_a_prefix_is_found_cropped_and_handed_out_as_a_copy(home: Path) -> None:
    writer = _writer(home)
    cache = PrefixCache(4, min_tokens=4)
    first = writer.prompt_ids(SYSTEM + " good")
    assert cache.lookup(first) == (0, None)
    writer._remember(first, cache)
    assert len(cache) == 1
    second = writer.prompt_ids(SYSTEM + " bad sad")
    shared = next(i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b)
    reused, kv = cache.lookup(second)
    assert reused == shared > 4
    assert kv.get_seq_length() == shared
    # generation extends the copy, never the stored entry
    _, kv_again = cache.lookup(second)
    assert kv_again is not kv
    assert kv_again.get_seq_length() == shared
    assert (cache.hits, cache.misses, cache.tokens_reused) == (2, 1, 2 * shared)
    assert cache.hit_rate == pytest.approx(2 / 3)
    # too short a prefix in common is a miss
    assert cache.lookup(writer.prompt_ids("sad bad"))[1] is None


def test_the_cache_keeps_its_most_recent_prompts_within_count_and_bytes(home: Path) -> None:
    writer = _writer(home)
    cache = PrefixCache(2, min_tokens=2)
    prompts = [f"w{i} w{i} the cat sat on the mat" for i in range(3)]
    for prompt in prompts:
        writer._remember(writer.prompt_ids(prompt), cache)
    assert len(cache) == 2
    assert cache.lookup(writer.prompt_ids(prompts[0] + " good"))[0] < 4  # evicted
    assert cache.lookup(writer.prompt_ids(prompts[2] + " good"))[0] > 4
    tiny = PrefixCache(8, max_bytes=16, min_tokens=2)
    writer._remember(writer.prompt_ids(prompts[0]), tiny)
    assert len(tiny) == 0  # larger than the whole cache
    off = PrefixCache(0)
    writer._remember(writer.prompt_ids(prompts[0]), off)
    assert len(off) == 0


def test_generation_from_a_reused_prefix_gives_the_same_text(home: Path) -> None:
    writer = _writer(home)
    cache = PrefixCache(4)
    params = GenerationParams(max_tokens=8)
    prompts = [SYSTEM + " good", SYSTEM + " bad sad", SYSTEM + " good"]
    plain = [writer.generate([prompt], params)[0] for prompt in prompts]
    cached = [writer.generate([prompt], params, prefix_cache=cache)[0] for prompt in prompts]
    assert cached == plain
    assert (cache.hits, cache.misses) == (2, 1)
    # a batch: prompts with a cached prefix run alone, the rest together, all answered
    batch = [SYSTEM + " very", "hello world", "the mat"]
    assert writer.generate(batch, params, prefix_cache=cache) == [
        writer.generate([prompt], params)[0] for prompt in batch
    ]


# -- through the server ------------------------------------------------------------------


def test_the_server_reuses_a_shared_prefix_and_counts_it(home: Path) -> None:
    options = ServeOptions(cache_bytes=0, metrics_interval_s=0)
    with serving(home, ["writer@latest"], options) as (_, client, _app):
        texts = [_complete(client, SYSTEM + end)["choices"][0]["text"] for end in (" a", " b")]
        streamed = client.post(
            "/v1/completions",
            json={"model": "writer", "prompt": SYSTEM + " a", "max_tokens": 6, "stream": True},
        )
        assert streamed.status_code == 200
        assert _sample(client, "weightbase_serve_kv_prefix_misses_total") == 1
        assert _sample(client, "weightbase_serve_kv_prefix_hits_total") == 2
        assert _sample(client, "weightbase_serve_kv_prefix_tokens_total") > 20
    with serving(home, ["writer@latest"], ServeOptions(cache_bytes=0, kv_prefix_cache=0)) as (
        _,
        client,
        _app,
    ):
        without = [_complete(client, SYSTEM + end)["choices"][0]["text"] for end in (" a", " b")]
        assert _sample(client, "weightbase_serve_kv_prefix_misses_total") == 0
    assert texts == without


def test_inference_metrics_and_sessions_reach_the_catalog(home: Path) -> None:
    options = ServeOptions(metrics_interval_s=0.2)
    with serving(home, ["writer@latest", "encoder@latest"], options) as (wb, client, app):
        for _ in range(3):
            _complete(client, "the cat", temperature=0.5, top_k=5, seed=1)
        _complete(client, "the dog")
        response = client.post("/v1/embeddings", json={"model": "encoder", "input": ["a cat"]})
        assert response.status_code == 200
        assert client.post("/v1/completions", json={"model": "writer"}).status_code == 422
        deadline = time.monotonic() + 20
        while app.state.reporter.written < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.reporter.written >= 2  # by the interval, while serving
        version = wb.models.version("writer@latest").version
        server = app.state.engine.telemetry.server_id
    # (other tests' servers recorded windows of this workspace too)
    windows = [w for w in wb.inference.metrics("writer") if w.server_id == server]
    assert sum(w.requests for w in windows) == 5  # the 422 too: the server answered it
    assert all(w.version == version for w in windows)
    assert sum(w.tokens for w in windows) > 0
    assert sum(w.cache_hits for w in windows) == 2  # the seeded repeats
    assert all(w.memory_bytes > 0 and w.latency_p50_ms is not None for w in windows)
    sessions = {
        (s.params.temperature if s.params else None): s
        for s in wb.inference.sessions("writer")
        if s.server_id == server
    }
    assert sessions[0.5].requests == 3
    assert sessions[0.5].params is not None
    assert (sessions[0.5].params.top_k, sessions[0.5].params.seed) == (5, 1)
    assert sessions[0.0].requests == 1
    [embed] = [s for s in wb.inference.sessions("encoder") if s.server_id == server]
    assert (embed.operation, embed.requests, embed.params) == ("embed", 1, None)


def test_the_server_reports_its_deployments_running_failed_and_stopped(home: Path) -> None:
    def deploy(wb: Workspace) -> None:
        wb.deployments.deploy("writer@latest", environment="staging")
        wb.deployments.deploy("broken@latest", environment="staging")
        wb.deployments.deploy("encoder@latest", environment="development")

    options = ServeOptions(environment="staging", metrics_interval_s=60)
    refs = ["writer@latest", "broken@latest", "encoder@latest"]
    with serving(home, refs, options, before=deploy) as (wb, client, _app):
        assert wb.deployments.status("writer", environment="staging").status == "running"
        body = {"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}
        assert client.post("/v2/models/broken/infer", json=body).status_code == 503
        failed = wb.deployments.status("broken", environment="staging")
        assert failed.status == "failed"
        assert "failed to load" in wb.deployments.history("broken")[-1].reason
        # not deployed to staging: left alone
        assert wb.deployments.status("encoder").status == "pending"
        _complete(client, "the cat")
        deployment = wb.deployments.status("writer", environment="staging")
    # the last window is written as the server stops, linked to the deployment
    [window] = wb.inference.metrics("writer", environment="staging")  # only this server's
    assert (window.deployment_id, window.requests) == (deployment.id, 1)
    assert wb.deployments.status("writer", environment="staging").status == "pending"
    assert wb.deployments.history("writer")[-1].reason == "the inference server stopped"
