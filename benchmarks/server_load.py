"""The server under load and under a fuzzer, for ``python -m benchmarks server``.

``concurrent_clients``: many clients (threads of this process, an httpx client
and a run each) post metric batches at once for a fixed time; afterwards every
point sent is looked for in the catalog. ``fuzz``: schemathesis, as a
subprocess, over every operation of ``/api/v1/openapi.json``; its HAR report
gives every response, and those with status ≥ 500 are counted.
"""

from __future__ import annotations

import contextlib
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from benchmarks.server_results import ConcurrentResult, FuzzResult

if TYPE_CHECKING:
    from benchmarks.server_processes import ServerProcess, Tokens
    from benchmarks.server_results import ServerConfig

__all__ = ["TOKEN_ENDING_OPERATIONS", "concurrent_clients", "fuzz"]

Log = Callable[[str], None]

#: Operations that can revoke the fuzzer's own token or take away its role; they are
#: fuzzed in a second pass, after every other operation, so that those keep a valid admin.
TOKEN_ENDING_OPERATIONS = r"^/api/v1/(tokens/[^/]+|users/[^/]+/(disable|role))$"
_CLIENT_TIMEOUT_S = 120.0
#: Seconds the clients may take to be ready to start together.
_START_TIMEOUT_S = 300.0
_FUZZ_TIMEOUT_S = 3600.0
_KEPT_SAMPLES = 20
_5XX_LINE = re.compile(r'^weightbase_http_requests_total\{[^}]*status="5\d\d"[^}]*\}\s+(\S+)$')


# -- concurrent clients --------------------------------------------------------------------


@dataclass
class _LoadClient:
    """One client: its run, the steps it has sent, and how its requests went."""

    index: int
    run_id: int
    names: list[str]
    batch_steps: int
    next_step: int = 0
    requests: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    client_errors: int = 0
    finished: float = 0.0
    failure: BaseException | None = None
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def value(self, step: int, metric: int) -> float:
        """The value sent for ``step`` of metric ``metric``: recomputed when checking."""
        return float(step * len(self.names) + metric) + self.index / 1000

    def expected(self, metric: int) -> np.ndarray[Any, np.dtype[np.float64]]:
        steps = np.arange(self.next_step, dtype=np.float64)
        values: np.ndarray[Any, np.dtype[np.float64]] = steps * len(self.names) + metric
        return values + self.index / 1000

    def run(self, url: str, token: str, barrier: threading.Barrier, seconds: float) -> None:
        try:
            self._log_until(url, token, barrier, seconds)
        except BaseException as exc:  # handed to the main thread, which raises it
            self.failure = exc
            barrier.abort()
        finally:
            self.finished = time.monotonic()

    def _log_until(self, url: str, token: str, barrier: threading.Barrier, seconds: float) -> None:
        path = f"/api/v1/runs/{self.run_id}/metrics"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=_CLIENT_TIMEOUT_S) as client:
            barrier.wait(timeout=_START_TIMEOUT_S)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                first = self.next_step
                self.next_step += self.batch_steps
                points = [
                    {"name": name, "value": self.value(step, metric), "step": step}
                    for step in range(first, self.next_step)
                    for metric, name in enumerate(self.names)
                ]
                self.requests += 1
                started = time.perf_counter()
                try:
                    response = client.post(path, json={"points": points})
                except httpx.TransportError as exc:
                    self.transport_errors += 1
                    self._note(f"client {self.index}: no answer ({type(exc).__name__}: {exc})")
                    continue
                self.latencies.append(time.perf_counter() - started)
                if response.status_code >= 500:
                    self.server_errors += 1
                    request_id = response.headers.get("x-request-id", "?")
                    self._note(f"client {self.index}: HTTP {response.status_code} ({request_id})")
                elif response.status_code >= 400:
                    self.client_errors += 1
                    self._note(f"client {self.index}: HTTP {response.status_code} {response.text}")

    def _note(self, text: str) -> None:
        if len(self.errors) < _KEPT_SAMPLES:
            self.errors.append(text[:300])


