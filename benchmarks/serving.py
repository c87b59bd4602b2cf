"""``python -m benchmarks serving``: ``weightbase serve`` against direct calls, MLflow's
scoring server and sentence-transformers.

Every row on loopback against an anchor measured in the same run, in interleaved
rounds (the range over rounds is reported):

1. overhead: p50 of one OIP ``infer`` request for a small MLP minus the p50 of the same
   forward pass called in this process (and the same through ``--engine ray``);
2. throughput: requests/s of concurrent clients through ``weightbase serve`` and through
   ``mlflow models serve``, the same MLP and payload, one worker process each;
3. batching: 64 clients, one sentence each, to all-MiniLM-L6-v2 on ``/v1/embeddings``
   with dynamic batching on and off;
4. embeddings/s through ``/v1/embeddings`` (many texts a request) and through
   ``SentenceTransformer.encode`` in this process, same threads;
5. the response cache: p50 of a hit ÷ p50 of a miss;
6. prompt prefixes: a small GPT-2 completing prompts that share a long system prompt,
   with KV-prefix reuse on and off (hit rate from ``/metrics``).

Rows 1 and 3-5 run again with ``--device cuda`` where there is a GPU. Servers in
``benchmarks.serving_processes``, client load in ``benchmarks.serving_load``.
"""

from __future__ import annotations

import base64
import gc
import itertools
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from benchmarks.server_processes import ServerProcess, open_home, settle
from benchmarks.serving_load import closed_loop, distinct_sentences, drain, p50_ms, timed_posts
from benchmarks.serving_models import (
    MLP_ARGS,
    MLP_ENTRY_POINT,
    PROMPT_WORDS,
    bench_mlp,
    gpt2_folder,
)
from benchmarks.serving_processes import (
    ServeSpec,
    counter,
    cpu_seconds,
    mlflow_serve,
    serve_help,
    started,
    weightbase_serve,
)
from benchmarks.serving_results import GPU_KEYS, Figure, ServingConfig, ServingResults

if TYPE_CHECKING:
    import torch

__all__ = ["ServingConfig", "ServingResults", "run_serving"]

Log = Callable[[str], None]

MLP, MINILM, GPT2 = "mlp", "minilm", "gpt2"
NO_GPU = "not run: no GPU here"
_WARMUP_REQUESTS = 10
_PACKAGES = (
    "torch",
    "transformers",
    "sentence-transformers",
    "mlflow",
    "fastapi",
    "uvicorn",
    "httpx",
    "ray",
)
# server names, as the logs and the details call them
UNBATCHED = "weightbase serve --batch-size 1"
BATCHED = "weightbase serve --batch-size {batch}"
CACHED = "weightbase serve (response cache on)"
NO_KV = "weightbase serve --kv-prefix-cache 0"
RAY = "weightbase serve --engine ray"
MLFLOW = "mlflow models serve"


def run_serving(config: ServingConfig, log: Log) -> ServingResults:
    import torch

    _quiet_mlflow()
    threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # the in-process anchors; the servers get OMP_NUM_THREADS
    home = config.workdir / "home"
    log(f"pushing the MLP, all-MiniLM-L6-v2 and a small GPT-2 to a workspace in {home}")
    mlp = _prepare(config, home)
    help_text = serve_help()
    figures: dict[str, Figure] = {}
    detail: dict[str, dict[str, Any]] = {}
    cpu = _CpuRows(config, home, mlp, threads, help_text, log)
    cpu.run(figures, detail)
    gpu_device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    if gpu_device is None:
        for key in GPU_KEYS:
            figures[f"gpu_{key}"] = Figure.skipped(NO_GPU)
    else:
        log(f"the same rows on {gpu_device} (--device cuda)")
        _gpu_rows(config, home, mlp, threads, figures, detail, log)
    return ServingResults(
        config=config,
        figures=figures,
        detail=detail,
        gpu_device=gpu_device,
        versions={name: _version(name) for name in _PACKAGES},
        extra={"threads": threads, "servers": cpu.commands},
    )


