"""``python -m benchmarks server``: ``weightbase server`` against embedded calls and MLflow's.

Six measurements on loopback, each against an anchor measured in the same run,
the timed ones in interleaved rounds (the range over rounds is reported):

1. API overhead: p50 of a GET of one model version over HTTP minus the p50 of
   the same embedded call, ``wb.models.version(...)``, on the server's catalog;
2. remote logging: metric points/s from a client through ``weightbase server``
   (``POST /api/v1/runs/{id}/metrics``, 1,000 points a request, and a remote
   ``run.log`` where there is one) and through ``mlflow server``
   (``MlflowClient.log_batch``, 1,000 points a request);
3. push bytes: request body bytes of pushing a version that shares 90% of its
   chunks with one already on the server, ÷ its raw size;
4. push time: the all-MiniLM-L6-v2 folder to a fresh ``weightbase server``
   (``wb.models.push``) and to ``mlflow server --serve-artifacts`` (``log_artifacts``)
   (3 and 4 in ``benchmarks.server_push``);
5. 200 clients logging at once (``benchmarks.server_load``);
6. schemathesis over every operation of the OpenAPI document (``benchmarks.server_load``).
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import statistics
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from importlib import metadata
from typing import Any

import httpx
import numpy as np

from benchmarks.server_load import concurrent_clients, fuzz
from benchmarks.server_processes import (
    ServerProcess,
    Tokens,
    journal_mode,
    mlflow_server,
    open_home,
    settle,
    weightbase_server,
)
from benchmarks.server_push import SHARED_FRACTION, push_bytes, push_minilm
from benchmarks.server_results import (
    LOG_BATCH_POINTS,
    METRICS_PER_STEP,
    Rounds,
    ServerConfig,
    ServerResults,
)

__all__ = ["ServerConfig", "ServerResults", "run_server"]

Log = Callable[[str], None]

OVERHEAD_MODEL = "bench-overhead"
_WARMUP_CALLS = 20
_PACKAGES = (
    "mlflow",
    "schemathesis",
    "httpx",
    "fastapi",
    "uvicorn",
    "httptools",
    "uvloop",
    "sqlalchemy",
)


def run_server(config: ServerConfig, log: Log) -> ServerResults:
    mlflow = _quiet_mlflow()
    home = config.workdir / "weightbase"
    with ExitStack() as stack:
        log("starting weightbase server and mlflow server (one worker each, SQLite)")
        server, tokens = stack.enter_context(weightbase_server(home, log))
        anchor = stack.enter_context(mlflow_server(config.workdir / "mlflow", log))
        embedded = stack.enter_context(open_home(home))
        mlflow.set_tracking_uri(anchor.url)  # log_artifacts resolves mlflow-artifacts:/ by it
        settle([server, anchor], log)

        log("[1/6] API overhead: GET one model version over HTTP vs embedded")
        overhead, overhead_detail = _api_overhead(config, server, tokens, embedded, log)

        log(f"[2/6] remote logging, {LOG_BATCH_POINTS:,} points a request: weightbase vs MLflow")
        log_speedup, log_detail = _remote_logging(config, server, tokens, embedded, anchor, log)

        log(f"[3/6] push bytes of a version sharing {SHARED_FRACTION:.0%} of its chunks")
        bytes_fraction, bytes_detail = push_bytes(config, server, tokens, log)

        log("[4/6] push all-MiniLM-L6-v2: weightbase remote push vs MLflow log_artifacts")
        push_speedup, push_detail = push_minilm(config, anchor, log)

        log(f"[5/6] {config.clients} clients logging at once for {config.client_seconds:g} s")
        concurrent = concurrent_clients(config, server, tokens, embedded, log)

        log("[6/6] schemathesis over every operation, admin token")
        fuzzed = fuzz(config, server, tokens, log)

        durability = {
            "weightbase_catalog_journal": journal_mode(home / "catalog.db"),
            "mlflow_journal": journal_mode(config.workdir / "mlflow" / "mlflow.db"),
        }
    return ServerResults(
        config=config,
        overhead=overhead,
        overhead_detail=overhead_detail,
        log_speedup=log_speedup,
        log_detail=log_detail,
        bytes_fraction=bytes_fraction,
        bytes_detail=bytes_detail,
        push_speedup=push_speedup,
        push_detail=push_detail,
        concurrent=concurrent,
        fuzz=fuzzed,
        versions={name: _version(name) for name in _PACKAGES},
        extra={"sqlite": durability},
    )


# -- 1. API overhead -----------------------------------------------------------------------


def _api_overhead(
    config: ServerConfig, server: ServerProcess, tokens: Tokens, embedded: Any, log: Log
) -> tuple[Rounds, dict[str, Any]]:
    import weightbase

    rng = np.random.default_rng(config.seed)
    weights = {
        f"layers.{index}.weight": rng.standard_normal((64, 64)).astype(np.float32)
        for index in range(4)
    }
    with (
        weightbase.open(server.url, token=tokens.editor) as remote,
        httpx.Client(base_url=server.url, headers=_bearer(tokens.editor)) as client,
    ):
        pushed = remote.models.push(
            OVERHEAD_MODEL, weights, metrics={"accuracy": 0.9}, tags=["bench"]
        )
        path = f"/api/v1/models/{OVERHEAD_MODEL}/-/versions/{pushed.version}"

        def over_http() -> Any:
            response = client.get(path)
            response.raise_for_status()
            return response.json()

        calls: dict[str, Callable[[], Any]] = {
            "embedded": lambda: embedded.models.version(OVERHEAD_MODEL, pushed.version),
            "http": over_http,
            "remote": lambda: remote.models.version(OVERHEAD_MODEL, pushed.version),
        }
        answers = {name: call() for name, call in calls.items()}
        snapshots = {
            answers["embedded"].snapshot_id,
            answers["http"]["snapshot_id"],
            answers["remote"].snapshot_id,
        }
        assert snapshots == {pushed.snapshot_id}, f"the three calls disagree: {snapshots}"
        for _ in range(_WARMUP_CALLS):
            for call in calls.values():
                call()
        names = list(calls)
        p50s: dict[str, list[float]] = {name: [] for name in names}
        for round_index in range(config.rounds):
            samples: dict[str, list[float]] = {name: [] for name in names}
            gc.collect()
            for index in range(config.overhead_samples):
                shift = (index + round_index) % len(names)  # rotate which call goes first
                for name in names[shift:] + names[:shift]:
                    started = time.perf_counter()
                    calls[name]()
                    samples[name].append(time.perf_counter() - started)
            for name in names:
                p50s[name].append(statistics.median(samples[name]) * 1e3)
            log(
                f"  round {round_index + 1}/{config.rounds}: p50 embedded "
                f"{p50s['embedded'][-1]:.2f} ms, HTTP GET {p50s['http'][-1]:.2f} ms, "
                f"remote wb.models.version {p50s['remote'][-1]:.2f} ms"
            )
    overhead = Rounds(tuple(h - e for h, e in zip(p50s["http"], p50s["embedded"], strict=True)))
    remote_overhead = [r - e for r, e in zip(p50s["remote"], p50s["embedded"], strict=True)]
    return overhead, {
        "samples_per_round": config.overhead_samples,
        "p50_ms": p50s,
        "remote_overhead_p50_ms": remote_overhead,
        "path": path,
    }


# -- 2. remote logging ---------------------------------------------------------------------


def _remote_logging(
    config: ServerConfig,
    server: ServerProcess,
    tokens: Tokens,
    embedded: Any,
    anchor: ServerProcess,
    log: Log,
) -> tuple[Rounds, dict[str, Any]]:
    """Points/s through each server, rounds interleaved; the ratio is per round.

    weightbase is measured through ``POST /api/v1/runs/{id}/metrics`` batches of
    the size MLflow gets and, where this weightbase has a remote ``wb.runs``,
    through a remote run handle's ``run.log`` too, which is then the headline.
    """
    from mlflow.tracking import MlflowClient

    import weightbase

    names = [f"train/metric_{index}" for index in range(METRICS_PER_STEP)]
    mlflow_client = MlflowClient(tracking_uri=anchor.url)
    experiment_id = str(mlflow_client.create_experiment("bench-remote-logging"))
    with (
        httpx.Client(base_url=server.url, headers=_bearer(tokens.editor), timeout=120.0) as client,
        weightbase.open(server.url, token=tokens.editor) as remote,
    ):
        runs = _remote_runs(remote)
        sides: dict[str, Callable[[np.random.Generator, ServerConfig], tuple[int, float]]] = {
            "weightbase_http": lambda rng, cfg: _log_http(client, embedded, names, rng, cfg),
            "mlflow": lambda rng, cfg: _log_mlflow(mlflow_client, experiment_id, names, rng, cfg),
        }
        if runs is not None:
            sides["weightbase_run_log"] = lambda rng, cfg: _log_run(runs, embedded, names, rng, cfg)
        # untimed: the first requests of either server pay for imports and caches
        warmup = replace(config, log_points=LOG_BATCH_POINTS, mlflow_log_points=LOG_BATCH_POINTS)
        for side in sides.values():
            side(np.random.default_rng(0), warmup)
        rates: dict[str, list[float]] = {name: [] for name in sides}
        seconds: dict[str, list[float]] = {name: [] for name in sides}
        order = list(sides)
        for round_index in range(config.rounds):
            rng = np.random.default_rng(config.seed + round_index)
            shift = round_index % len(order)  # rotate which goes first
            for name in order[shift:] + order[:shift]:
                points, took = sides[name](rng, config)
                rates[name].append(points / took)
                seconds[name].append(took)
            log(
                f"  round {round_index + 1}/{config.rounds}: "
                + ", ".join(f"{name} {rates[name][-1]:,.0f} points/s" for name in order)
            )
    headline = "weightbase_run_log" if runs is not None else "weightbase_http"
    speedup = Rounds(tuple(w / m for w, m in zip(rates[headline], rates["mlflow"], strict=True)))
    http_speedup = [w / m for w, m in zip(rates["weightbase_http"], rates["mlflow"], strict=True)]
    return speedup, {
        "headline": headline,
        "points_per_request": LOG_BATCH_POINTS,
        "metrics_per_step": METRICS_PER_STEP,
        "weightbase_points_per_round": _whole_batches(config.log_points),
        "mlflow_points_per_round": _whole_batches(config.mlflow_log_points),
        "points_per_s": rates,
        "seconds": seconds,
        "http_batches_speedup": http_speedup,
    }


def _remote_runs(remote: Any) -> Any | None:
    """The remote workspace's ``wb.runs``, or None in a weightbase that has none yet."""
    try:
        return remote.runs
    except ImportError:
        return None


