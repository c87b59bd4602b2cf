"""Client load for ``python -m benchmarks serving``: closed loops of concurrent clients.

Clients are asyncio tasks of one event loop (uvloop's, where installed) in the benchmark
process, each with a kept-alive HTTP/1.1 connection of its own (a minimal client, so that
the load generator takes little of the CPU the servers share; a body may come encoded
already): every client sends its next request as soon as the last is answered, for a
fixed time (``closed_loop``) or until a fixed list of requests is done (``drain``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import statistics
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

__all__ = ["LoadResult", "closed_loop", "distinct_sentences", "drain", "p50_ms", "timed_posts"]

_TIMEOUT_S = 120.0
_T = TypeVar("_T")
_KEPT_ERRORS = 5

# the words sentences are made of
_WORDS = (
    "the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "weights",
    "load", "from", "the", "store", "and", "every", "tensor", "is", "hashed", "once", "before",
    "the", "server", "answers", "many", "clients", "at", "the", "same", "time", "with",
    "embeddings", "of", "short", "sentences", "that", "differ", "in", "a", "few", "words",
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
    body: Callable[[], dict[str, Any] | bytes],
    *,
    clients: int,
    seconds: float,
    inputs_per_request: int = 1,
) -> LoadResult:
    """``clients`` clients post ``body()`` to ``path`` back to back for ``seconds``."""
    return _run(_closed_loop(url, path, body, clients, seconds, inputs_per_request))


def drain(
    url: str, path: str, bodies: Sequence[dict[str, Any]], *, clients: int, inputs: int
) -> LoadResult:
    """``clients`` clients post every one of ``bodies`` (``inputs`` inputs in all); timed
    from the first request sent to the last answer."""
    return _run(_drain(url, path, list(bodies), clients, inputs))


def timed_posts(url: str, path: str, bodies: Sequence[dict[str, Any]]) -> list[float]:
    """Each of ``bodies`` posted in turn over one kept-alive connection of the lean client;
    the seconds each took to be answered (200, else ``RuntimeError``)."""

    async def post_each() -> list[float]:
        connection = _Connection(url)
        took = []
        try:
            for body in bodies:
                payload = json.dumps(body).encode()
                begun = time.perf_counter()
                status, answer = await connection.post(path, payload)
                took.append(time.perf_counter() - begun)
                if status != 200:
                    raise RuntimeError(f"HTTP {status} {answer[:200]!r}")
        finally:
            await connection.close()
        return took

    return _run(post_each())


def _run(work: Coroutine[Any, Any, _T]) -> _T:
    try:
        import uvloop
    except ImportError:  # the standard loop: the same clients, more CPU each
        return asyncio.run(work)
    return uvloop.run(work)


class _Tally:
    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.samples: list[str] = []

    async def post(self, connection: _Connection, path: str, body: dict[str, Any] | bytes) -> bool:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                status, answer = await connection.post(path, payload)
        except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
            self._fail(f"no answer ({type(exc).__name__}: {exc})")
            await connection.reopen()
            return False
        if status != 200:
            self._fail(f"HTTP {status} {answer[:200]!r}")
            return False
        self.requests += 1
        return True

    def _fail(self, text: str) -> None:
        self.errors += 1
        if len(self.samples) < _KEPT_ERRORS:
            self.samples.append(text)


class _Connection:
    """One kept-alive HTTP/1.1 connection: a client as lean as a load generator should be
    (an httpx client costs several times the CPU per request, on the servers' cores)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, payload: bytes) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines if line)
        }
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _chunked(reader)
        else:
            raise ValueError(f"an answer without a length: {status_line}")
        if headers.get("connection", "").lower() == "close":
            await self.reopen()
        return int(status_line.split(" ", 2)[1]), body

    async def reopen(self) -> None:
        await self.close()

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return body
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def _closed_loop(
    url: str,
    path: str,
    body: Callable[[], dict[str, Any] | bytes],
    clients: int,
    seconds: float,
    inputs_per_request: int,
) -> LoadResult:
    tally = _Tally()
    connections = [_Connection(url) for _ in range(clients)]
    started = time.perf_counter()
    deadline = started + seconds

    async def one_client(connection: _Connection) -> None:
        while time.perf_counter() < deadline:
            await tally.post(connection, path, body())

    try:
        await asyncio.gather(*(one_client(connection) for connection in connections))
    finally:
        took = time.perf_counter() - started
        for connection in connections:
            await connection.close()
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
    connections = [_Connection(url) for _ in range(clients)]
    started = time.perf_counter()

    async def one_client(connection: _Connection) -> None:
        for body in queue:  # shared: each body is taken by one client
            await tally.post(connection, path, body)

    try:
        await asyncio.gather(*(one_client(connection) for connection in connections))
    finally:
        took = time.perf_counter() - started
        for connection in connections:
            await connection.close()
    return LoadResult(tally.requests, inputs, took, tally.errors, tuple(tally.samples))