def _prepare(config: ServingConfig, home: Path) -> torch.nn.Module:
    """The workspace the servers serve: the MLP (entry point), MiniLM and a small GPT-2;
    the MLP's weights as an MLflow model folder too."""
    import mlflow.pytorch
    from mlflow.models import infer_signature

    from weightbase.samples import minilm_folder

    mlp = bench_mlp(config.seed)
    home.mkdir(parents=True)
    with open_home(home) as wb:
        wb.models.push(MLP, mlp, entry_point=MLP_ENTRY_POINT, init_args=MLP_ARGS)
        wb.models.push(MINILM, minilm_folder())
        wb.models.push(GPT2, gpt2_folder(config.workdir / "gpt2", seed=config.seed))
    example = _rows(config.seed, 1)
    signature = infer_signature(example, _forward(mlp, example))
    mlflow.pytorch.save_model(
        mlp,
        config.workdir / "mlflow-mlp",
        signature=signature,
        serialization_format="pickle",  # the same eager module as weightbase runs
        pip_requirements=["torch"],  # not inferred: served from this environment
    )
    return mlp


class _CpuRows:
    """The rows on this machine's CPUs: which servers they need, and measuring them."""

    def __init__(
        self,
        config: ServingConfig,
        home: Path,
        mlp: torch.nn.Module,
        threads: int,
        help_text: str,
        log: Log,
    ) -> None:
        self.config, self.home, self.mlp, self.threads, self.log = config, home, mlp, threads, log
        self.batched = BATCHED.format(batch=config.batch_size)
        batch = ["--batch-size", str(config.batch_size), "--max-wait-ms", f"{config.max_wait_ms:g}"]
        plain = ["--batch-size", "1", "--cache-size", "0"]
        refs = [f"{MLP}@latest", f"{MINILM}@latest", f"{GPT2}@latest"]
        self.specs: list[ServeSpec] = [
            weightbase_serve(UNBATCHED, home, refs, plain, threads=threads),
            weightbase_serve(
                self.batched, home, refs[:2], [*batch, "--cache-size", "0"], threads=threads
            ),
            weightbase_serve(
                CACHED,
                home,
                refs[1:2],
                ["--batch-size", "1", "--cache-size", "64MiB"],
                threads=threads,
            ),
            mlflow_serve(config.workdir / "mlflow-mlp", threads=threads),
        ]
        self.skipped: dict[str, str] = {}
        # started alone, after the other rows: Ray's own processes keep using CPU
        self.ray_spec: ServeSpec | None = None
        if "--engine" in help_text:
            self.ray_spec = weightbase_serve(
                RAY, home, refs[:1], ["--engine", "ray", *plain], threads=threads, optional=True
            )
        else:
            self.skipped[RAY] = "not run: weightbase serve has no --engine option yet"
        if "--kv-prefix-cache" in help_text:
            self.specs.append(
                weightbase_serve(
                    NO_KV,
                    home,
                    refs[2:],
                    [*plain, "--kv-prefix-cache", "0"],
                    threads=threads,
                    optional=True,
                )
            )
        else:
            self.skipped[NO_KV] = "not run: weightbase serve has no --kv-prefix-cache option yet"
        every = [*self.specs, *([self.ray_spec] if self.ray_spec else [])]
        self.commands = {spec.name: " ".join(spec.argv[1:]) for spec in every}

    def run(self, figures: dict[str, Figure], detail: dict[str, dict[str, Any]]) -> None:
        config, log = self.config, self.log
        log(f"starting {len(self.specs)} servers (one process each, {self.threads} threads)")
        with started(self.specs, log) as running:
            servers = {**running, **self.skipped}
            plain, batched, cached = (
                _server(servers[UNBATCHED]),
                _server(servers[self.batched]),
                _server(servers[CACHED]),
            )
            anchor = _server(servers[MLFLOW])
            no_kv = servers.get(NO_KV)
            _warm(plain, MLP, MINILM)
            _warm(batched, MLP, MINILM)
            _warm(cached, MINILM)
            settle([s for s in servers.values() if isinstance(s, ServerProcess)], log)

            log("[1/7] overhead: one OIP infer request for the MLP vs the same forward in-process")
            overhead = _overhead(config, self.mlp, {"weightbase": plain.url}, "cpu", log)
            figures["overhead_p50_ms"], detail["overhead_p50_ms"] = overhead["weightbase"]

            log(f"[2/7] throughput: {config.throughput_clients} clients, weightbase vs MLflow")
            key = "throughput_speedup_vs_mlflow_serve"
            figures[key], detail[key] = _throughput(config, self.mlp, plain, batched, anchor, log)

            log(f"[3/7] batching: {config.batching_clients} one-sentence clients, on vs off")
            figures["batching_speedup"], detail["batching_speedup"] = _batching(
                config, plain, batched, log
            )

            log("[4/7] embeddings/s: /v1/embeddings vs SentenceTransformer.encode in-process")
            rate, ratio, embed_detail = _embeddings(config, batched, "cpu", log)
            figures["embeddings_per_s"], detail["embeddings_per_s"] = rate, embed_detail
            figures["embeddings_vs_sentence_transformers"] = ratio

            log("[5/7] response cache: p50 of a hit / p50 of a miss")
            figures["cache_hit_latency_ratio"], detail["cache_hit_latency_ratio"] = _cache(
                config, cached, log
            )

            log("[6/7] prompt prefixes: KV-prefix reuse on vs off")
            for key, (figure, row_detail) in _kv_prefix(config, plain, no_kv, log).items():
                figures[key], detail[key] = figure, row_detail

        log("[7/7] the overhead of row 1 through weightbase serve --engine ray")
        key = "ray_serve_overhead_p50_ms"
        figures[key], detail[key] = self._ray()

    def _ray(self) -> tuple[Figure, dict[str, Any]]:
        if self.ray_spec is None:
            return Figure.skipped(self.skipped[RAY]), {}
        with started([self.ray_spec], self.log) as running:
            ray = running[RAY]
            if not isinstance(ray, ServerProcess):
                return Figure.skipped(ray), {}
            try:
                _warm(ray, MLP)
                overhead = _overhead(self.config, self.mlp, {"ray": ray.url}, "cpu", self.log)
            except (httpx.HTTPError, AssertionError) as exc:
                self.log(f"  {RAY} failed: {type(exc).__name__}: {exc}")
                return Figure.skipped(f"not run: {RAY} failed ({exc})"[:300]), {}
        return overhead["ray"]


