"""What the inference server counts between two writes to the catalog.

The engine tells a :class:`Telemetry` each request's latency and status, each
operation with its sampling parameters, generated tokens and cache lookups;
``drain()`` hands back one :class:`~weightbase.serving.inference_records.InferenceWindow`
per model that had requests since the last drain, and the sessions those requests
touched, and starts a new window. Counting is thread-safe: batches run in worker
threads while requests arrive on the event loop.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from weightbase.serving.inference_records import InferenceSession, InferenceWindow
from weightbase.serving.runnable_outputs import GenerationParams

__all__ = ["ServedVersion", "Telemetry"]

# latencies kept per model and window; past it a uniform sample of them (reservoir)
_LATENCY_SAMPLES = 50_000


@dataclass(frozen=True, slots=True)
class ServedVersion:
    """Which version a served name answered with, and the deployment it serves."""

    model: str
    version: str
    memory_bytes: int = 0
    deployment_id: str | None = None
    environment: str | None = None


@dataclass(slots=True)
class _Window:
    latencies: list[float] = field(default_factory=list)
    seen: int = 0
    requests: int = 0
    errors: int = 0
    tokens: int = 0
    token_seconds: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0
    kv_hits: int = 0
    kv_misses: int = 0

    def latency(self, seconds: float) -> None:
        self.seen += 1
        if len(self.latencies) < _LATENCY_SAMPLES:
            self.latencies.append(seconds)
        else:
            slot = random.randrange(self.seen)
            if slot < _LATENCY_SAMPLES:
                self.latencies[slot] = seconds


@dataclass(slots=True)
class _Session:
    id: str
    version: ServedVersion
    operation: str
    params: GenerationParams | None
    started: datetime
    last: datetime
    requests: int = 0
    tokens: int = 0


class Telemetry:
    """Counts per served model for the current window, and the sessions seen so far.

    ``server_id`` names this server process in every record (a random one by default).
    """

    def __init__(
        self, server_id: str | None = None, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.server_id = server_id or uuid.uuid4().hex
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._started = self._clock()
        self._windows: dict[str, _Window] = {}
        self._versions: dict[str, ServedVersion] = {}
        self._sessions: dict[tuple[str, str, str, str], _Session] = {}
        self._touched: set[tuple[str, str, str, str]] = set()

    def _window(self, name: str) -> _Window:
        window = self._windows.get(name)
        if window is None:
            window = self._windows[name] = _Window()
        return window

    def served(self, name: str, version: ServedVersion) -> None:
        """``name`` answers with ``version`` from now on (after a load)."""
        with self._lock:
            self._versions[name] = version

    def request(self, name: str, status: int, seconds: float) -> None:
        """An answered request: its status and latency."""
        with self._lock:
            window = self._window(name)
            window.requests += 1
            window.latency(seconds)
            if status >= 500 or status == 429:
                window.errors += 1

    def operation(
        self, name: str, operation: str, params: GenerationParams | None, tokens: int = 0
    ) -> None:
        """A request for ``operation`` with ``params`` (its session counts it)."""
        with self._lock:
            version = self._versions.get(name)
            if version is None:
                return  # not loaded: nothing was answered
            params_key = "" if params is None else json.dumps(params.to_dict(), sort_keys=True)
            key = (name, version.version, operation, params_key)
            now = self._clock()
            found = self._sessions.get(key)
            if found is None:
                found = self._sessions[key] = _Session(
                    uuid.uuid4().hex, version, operation, params, now, now
                )
            found.requests += 1
            found.tokens += tokens
            found.last = now
            self._touched.add(key)

    def tokens(self, name: str, count: int, seconds: float) -> None:
        """``count`` tokens generated in ``seconds``."""
        with self._lock:
            window = self._window(name)
            window.tokens += count
            window.token_seconds += seconds

    def cache(self, name: str, hit: bool) -> None:
        with self._lock:
            window = self._window(name)
            if hit:
                window.cache_hits += 1
            else:
                window.cache_misses += 1

    def kv_prefix(self, name: str, hit: bool) -> None:
        with self._lock:
            window = self._window(name)
            if hit:
                window.kv_hits += 1
            else:
                window.kv_misses += 1

    def drain(
        self, memory: Mapping[str, int] | None = None
    ) -> tuple[list[InferenceWindow], list[InferenceSession]]:
        """The windows since the last drain (models with requests and a known version)
        and the sessions touched since then; ``memory`` is each model's bytes now."""
        with self._lock:
            started, ended = self._started, self._clock()
            windows, self._windows = self._windows, {}
            touched, self._touched = self._touched, set()
            self._started = ended
            versions = dict(self._versions)
            sessions = [
                self._session_record(key[0], self._sessions[key]) for key in sorted(touched)
            ]
        seconds = max((ended - started).total_seconds(), 1e-9)
        out: list[InferenceWindow] = []
        for name, window in sorted(windows.items()):
            version = versions.get(name)
            if version is None or window.requests == 0:
                continue
            p50, p95, p99 = (float(v) * 1000 for v in np.percentile(window.latencies, [50, 95, 99]))
            out.append(
                InferenceWindow(
                    model=version.model,
                    version=version.version,
                    served_as=name,
                    server_id=self.server_id,
                    started=started,
                    ended=ended,
                    requests=window.requests,
                    errors=window.errors,
                    latency_p50_ms=p50,
                    latency_p95_ms=p95,
                    latency_p99_ms=p99,
                    throughput_rps=window.requests / seconds,
                    tokens=window.tokens,
                    tokens_per_s=(
                        window.tokens / window.token_seconds if window.token_seconds > 0 else None
                    ),
                    memory_bytes=(memory or {}).get(name, version.memory_bytes),
                    cache_hits=window.cache_hits,
                    cache_misses=window.cache_misses,
                    kv_prefix_hits=window.kv_hits,
                    kv_prefix_misses=window.kv_misses,
                    deployment_id=version.deployment_id,
                    environment=version.environment,
                )
            )
        return out, sessions

    def _session_record(self, name: str, session: _Session) -> InferenceSession:
        version = session.version
        return InferenceSession(
            id=session.id,
            model=version.model,
            version=version.version,
            served_as=name,
            server_id=self.server_id,
            operation=session.operation,
            started=session.started,
            last_request=session.last,
            requests=session.requests,
            tokens=session.tokens,
            params=session.params,
            deployment_id=version.deployment_id,
            environment=version.environment,
        )
