"""The demo's serving part: deploy the digits MLP and MiniLM, serve them, send real requests.

The inference server runs in this process on a free loopback port; the requests go
through HTTP (Open Inference Protocol and the OpenAI API), and the cache figures come
from its ``/metrics``. The deployments read ``running`` while it serves, ``stopped`` after.
"""

from __future__ import annotations

import importlib.util
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.markup import escape
from rich.table import Table

from weightbase.cli._common import console, err_console

if TYPE_CHECKING:
    import httpx

    from weightbase.serving import Deployment
    from weightbase.serving.server_options import ServeOptions
    from weightbase.workspace import Workspace

__all__ = ["loopback_server", "missing_extra", "render_serving", "serve_models"]

#: Test-split images of the digits sent to the MLP, one request each.
IMAGES = 32
#: Of those, the ones sent again: answered from the response cache.
CACHED_IMAGES = 8
SENTENCES = (
    "A cat is sleeping on the sofa.",
    "A kitten naps on the couch.",
    "The stock market fell sharply today.",
    "Shares dropped steeply this afternoon.",
    "How do I bake sourdough bread?",
    "What is a good recipe for bread?",
)
# the server ([server]), the client of the demo's requests ([server]) and MiniLM's ([hf])
_NEEDS = ("fastapi", "uvicorn", "prometheus_client", "httpx", "transformers")
_CONFIGS: dict[str, dict[str, Any]] = {
    "staging": {
        "batch_size": 16,
        "max_wait_ms": 2,
        "scaling": {"min_replicas": 2, "max_replicas": 4},
    },
    "development": {"batch_size": 8, "max_wait_ms": 2},
}


def serve_models(
    wb: Workspace, *, digits: str, minilm: str, dataset: str, show_progress: bool = True
) -> dict[str, Any]:
    """Deploy ``digits`` to staging and ``minilm`` to development, serve both, query them.

    Without the ``[server]`` and ``[hf]`` extras nothing is deployed: the result says
    what is missing under ``skipped``.
    """
    missing = missing_extra()
    if missing is not None:
        return {"skipped": missing}
    deployed = [
        wb.deployments.deploy(
            digits, environment="staging", config=_CONFIGS["staging"], reason="demo"
        ),
        wb.deployments.deploy(
            minilm, environment="development", config=_CONFIGS["development"], reason="demo"
        ),
    ]
    mlp, encoder = deployed
    try:
        with _server(wb, deployed) as client:
            running = [
                wb.deployments.set_status(
                    d.model, "running", environment=d.environment, reason="demo server up"
                )
                for d in deployed
            ]
            with _spinner(f"loading {mlp.model} and {encoder.model}", show_progress):
                digits_part = _ask_digits(client, wb, mlp.model, dataset)
                sentences_part = _ask_sentences(client, encoder.model)
            served = client.get("/readyz").json()["models"]
            cache = _cache_counts(client.get("/metrics").text)
    except Exception as exc:
        for d in deployed:
            wb.deployments.set_status(
                d.model, "failed", environment=d.environment, reason=f"demo: {exc}"[:500]
            )
        raise
    finally:
        stopped = [
            wb.deployments.undeploy(d.model, environment=d.environment, reason="demo finished")
            for d in deployed
        ]
    return {
        "deployments": [
            {
                **_deployment(first),
                "status_while_serving": during.status,
                "status_after": after.status,
                "loaded_bytes": served[first.model]["bytes"],
            }
            for first, during, after in zip(deployed, running, stopped, strict=True)
        ],
        "digits": digits_part,
        "sentences": sentences_part,
        "cache": cache,
    }


def missing_extra() -> str | None:
    """What the serving part lacks, naming the extras that bring it; None when all is there."""
    absent = [name for name in _NEEDS if importlib.util.find_spec(name) is None]
    if not absent:
        return None
    return (
        f"{', '.join(absent)} not installed; the serving part needs "
        "pip install 'weightbase[server,hf]'"
    )


def _deployment(found: Deployment) -> dict[str, Any]:
    return {
        "model": found.model,
        "version": found.version,
        "environment": found.environment,
        "replicas": found.replicas,
        "batch_size": found.config.batch_size,
        "max_wait_ms": found.config.max_wait_ms,
    }