def _gpu_rows(
    config: ServingConfig,
    home: Path,
    mlp: torch.nn.Module,
    threads: int,
    figures: dict[str, Figure],
    detail: dict[str, dict[str, Any]],
    log: Log,
) -> None:
    """Rows 1 and 3-5 with every server on ``--device cuda`` and the anchors on the GPU."""
    cuda = ["--device", "cuda"]
    batch = ["--batch-size", str(config.batch_size), "--max-wait-ms", f"{config.max_wait_ms:g}"]
    specs = [
        weightbase_serve(
            "gpu " + UNBATCHED, home, [f"{MLP}@latest", f"{MINILM}@latest"],
            [*cuda, "--batch-size", "1", "--cache-size", "0"], threads=threads,
        ),
        weightbase_serve(
            "gpu batched", home, [f"{MINILM}@latest"], [*cuda, *batch, "--cache-size", "0"],
            threads=threads,
        ),
        weightbase_serve(
            "gpu cached", home, [f"{MINILM}@latest"],
            [*cuda, "--batch-size", "1", "--cache-size", "64MiB"], threads=threads,
        ),
    ]  # fmt: skip
    try:
        with started(specs, log) as servers:
            plain, batched, cached = (_server(servers[spec.name]) for spec in specs)
            _warm(plain, MLP, MINILM)
            _warm(batched, MINILM)
            _warm(cached, MINILM)
            settle([plain, batched, cached], log)
            gpu_mlp = mlp.to("cuda")
            overhead = _overhead(config, gpu_mlp, {"weightbase": plain.url}, "cuda", log)
            figures["gpu_overhead_p50_ms"], detail["gpu_overhead_p50_ms"] = overhead["weightbase"]
            figures["gpu_batching_speedup"], detail["gpu_batching_speedup"] = _batching(
                config, plain, batched, log
            )
            rate, ratio, embed_detail = _embeddings(config, batched, "cuda", log)
            figures["gpu_embeddings_per_s"], detail["gpu_embeddings_per_s"] = rate, embed_detail
            figures["gpu_embeddings_vs_sentence_transformers"] = ratio
            figures["gpu_cache_hit_latency_ratio"], detail["gpu_cache_hit_latency_ratio"] = _cache(
                config, cached, log
            )
    except Exception as exc:  # the CPU rows stand; the GPU rows say what went wrong
        log(f"  GPU rows failed: {type(exc).__name__}: {exc}")
        for key in GPU_KEYS:
            figures.setdefault(f"gpu_{key}", Figure.skipped(f"not run: {exc}"[:300]))
    finally:
        mlp.to("cpu")