def concurrent_clients(
    config: ServerConfig, server: ServerProcess, tokens: Tokens, embedded: Any, log: Log
) -> ConcurrentResult:
    """``config.clients`` clients log for ``config.client_seconds``; then every point is checked."""
    names = [f"load/metric_{index}" for index in range(config.client_metrics)]
    before = _server_5xx(server)
    headers = {"Authorization": f"Bearer {tokens.editor}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=_CLIENT_TIMEOUT_S) as setup:
        clients = []
        for index in range(config.clients):
            made = setup.post(
                "/api/v1/runs", json={"experiment": "bench-load", "name": f"client-{index}"}
            )
            made.raise_for_status()
            clients.append(_LoadClient(index, made.json()["id"], names, config.client_batch_steps))
    barrier = threading.Barrier(config.clients + 1)
    threads = [
        threading.Thread(
            target=client.run,
            args=(server.url, tokens.editor, barrier, config.client_seconds),
            name=f"bench-client-{client.index}",
        )
        for client in clients
    ]
    for thread in threads:
        thread.start()
    # broken when a client fails to start: its failure is raised below
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=_START_TIMEOUT_S)
    started = time.monotonic()
    for thread in threads:
        thread.join()
    failures = [client.failure for client in clients if client.failure is not None]
    if failures:
        raise RuntimeError(f"{len(failures)} load clients failed") from failures[0]
    seconds = max(client.finished for client in clients) - started
    log(f"  clients done in {seconds:.1f} s; checking every point sent")

    sent = stored = unexpected = 0
    for client in clients:
        for metric, name in enumerate(names):
            sent += client.next_step
            found, extra = _matching_points(embedded, client, metric, name)
            stored += found
            unexpected += extra
    latencies = [value for client in clients for value in client.latencies] or [0.0]
    errors = tuple(text for client in clients for text in client.errors)[:_KEPT_SAMPLES]
    result = ConcurrentResult(
        clients=config.clients,
        seconds=seconds,
        requests=sum(client.requests for client in clients),
        points_sent=sent,
        points_stored=stored,
        points_lost=sent - stored,
        points_unexpected=unexpected,
        server_errors=sum(client.server_errors + client.transport_errors for client in clients),
        transport_errors=sum(client.transport_errors for client in clients),
        client_errors=sum(client.client_errors for client in clients),
        server_5xx_counted_by_server=_server_5xx(server) - before,
        latency_p50_ms=statistics.median(latencies) * 1e3,
        latency_p99_ms=float(np.quantile(latencies, 0.99)) * 1e3,
        error_samples=errors,
    )
    log(
        f"  {result.points_stored:,} of {result.points_sent:,} points stored "
        f"({result.points_per_s:,.0f} points/s), {result.server_errors} server errors, "
        f"request p50 {result.latency_p50_ms:.1f} ms, p99 {result.latency_p99_ms:.1f} ms"
    )
    return result


def _matching_points(embedded: Any, client: _LoadClient, metric: int, name: str) -> tuple[int, int]:
    """How many of the points ``client`` sent of ``name`` are stored as sent; how many else."""
    from weightbase.errors import NotFound

    if client.next_step == 0:
        return 0, 0
    try:
        history = embedded.runs.history(client.run_id, name)
    except NotFound:  # not one batch of the run was stored
        return 0, 0
    steps = history.steps
    expected = client.expected(metric)
    inside = (steps >= 0) & (steps < client.next_step)
    matches = np.zeros(len(steps), dtype=bool)
    matches[inside] = history.values[inside] == expected[steps[inside]]
    found = int(np.unique(steps[matches]).size)
    return found, len(steps) - found


def _server_5xx(server: ServerProcess) -> int:
    """Responses with status ≥ 500 the server has counted (its Prometheus ``/metrics``)."""
    text = httpx.get(f"{server.url}/metrics", timeout=30.0).text
    return int(sum(float(m[1]) for line in text.splitlines() if (m := _5XX_LINE.match(line))))