def _whole_batches(points: int) -> int:
    return max(1, points // LOG_BATCH_POINTS) * LOG_BATCH_POINTS


def _log_http(
    client: httpx.Client,
    embedded: Any,
    names: list[str],
    rng: np.random.Generator,
    config: ServerConfig,
) -> tuple[int, float]:
    """Points sent in 1,000-point batches and the seconds they took; all checked as stored."""
    steps = _whole_batches(config.log_points) // METRICS_PER_STEP
    values = rng.random((steps, METRICS_PER_STEP)).tolist()
    run = client.post("/api/v1/runs", json={"experiment": "bench-remote-logging"})
    run.raise_for_status()
    run_id = run.json()["id"]
    per_request = LOG_BATCH_POINTS // METRICS_PER_STEP
    gc.collect()
    started = time.perf_counter()
    for first in range(0, steps, per_request):
        now = time.time()
        points = [
            {"name": name, "value": value, "step": step, "time": now}
            for step in range(first, min(first + per_request, steps))
            for name, value in zip(names, values[step], strict=True)
        ]
        response = client.post(f"/api/v1/runs/{run_id}/metrics", json={"points": points})
        response.raise_for_status()
    took = time.perf_counter() - started
    client.put(f"/api/v1/runs/{run_id}/status", json={"status": "completed"}).raise_for_status()
    _check_stored(embedded, run_id, names, values)
    return steps * METRICS_PER_STEP, took


def _log_run(
    runs: Any, embedded: Any, names: list[str], rng: np.random.Generator, config: ServerConfig
) -> tuple[int, float]:
    """Points logged through a run handle's ``run.log``, final flush included; all checked."""
    steps = _whole_batches(config.log_points) // METRICS_PER_STEP
    values = rng.random((steps, METRICS_PER_STEP)).tolist()
    with runs.start("bench-remote-logging") as run:
        gc.collect()
        started = time.perf_counter()
        for step in range(steps):
            run.log(dict(zip(names, values[step], strict=True)), step=step)
        run.flush()
        took = time.perf_counter() - started
    _check_stored(embedded, run.id, names, values)
    return steps * METRICS_PER_STEP, took


def _check_stored(embedded: Any, run_id: int, names: list[str], values: list[list[float]]) -> None:
    for column, name in enumerate(names):
        history = embedded.runs.history(run_id, name)
        expected = [row[column] for row in values]
        assert history.values.tolist() == expected, f"run {run_id} lost points of {name}"


def _log_mlflow(
    client: Any,
    experiment_id: str,
    names: list[str],
    rng: np.random.Generator,
    config: ServerConfig,
) -> tuple[int, float]:
    from mlflow.entities import Metric

    steps = _whole_batches(config.mlflow_log_points) // METRICS_PER_STEP
    values = rng.random((steps, METRICS_PER_STEP)).tolist()
    run_id = client.create_run(experiment_id).info.run_id
    per_request = LOG_BATCH_POINTS // METRICS_PER_STEP
    gc.collect()
    started = time.perf_counter()
    for first in range(0, steps, per_request):
        now = int(time.time() * 1000)
        batch = [
            Metric(name, value, now, step)
            for step in range(first, min(first + per_request, steps))
            for name, value in zip(names, values[step], strict=True)
        ]
        client.log_batch(run_id, metrics=batch)
    took = time.perf_counter() - started
    client.set_terminated(run_id)
    return steps * METRICS_PER_STEP, took


# -- helpers -------------------------------------------------------------------------------


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _quiet_mlflow() -> Any:
    # MLflow's client warns about its own deprecations; that is not what is measured
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # its client prints a "View run" line to stdout, where the JSON goes
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    return importlib.import_module("mlflow")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