# -- 1. overhead ---------------------------------------------------------------------------


def _overhead(
    config: ServingConfig,
    mlp: torch.nn.Module,
    servers: dict[str, str],
    device: str,
    log: Log,
) -> dict[str, tuple[Figure, dict[str, Any]]]:
    """p50 of each server's OIP request minus p50 of the forward pass, interleaved."""
    import torch

    rows = _rows(config.seed + 1, config.latency_samples)
    clients = {name: httpx.Client(base_url=url, timeout=60.0) for name, url in servers.items()}
    path = f"/v2/models/{MLP}/infer"

    def direct(row: np.ndarray[Any, Any]) -> list[float]:
        with torch.inference_mode():
            out: list[float] = mlp(torch.from_numpy(row[None]).to(device))[0].cpu().tolist()
        return out

    def over_http(client: httpx.Client) -> Callable[[np.ndarray[Any, Any]], list[float]]:
        def call(row: np.ndarray[Any, Any]) -> list[float]:
            response = client.post(path, json=_oip_body(row))
            response.raise_for_status()
            data: list[float] = response.json()["outputs"][0]["data"]
            return data

        return call

    calls = {"direct": direct, **{name: over_http(client) for name, client in clients.items()}}
    try:
        for name, call in calls.items():  # the same answer every way, and warm
            for _ in range(_WARMUP_REQUESTS):
                answer = call(rows[0])
            np.testing.assert_allclose(
                np.ravel(answer), direct(rows[0]), rtol=1e-4, atol=1e-5, err_msg=name
            )
        names = list(calls)
        p50s: dict[str, list[float]] = {name: [] for name in names}
        for round_index in range(config.rounds):
            samples: dict[str, list[float]] = {name: [] for name in names}
            gc.collect()
            for index, row in enumerate(rows):
                shift = (index + round_index) % len(names)  # rotate which call goes first
                for name in names[shift:] + names[:shift]:
                    begun = time.perf_counter()
                    calls[name](row)
                    samples[name].append(time.perf_counter() - begun)
            for name in names:
                p50s[name].append(p50_ms(samples[name]))
            log(
                f"  round {round_index + 1}/{config.rounds}: p50 "
                + ", ".join(f"{name} {p50s[name][-1]:.3f} ms" for name in names)
            )
    finally:
        for client in clients.values():
            client.close()
    out = {}
    for name in servers:
        figure = Figure(tuple(h - d for h, d in zip(p50s[name], p50s["direct"], strict=True)))
        out[name] = (
            figure,
            {
                "samples_per_round": config.latency_samples,
                "p50_ms": {"direct": p50s["direct"], name: p50s[name]},
                "device": device,
                "request": f"POST {path}, one FP32 row of {MLP_ARGS['inputs']}",
            },
        )
    return out


# -- 2. throughput against MLflow ----------------------------------------------------------


