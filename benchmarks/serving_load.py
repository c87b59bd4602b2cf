"""Client load for ``python -m benchmarks serving``: closed loops of concurrent clients.

Clients are asyncio tasks of one event loop in the benchmark process, sharing one
httpx ``AsyncClient`` with a kept-alive connection each: every client sends its next
request as soon as the last is answered, for a fixed time (``closed_loop``) or until
a fixed list of requests is done (``drain``).
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["LoadResult", "closed_loop", "distinct_sentences", "drain", "p50_ms"]

_TIMEOUT_S = 120.0
_KEPT_ERRORS = 5

_WORDS = (
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "weights",
    "load",
    "from",
    "the",
    "store",
    "and",
    "every",
    "tensor",
    "is",
    "hashed",
    "once",
    "before",
    "the",
    "server",
    "answers",
    "many",
    "clients",
    "at",
    "the",
    "same",
    "time",
    "with",
    "embeddings",
    "of",
    "short",
    "sentences",
    "that",
    "differ",
    "in",
    "a",
    "few",
    "words",
    "each",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load run did: answered requests (and the inputs they held), in how long."""

    requests: int
    inputs: int
    seconds: float
    errors: int
    error_samples: tuple[str, ...] = ()

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def inputs_per_s(self) -> float:
        return self.inputs / self.seconds

    def check(self, what: str) -> None:
        if self.errors or not self.requests:
            raise RuntimeError(
                f"{what}: {self.errors} failed requests of {self.requests + self.errors}: "
                + "; ".join(self.error_samples)
            )


def distinct_sentences(seed: int) -> Iterator[str]:
    """Sentences of 12 words, no two the same (each ends with its own number)."""
    for index in itertools.count():
        words = [_WORDS[(seed * 7919 + index * 31 + step * 17) % len(_WORDS)] for step in range(11)]
        yield " ".join(words) + f" {seed}-{index}."


def p50_ms(seconds: Sequence[float]) -> float:
    return float(statistics.median(seconds)) * 1e3


def closed_loop(
    url: str,
    path: str,
    body: Callable[[], dict[str, Any]],
    *,
    clients: int,
    seconds: float,
    inputs_per_request: int = 1,
) -> LoadResult:
    """``clients`` clients post ``body()`` to ``path`` back to back for ``seconds``."""
    return asyncio.run(_closed_loop(url, path, body, clients, seconds, inputs_per_request))


def drain(
    url: str, path: str, bodies: Sequence[dict[str, Any]], *, clients: int, inputs: int
) -> LoadResult:
    """``clients`` clients post every one of ``bodies`` (``inputs`` inputs in all); timed
    from the first request sent to the last answer."""
    return asyncio.run(_drain(url, path, list(bodies), clients, inputs))


class _Tally:
    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.samples: list[str] = []

    async def post(self, client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> bool:
        try:
            response = await client.post(path, json=body)
        except httpx.TransportError as exc:
            self._fail(f"no answer ({type(exc).__name__}: {exc})")
            return False
        if response.status_code != 200:
            self._fail(f"HTTP {response.status_code} {response.text[:200]}")
            return False
        self.requests += 1
        return True

    def _fail(self, text: str) -> None:
        self.errors += 1
        if len(self.samples) < _KEPT_ERRORS:
            self.samples.append(text)


def _client(url: str, clients: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    return httpx.AsyncClient(base_url=url, timeout=_TIMEOUT_S, limits=limits)


async def _closed_loop(
    url: str,
    path: str,
    body: Callable[[], dict[str, Any]],
    clients: int,
    seconds: float,
    inputs_per_request: int,
) -> LoadResult:
    tally = _Tally()
    async with _client(url, clients) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def one_client() -> None:
            while time.perf_counter() < deadline:
                await tally.post(client, path, body())

        await asyncio.gather(*(one_client() for _ in range(clients)))
        took = time.perf_counter() - started
    return LoadResult(
        tally.requests,
        tally.requests * inputs_per_request,
        took,
        tally.errors,
        tuple(tally.samples),
    )


async def _drain(
    url: str, path: str, bodies: list[dict[str, Any]], clients: int, inputs: int
) -> LoadResult:
    tally = _Tally()
    queue = iter(bodies)
    async with _client(url, clients) as client:
        started = time.perf_counter()

        async def one_client() -> None:
            for body in queue:  # shared: each body is taken by one client
                await tally.post(client, path, body)

        await asyncio.gather(*(one_client() for _ in range(clients)))
        took = time.perf_counter() - started
    return LoadResult(tally.requests, inputs, took, tally.errors, tuple(tally.samples))
