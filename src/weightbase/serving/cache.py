"""The response cache of the inference server (seed 001's activation cache).

An answer is kept under its model's snapshot id and a hash of the request's inputs and
parameters, for a time to live, within a bound on the bytes it holds (least recently
used first out); each entry counts its hits.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CacheEntry", "ResponseCache", "cache_key"]


def cache_key(snapshot_id: str, operation: str, inputs: Any, params: Any = None) -> str:
    """The key of a request: the snapshot, the operation and a SHA-256 of its inputs."""
    body = json.dumps(
        [operation, inputs, params], sort_keys=True, separators=(",", ":"), default=_plain
    )
    return f"{snapshot_id}:{hashlib.sha256(body.encode('utf-8')).hexdigest()}"


def _plain(value: Any) -> Any:
    """Arrays (a predict model's rows) as lists, so they hash as their values."""
    if hasattr(value, "tolist"):
        return [str(getattr(value, "dtype", "")), value.tolist()]
    raise TypeError(f"{type(value).__name__} is not JSON")


@dataclass(slots=True)
class CacheEntry:
    """A kept answer, its size, when it expires and how often it was read."""

    value: Any
    size: int
    expires: float
    hits: int = 0


class ResponseCache:
    """Answers by key, bounded to ``max_bytes`` (0: keeps nothing) and ``ttl_s`` each."""

    def __init__(
        self, max_bytes: int, ttl_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """The bytes the cache holds now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` for a live entry (counted as a hit), else ``(False, None)``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            if entry.expires <= self._clock():
                self._drop(key)
                return False, None
            entry.hits += 1
            self._entries.move_to_end(key)
            return True, entry.value

    def hits(self, key: str) -> int:
        """How often the entry under ``key`` was read (0 when there is none)."""
        with self._lock:
            entry = self._entries.get(key)
            return entry.hits if entry is not None else 0

    def put(self, key: str, value: Any) -> bool:
        """Keep ``value`` (JSON-able) under ``key``; False where it is larger than the cache."""
        size = len(json.dumps(value, separators=(",", ":")).encode("utf-8")) + len(key)
        if size > self.max_bytes:
            return False
        with self._lock:
            if key in self._entries:
                self._drop(key)
            while self._entries and self._bytes + size > self.max_bytes:
                self._drop(next(iter(self._entries)))
            self._entries[key] = CacheEntry(value, size, self._clock() + self.ttl_s)
            self._bytes += size
            return True

    def _drop(self, key: str) -> None:
        self._bytes -= self._entries.pop(key).size