def _throughput(
    config: ServingConfig,
    mlp: torch.nn.Module,
    plain: ServerProcess,
    batched: ServerProcess,
    anchor: ServerProcess,
    log: Log,
) -> tuple[Figure, dict[str, Any]]:
    """Requests/s of the same clients, one row a request, through each server."""
    rows = _rows(config.seed + 2, 256)
    expected = _forward(mlp, rows[:1])[0]
    with httpx.Client(base_url=anchor.url, timeout=60.0) as client:
        answer = client.post("/invocations", json={"inputs": rows[:1].tolist()})
        answer.raise_for_status()
        np.testing.assert_allclose(
            np.ravel(answer.json()["predictions"]), expected, rtol=1e-4, atol=1e-5
        )
    # the bodies encoded once, so the clients spend their CPU on requests alone
    oip = itertools.cycle([json.dumps(_oip_body(row)).encode() for row in rows])
    pandas = itertools.cycle([json.dumps({"inputs": [row.tolist()]}).encode() for row in rows])
    sides: dict[str, tuple[str, str, Callable[[], bytes]]] = {
        "weightbase": (plain.url, f"/v2/models/{MLP}/infer", lambda: next(oip)),
        "mlflow": (anchor.url, "/invocations", lambda: next(pandas)),
        "weightbase_batched": (batched.url, f"/v2/models/{MLP}/infer", lambda: next(oip)),
    }
    for url, path, body in sides.values():  # untimed: connections, first batches
        closed_loop(url, path, body, clients=config.throughput_clients, seconds=0.5).check(path)
    processes = {"weightbase": plain, "mlflow": anchor, "weightbase_batched": batched}
    rates: dict[str, list[float]] = {name: [] for name in sides}
    cpu_ms: dict[str, list[float]] = {name: [] for name in sides}
    client_ms: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    for round_index in range(config.rounds):
        shift = round_index % len(order)
        for name in order[shift:] + order[:shift]:
            url, path, body = sides[name]
            gc.collect()
            cpu_before = cpu_seconds(processes[name])
            client_before = time.process_time()
            result = closed_loop(
                url,
                path,
                body,
                clients=config.throughput_clients,
                seconds=config.throughput_seconds,
            )
            result.check(f"{name} {path}")
            rates[name].append(result.requests_per_s)
            used = cpu_seconds(processes[name]) - cpu_before
            cpu_ms[name].append(used / result.requests * 1e3)
            client_ms[name].append((time.process_time() - client_before) / result.requests * 1e3)
        log(
            f"  round {round_index + 1}/{config.rounds}: "
            + ", ".join(
                f"{name} {rates[name][-1]:,.0f} requests/s ({cpu_ms[name][-1]:.2f} CPU ms each)"
                for name in order
            )
        )
    speedup = Figure(
        tuple(w / m for w, m in zip(rates["weightbase"], rates["mlflow"], strict=True))
    )
    batched_speedup = [
        w / m for w, m in zip(rates["weightbase_batched"], rates["mlflow"], strict=True)
    ]
    return speedup, {
        "clients": config.throughput_clients,
        "seconds_per_side": config.throughput_seconds,
        "requests_per_s": rates,
        "server_cpu_ms_per_request": cpu_ms,
        "client_cpu_ms_per_request": client_ms,
        "batched_speedup_vs_mlflow_serve": batched_speedup,
    }


# -- 3. batching ---------------------------------------------------------------------------


def _batching(
    config: ServingConfig, plain: ServerProcess, batched: ServerProcess, log: Log
) -> tuple[Figure, dict[str, Any]]:
    """Sentences/s of many one-sentence clients with batching off and on."""
    sentences = distinct_sentences(config.seed + 3)

    def body() -> dict[str, Any]:
        return {"model": MINILM, "input": next(sentences), "encoding_format": "base64"}

    sides = {"off": plain, "on": batched}
    clients = config.batching_clients
    for server in sides.values():
        closed_loop(server.url, "/v1/embeddings", body, clients=clients, seconds=0.5).check("warm")
    rates: dict[str, list[float]] = {name: [] for name in sides}
    mean_batch: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    for round_index in range(config.rounds):
        shift = round_index % len(order)
        for name in order[shift:] + order[:shift]:
            server = sides[name]
            before = _batch_counts(server)
            gc.collect()
            result = closed_loop(
                server.url, "/v1/embeddings", body, clients=clients, seconds=config.batching_seconds
            )
            result.check(f"batching {name}")
            after = _batch_counts(server)
            rates[name].append(result.requests_per_s)
            batches = after[1] - before[1]
            mean_batch[name].append((after[0] - before[0]) / batches if batches else 0.0)
        log(
            f"  round {round_index + 1}/{config.rounds}: batching off {rates['off'][-1]:,.0f}, "
            f"on {rates['on'][-1]:,.0f} sentences/s (mean batch {mean_batch['on'][-1]:.1f})"
        )
    speedup = Figure(tuple(on / off for on, off in zip(rates["on"], rates["off"], strict=True)))
    return speedup, {
        "clients": clients,
        "seconds_per_side": config.batching_seconds,
        "batch_size": config.batch_size,
        "max_wait_ms": config.max_wait_ms,
        "sentences_per_s": rates,
        "mean_batch_size": mean_batch,
    }