# -- schemathesis --------------------------------------------------------------------------


def fuzz(config: ServerConfig, server: ServerProcess, tokens: Tokens, log: Log) -> FuzzResult:
    """schemathesis over every operation, with an admin token; responses by status."""
    from importlib import metadata

    document = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=30.0).json()
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    operations = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in methods
    ]
    folder = config.workdir / "schemathesis"
    folder.mkdir(parents=True, exist_ok=True)
    statuses: Counter[int] = Counter()
    failing: list[str] = []
    passes: list[dict[str, Any]] = []
    templates = [(method, path, _template(path)) for method, path in operations]
    for label, selection in (
        ("every operation but those that can end the token", "--exclude-path-regex"),
        ("the operations that can end the token", "--include-path-regex"),
    ):
        index = len(passes) + 1
        har = folder / f"pass-{index}.har"
        argv = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{server.url}/api/v1/openapi.json",
            "--url",
            server.url,
            "--header",
            f"Authorization: Bearer {tokens.admin}",
            "--max-examples",
            str(config.fuzz_examples),
            "--phases",
            config.fuzz_phases,
            "--checks",
            "not_a_server_error",
            "--workers",
            "1",
            "--seed",
            str(config.seed),
            "--no-shrink",  # shrinking re-sends failing cases, which would count them again
            "--request-timeout",
            "60",
            "--report",
            "har",
            "--report-har-path",
            str(har),
            selection,
            TOKEN_ENDING_OPERATIONS,
        ]
        started = time.perf_counter()
        done = subprocess.run(
            argv,
            cwd=folder,  # where Hypothesis keeps its example database
            capture_output=True,
            text=True,
            timeout=_FUZZ_TIMEOUT_S,
            check=False,
        )
        took = time.perf_counter() - started
        (folder / f"pass-{index}.log").write_text(done.stdout + done.stderr)
        if done.returncode not in (0, 1) or not har.exists():  # 1: it found failures
            output = (done.stdout + done.stderr)[-3000:]
            raise RuntimeError(f"schemathesis exited with {done.returncode}:\n{output}")
        entries = json.loads(har.read_text())["log"]["entries"]
        counts = Counter(int(entry["response"]["status"]) for entry in entries)
        statuses.update(counts)
        for entry in entries:
            if int(entry["response"]["status"]) >= 500:
                failing.append(_describe(entry, templates))
        tested = re.search(r"Tested:\s+(\d+)", done.stdout)
        passes.append(
            {
                "pass": label,
                "operations_tested": int(tested[1]) if tested else None,
                "responses": sum(counts.values()),
                "server_errors": sum(n for status, n in counts.items() if status >= 500),
                "seconds": round(took, 1),
            }
        )
        log(
            f"  pass {index} ({label}): {sum(counts.values()):,} responses, "
            f"{passes[-1]['server_errors']} with status >= 500, {took:.0f} s"
        )
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    distinct = sorted(Counter(failing).items(), key=lambda item: -item[1])
    return FuzzResult(
        operations=len(operations),
        responses=sum(statuses.values()),
        statuses={str(status): statuses[status] for status in sorted(statuses)},
        server_errors=server_errors,
        failing=tuple(f"{text} ({count}x)" for text, count in distinct[:_KEPT_SAMPLES]),
        schemathesis_version=metadata.version("schemathesis"),
        passes=tuple(passes),
    )


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")


def _describe(entry: dict[str, Any], templates: list[tuple[str, str, re.Pattern[str]]]) -> str:
    """``METHOD /path/{template} -> status``, for a HAR entry."""
    method = str(entry["request"]["method"]).upper()
    path = urlsplit(str(entry["request"]["url"])).path
    status = entry["response"]["status"]
    for wanted, template, pattern in templates:
        if wanted == method and pattern.match(path):
            return f"{method} {template} -> {status}"
    return f"{method} {path[:100]} -> {status}"