@contextmanager
def _server(wb: Workspace, deployed: list[Deployment]) -> Iterator[httpx.Client]:
    """The inference server for ``deployed`` on a free loopback port, stopped on the way out."""
    from weightbase.serving.server_options import ServeOptions

    configs = [d.config for d in deployed]
    options = ServeOptions(
        batch_size=max(c.batch_size for c in configs),
        max_wait_ms=min(c.max_wait_ms for c in configs),
        max_concurrency=min(c.max_concurrency for c in configs),
        timeout_s=max(c.timeout_s for c in configs),
    )
    with loopback_server(wb, [f"{d.model}@{d.version}" for d in deployed], options) as client:
        yield client


@contextmanager
def loopback_server(
    wb: Workspace, refs: list[str], options: ServeOptions
) -> Iterator[httpx.Client]:
    """``weightbase serve REFS`` in a thread on a free loopback port, and a client of it;
    stopped (its last samples and metrics written) on the way out."""
    import httpx
    import uvicorn

    from weightbase.serving.app import create_serve_app

    app = create_serve_app(wb, refs, options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="weightbase-demo-serve", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo's inference server did not start")
            time.sleep(0.01)
        # the first answer includes a model load: allow it more than a request's time
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@contextmanager
def _spinner(text: str, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    with err_console.status(f"[bold]{text}[/] (on first request), then querying them"):
        yield


def _timed(call: Callable[[], httpx.Response]) -> tuple[Any, float]:
    started = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return response.json(), elapsed * 1000


def _ask_digits(client: httpx.Client, wb: Workspace, model: str, dataset: str) -> dict[str, Any]:
    """Test-split images, one OIP request each; the first few again, from the cache."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    chosen = np.asarray(wb.datasets.splits(dataset).test)[:IMAGES]
    images = (digits.data[chosen] / 16).astype(np.float32)  # the training's normalisation
    labels = digits.target[chosen].tolist()

    def infer(image: np.ndarray[Any, Any]) -> Callable[[], httpx.Response]:
        tensor = {"name": "input", "shape": [1, 64], "datatype": "FP32", "data": image.tolist()}
        return lambda: client.post(f"/v2/models/{model}/infer", json={"inputs": [tensor]})

    predicted: list[int] = []
    latencies: list[float] = []
    for image in images:
        answer, ms = _timed(infer(image))
        predicted.append(int(np.argmax(answer["outputs"][0]["data"])))
        latencies.append(ms)
    cached: list[float] = []
    same = 0  # answers of the second pass the server says came from its cache, unchanged
    for image, before in zip(images[:CACHED_IMAGES], predicted, strict=False):
        answer, ms = _timed(infer(image))
        again = int(np.argmax(answer["outputs"][0]["data"]))
        same += answer["parameters"]["cached"] is True and again == before
        cached.append(ms)
    right = sum(p == t for p, t in zip(predicted, labels, strict=True))
    return {
        "model": model,
        "images": len(labels),
        "predicted": predicted,
        "labels": labels,
        "accuracy": round(right / len(labels), 4),
        "cached_answers": same,
        "latency_ms": _latency(latencies, cached),
    }


def _ask_sentences(client: httpx.Client, model: str) -> dict[str, Any]:
    """Each sentence embedded through ``/v1/embeddings``, twice: the second pass is cached."""

    def embed(text: str) -> Callable[[], httpx.Response]:
        return lambda: client.post("/v1/embeddings", json={"model": model, "input": text})

    vectors: list[list[float]] = []
    latencies: list[float] = []
    for sentence in SENTENCES:
        answer, ms = _timed(embed(sentence))
        vectors.append(answer["data"][0]["embedding"])
        latencies.append(ms)
    cached = [_timed(embed(sentence))[1] for sentence in SENTENCES]
    matrix = np.asarray(vectors, dtype=np.float64)
    similarity = matrix @ matrix.T  # MiniLM's embeddings are L2-normalised
    np.fill_diagonal(similarity, -1.0)
    nearest = [int(i) for i in similarity.argmax(axis=1)]
    return {
        "model": model,
        "sentences": len(SENTENCES),
        "dimensions": matrix.shape[1],
        "nearest": [
            {
                "sentence": SENTENCES[i],
                "nearest": SENTENCES[j],
                "cosine": round(float(similarity[i, j]), 4),
            }
            for i, j in enumerate(nearest)
        ],
        "latency_ms": _latency(latencies, cached),
    }


def _latency(first_pass: list[float], cached: list[float]) -> dict[str, Any]:
    return {
        "first_request": round(first_pass[0], 2),
        "warm_p50": round(statistics.median(first_pass[1:]), 2),
        "cached_p50": round(statistics.median(cached), 2),
        "requests": len(first_pass) + len(cached),
    }


def _cache_counts(exposition: str) -> dict[str, dict[str, int]]:
    """Response-cache hits and misses per model, from the server's ``/metrics`` text."""
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[str, dict[str, int]] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name not in ("weightbase_serve_cache_hits", "weightbase_serve_cache_misses"):
            continue
        kind = family.name.rsplit("_", 1)[1]
        for sample in family.samples:
            if sample.name.endswith("_total"):
                model = sample.labels["model"]
                counts.setdefault(model, {"hits": 0, "misses": 0})[kind] = int(sample.value)
    return counts


def render_serving(result: dict[str, Any]) -> None:
    """Print the serving part for people."""
    console.rule("[bold]serving")
    if "skipped" in result:
        console.print(f"[yellow]skipped[/]: {escape(result['skipped'])}\n")
        return
    table = Table(title="deployments", show_header=True)
    table.add_column("deployed", no_wrap=True)
    for column in ("environment", "replicas", "batch", "serving", "after"):
        table.add_column(column)
    for d in result["deployments"]:
        table.add_row(
            escape(f"{d['model']}@{d['version']}"),
            d["environment"],
            str(d["replicas"]),
            str(d["batch_size"]),
            f"[green]{d['status_while_serving']}[/]",
            d["status_after"],
        )
    console.print(table)
    digits = result["digits"]
    pairs = " ".join(
        f"{p}" if p == t else f"[red]{p}≠{t}[/]"
        for p, t in zip(digits["predicted"], digits["labels"], strict=True)
    )
    console.print(
        f"{digits['model']} through OIP /v2/models/{digits['model']}/infer, "
        f"{digits['images']} test images (predicted, [red]predicted≠true[/]): {pairs}"
    )
    console.print(f"accuracy on them: [bold]{digits['accuracy']:.3f}[/]")
    sentences = result["sentences"]
    console.print(
        f"{escape(sentences['model'])} through /v1/embeddings: {sentences['sentences']} sentences, "
        f"{sentences['dimensions']} dimensions; nearest by cosine:"
    )
    shown: set[frozenset[str]] = set()
    for pair in sentences["nearest"]:
        both = frozenset((pair["sentence"], pair["nearest"]))
        if both not in shown:  # a pair nearest to each other is shown once
            shown.add(both)
            console.print(f"  {pair['sentence']!r} ↔ {pair['nearest']!r} ({pair['cosine']:.2f})")
    latency = Table(title="latency, ms (in-process server on loopback)", show_header=True)
    latency.add_column("model")
    for column in ("first (with load)", "warm p50", "cached p50", "requests"):
        latency.add_column(column, justify="right")
    cache = Table(title="response cache, from /metrics", show_header=True)
    cache.add_column("model")
    cache.add_column("hits", justify="right")
    cache.add_column("misses", justify="right")
    for part in (digits, sentences):
        figures = part["latency_ms"]
        latency.add_row(
            escape(part["model"]),
            f"{figures['first_request']:.1f}",
            f"{figures['warm_p50']:.1f}",
            f"{figures['cached_p50']:.1f}",
            str(figures["requests"]),
        )
        counts = result["cache"].get(part["model"], {"hits": 0, "misses": 0})
        cache.add_row(escape(part["model"]), str(counts["hits"]), str(counts["misses"]))
    console.print(latency)
    console.print(cache)
    console.print("server stopped; deployments undeployed\n")