def _batch_counts(server: ServerProcess) -> tuple[float, float]:
    """Inputs and batches the server's MiniLM has run so far (its batch-size histogram)."""
    inputs = counter(server.url, "weightbase_serve_batch_size_sum", MINILM) or 0.0
    batches = counter(server.url, "weightbase_serve_batch_size_count", MINILM) or 0.0
    return inputs, batches


# -- 4. embeddings/s against sentence-transformers -----------------------------------------


def _embeddings(
    config: ServingConfig, batched: ServerProcess, device: str, log: Log
) -> tuple[Figure, Figure, dict[str, Any]]:
    """Texts/s through /v1/embeddings and through ``encode`` in-process, the same texts."""
    from sentence_transformers import SentenceTransformer

    from weightbase.samples import minilm_folder

    model = SentenceTransformer(str(minilm_folder()), device=device)
    per_request = config.texts_per_request
    sentences = distinct_sentences(config.seed + 4)

    def texts() -> list[str]:
        return [next(sentences) for _ in range(config.embedding_texts)]

    def bodies(batch: list[str]) -> list[dict[str, Any]]:
        return [
            {"model": MINILM, "input": batch[at : at + per_request], "encoding_format": "base64"}
            for at in range(0, len(batch), per_request)
        ]

    check = texts()[:per_request]  # untimed: warm both, and the same vectors both ways
    with httpx.Client(base_url=batched.url, timeout=120.0) as client:
        answer = client.post("/v1/embeddings", json=bodies(check)[0])
        answer.raise_for_status()
    served = np.stack([_decoded(item["embedding"]) for item in answer.json()["data"]])
    local = model.encode(check, batch_size=per_request, normalize_embeddings=True)
    cosine = float((served * local).sum(axis=1).min())
    assert cosine > 0.999, f"the server's embeddings differ from sentence-transformers' ({cosine})"
    rates: dict[str, list[float]] = {"weightbase": [], "sentence_transformers": []}
    for round_index in range(config.rounds):
        batch = texts()
        sides = ["weightbase", "sentence_transformers"]
        for name in sides if round_index % 2 == 0 else sides[::-1]:
            gc.collect()
            if name == "weightbase":
                result = drain(
                    batched.url,
                    "/v1/embeddings",
                    bodies(batch),
                    clients=config.embedding_clients,
                    inputs=len(batch),
                )
                result.check("embeddings")
                rates[name].append(result.inputs_per_s)
            else:
                begun = time.perf_counter()
                model.encode(batch, batch_size=per_request)
                rates[name].append(len(batch) / (time.perf_counter() - begun))
        log(
            f"  round {round_index + 1}/{config.rounds}: /v1/embeddings "
            f"{rates['weightbase'][-1]:,.0f} texts/s, sentence-transformers "
            f"{rates['sentence_transformers'][-1]:,.0f} texts/s"
        )
    ratio = Figure(
        tuple(
            w / s for w, s in zip(rates["weightbase"], rates["sentence_transformers"], strict=True)
        )
    )
    del model
    return (
        Figure(tuple(rates["weightbase"])),
        ratio,
        {
            "texts_per_round": config.embedding_texts,
            "texts_per_request": per_request,
            "clients": config.embedding_clients,
            "texts_per_s": rates,
            "embeddings_vs_sentence_transformers": list(ratio.values),
            "min_cosine_to_sentence_transformers": cosine,
            "device": device,
        },
    )


def _decoded(embedding: str) -> np.ndarray[Any, Any]:
    return np.frombuffer(base64.b64decode(embedding), dtype="<f4")


# -- 5. response cache ---------------------------------------------------------------------


def _cache(config: ServingConfig, cached: ServerProcess, log: Log) -> tuple[Figure, dict[str, Any]]:
    """p50 of a repeated request (a hit) ÷ p50 of a new one (a miss), alternating, sent one
    at a time by the lean client (its own cost, the same for both, is no part of a cache)."""
    sentences = distinct_sentences(config.seed + 5)
    p50s: dict[str, list[float]] = {"miss": [], "hit": []}
    hits_counted = []

    def body(sentence: str) -> dict[str, Any]:
        return {"model": MINILM, "input": sentence, "encoding_format": "base64"}

    timed_posts(
        cached.url, "/v1/embeddings", [body(next(sentences)) for _ in range(_WARMUP_REQUESTS)]
    )
    for round_index in range(config.rounds):
        before = counter(cached.url, "weightbase_serve_cache_hits_total", MINILM) or 0.0
        gc.collect()
        # each new sentence (a miss) then the same again (a hit)
        chosen = [next(sentences) for _ in range(config.latency_samples)]
        took = timed_posts(
            cached.url, "/v1/embeddings", [body(s) for s in chosen for _ in range(2)]
        )
        after = counter(cached.url, "weightbase_serve_cache_hits_total", MINILM) or 0.0
        hits_counted.append(after - before)
        p50s["miss"].append(p50_ms(took[0::2]))
        p50s["hit"].append(p50_ms(took[1::2]))
        log(
            f"  round {round_index + 1}/{config.rounds}: p50 miss {p50s['miss'][-1]:.2f} ms,"
            f" hit {p50s['hit'][-1]:.2f} ms ({after - before:.0f} hits counted)"
        )
    assert all(hits == config.latency_samples for hits in hits_counted), (
        f"the server counted {hits_counted} cache hits, not {config.latency_samples} a round"
    )
    ratio = Figure(tuple(h / m for h, m in zip(p50s["hit"], p50s["miss"], strict=True)))
    return ratio, {
        "samples_per_round": config.latency_samples,
        "p50_ms": p50s,
        "hits_counted_by_server": hits_counted,
    }


# -- 6. prompt prefixes --------------------------------------------------------------------


def _kv_prefix(
    config: ServingConfig, plain: ServerProcess, no_kv: ServerProcess | str | None, log: Log
) -> dict[str, tuple[Figure, dict[str, Any]]]:
    """Completions sharing a long system prompt, KV-prefix reuse on (``plain``) vs off."""
    keys = ("kv_prefix_hit_rate", "kv_prefix_speedup")
    if not isinstance(no_kv, ServerProcess):
        reason = no_kv or "not run: no server without KV-prefix reuse"
        return {key: (Figure.skipped(reason), {}) for key in keys}
    try:
        return _measure_kv_prefix(config, plain, no_kv, log)
    except Exception as exc:  # a feature still being built: say why, keep the other rows
        log(f"  prompt-prefix rows failed: {type(exc).__name__}: {exc}")
        reason = f"not run: {type(exc).__name__}: {exc}"[:300]
        return {key: (Figure.skipped(reason), {}) for key in keys}


def _measure_kv_prefix(
    config: ServingConfig, plain: ServerProcess, no_kv: ServerProcess, log: Log
) -> dict[str, tuple[Figure, dict[str, Any]]]:
    system = " ".join(
        PROMPT_WORDS[(index * 7) % len(PROMPT_WORDS)] for index in range(config.prompt_words)
    )
    endings = _endings()
    hits_name, misses_name = (
        "weightbase_serve_kv_prefix_hits_total",
        "weightbase_serve_kv_prefix_misses_total",
    )
    sides = {"reuse": plain, "no_reuse": no_kv}
    clients = {name: httpx.Client(base_url=s.url, timeout=120.0) for name, s in sides.items()}

    def complete(name: str, prompt: str) -> float:
        body = {
            "model": GPT2,
            "prompt": prompt,
            "max_tokens": config.completion_tokens,
            "temperature": 0,
        }
        begun = time.perf_counter()
        clients[name].post("/v1/completions", json=body).raise_for_status()
        return time.perf_counter() - begun

    p50s: dict[str, list[float]] = {name: [] for name in sides}
    hit_rates: list[float] = []
    try:
        for name in sides:  # untimed: loads the model, and the prefix is seen once
            for _ in range(3):
                complete(name, f"{system} {next(endings)}")
        names = list(sides)
        for round_index in range(config.rounds):
            before = (counter(plain.url, hits_name, GPT2), counter(plain.url, misses_name, GPT2))
            if None in before:
                raise RuntimeError(f"/metrics has no {hits_name} / {misses_name} for {GPT2}")
            samples: dict[str, list[float]] = {name: [] for name in names}
            gc.collect()
            for index in range(config.prompt_samples):
                shift = (index + round_index) % len(names)
                prompt = f"{system} {next(endings)}"
                for name in names[shift:] + names[:shift]:
                    samples[name].append(complete(name, prompt))
            hits = (counter(plain.url, hits_name, GPT2) or 0.0) - (before[0] or 0.0)
            misses = (counter(plain.url, misses_name, GPT2) or 0.0) - (before[1] or 0.0)
            hit_rates.append(hits / (hits + misses) if hits + misses else 0.0)
            for name in names:
                p50s[name].append(p50_ms(samples[name]))
            log(
                f"  round {round_index + 1}/{config.rounds}: p50 with reuse "
                f"{p50s['reuse'][-1]:.1f} ms, without {p50s['no_reuse'][-1]:.1f} ms, hit rate "
                f"{hit_rates[-1]:.2f}"
            )
    finally:
        for client in clients.values():
            client.close()
    row = {
        "samples_per_round": config.prompt_samples,
        "system_prompt_words": config.prompt_words,
        "completion_tokens": config.completion_tokens,
        "p50_ms": p50s,
    }
    speedup = Figure(tuple(o / r for r, o in zip(p50s["reuse"], p50s["no_reuse"], strict=True)))
    return {
        "kv_prefix_hit_rate": (Figure(tuple(hit_rates)), row),
        "kv_prefix_speedup": (speedup, row),
    }


def _endings() -> Iterator[str]:
    """Three-word endings, no two the same."""
    words = len(PROMPT_WORDS)
    for index in itertools.count(1):
        yield " ".join(PROMPT_WORDS[(index // words**power) % words] for power in range(3))


# -- helpers -------------------------------------------------------------------------------


def _server(entry: ServerProcess | str) -> ServerProcess:
    assert isinstance(entry, ServerProcess), entry
    return entry


def _warm(server: ServerProcess, *models: str) -> None:
    """Load each model with a few untimed requests (models load on their first request)."""
    with httpx.Client(base_url=server.url, timeout=300.0) as client:
        for model in models:
            for index in range(_WARMUP_REQUESTS):
                if model == MLP:
                    response = client.post(
                        f"/v2/models/{MLP}/infer", json=_oip_body(_rows(index, 1)[0])
                    )
                else:
                    body = {
                        "model": model,
                        "input": f"warm up {index}",
                        "encoding_format": "base64",
                    }
                    response = client.post("/v1/embeddings", json=body)
                response.raise_for_status()


def _rows(seed: int, count: int) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    rows: np.ndarray[Any, Any] = rng.standard_normal((count, MLP_ARGS["inputs"]), dtype=np.float32)
    return rows


def _forward(mlp: torch.nn.Module, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    import torch

    with torch.inference_mode():
        out: np.ndarray[Any, Any] = mlp(torch.from_numpy(rows)).numpy()
    return out


def _oip_body(row: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {
        "inputs": [{"name": "x", "shape": [1, len(row)], "datatype": "FP32", "data": row.tolist()}]
    }


def _quiet_mlflow() -> None:
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("mlflow").setLevel(logging.ERROR)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
