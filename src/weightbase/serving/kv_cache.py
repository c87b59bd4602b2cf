"""Key/value caches of recent prompts, reused by later prompts that begin the same way.

A chat's system prompt or a few-shot preamble is the same at the start of many
requests; its keys and values need computing once. ``PrefixCache`` keeps the caches of
the last prompts a generation model saw (least recently used out, bounded by count and
bytes) and hands a request the longest prefix it shares with one of them, cropped to
that prefix, so ``generate`` computes only the rest of the prompt. The answer is the
one the model gives without the cache (a test compares the texts).

Generation with a reused prefix runs the prompt alone (a padded batch cannot share
one); prompts with no reusable prefix still run as one batch.
"""

from __future__ import annotations

import copy
import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["PrefixCache", "cache_bytes", "cache_keyword", "cache_of"]


def cache_keyword(model: Any) -> str:
    """The keyword ``model.forward`` and ``generate`` take a key/value cache by: ``cache``
    in transformers 5.2x, ``past_key_values`` before."""
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def cache_of(output: Any) -> Any:
    """The key/value cache a forward or a ``generate(return_dict_in_generate=True)`` left."""
    found = getattr(output, "cache", None)
    return found if found is not None else getattr(output, "past_key_values", None)


def cache_bytes(cache: Any) -> int:
    """The bytes a transformers key/value cache holds (0 where it cannot tell)."""
    total = 0
    for layer in getattr(cache, "layers", ()):
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            if tensor is not None and hasattr(tensor, "numel"):
                total += tensor.numel() * tensor.element_size()
    return int(total)


def _crop(cache: Any, keep: int) -> None:
    """Keep the first ``keep`` tokens of ``cache`` (a negative count removes, in every
    transformers version)."""
    remove = cache.get_seq_length() - keep
    if remove > 0:
        cache.crop(-remove)


def _shared(one: tuple[int, ...], other: tuple[int, ...]) -> int:
    """How many tokens the two sequences begin with in common."""
    count = 0
    for mine, theirs in zip(one, other, strict=False):
        if mine != theirs:
            break
        count += 1
    return count


class PrefixCache:
    """The key/value caches of up to ``max_entries`` recent prompts of one model.

    Each entry covers a prompt but its last token (``generate`` needs at least one
    token of input to compute). ``lookup`` answers a copy cropped to the longest prefix
    of ``min_tokens`` or more that a new prompt shares with an entry; ``on_lookup``
    hears each lookup (hit or not, tokens reused) for the server's metrics.
    Thread-safe: batches of one model with different parameters run side by side.
    """

    def __init__(
        self,
        max_entries: int = 16,
        *,
        max_bytes: int = 256 * 2**20,
        min_tokens: int = 4,
        on_lookup: Callable[[bool, int], None] | None = None,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.min_tokens = max(1, min_tokens)
        self._entries: OrderedDict[tuple[int, ...], tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._on_lookup = on_lookup
        self.hits = 0
        self.misses = 0
        self.tokens_reused = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def hit_rate(self) -> float:
        """Hits over lookups (0 before the first)."""
        looked = self.hits + self.misses
        return self.hits / looked if looked else 0.0

    def lookup(self, ids: Sequence[int]) -> tuple[int, Any]:
        """``(tokens reused, cache)`` for the prompt ``ids``; ``(0, None)`` on a miss.

        The cache is the caller's own copy: generation extends it in place.
        """
        ids = tuple(ids)
        best_key: tuple[int, ...] | None = None
        best = 0
        with self._lock:
            for key in self._entries:
                # never the whole prompt: its last token is the input generate needs
                shared = min(_shared(key, ids), len(ids) - 1)
                if shared > best:
                    best_key, best = key, shared
            hit = best_key is not None and best >= self.min_tokens
            if hit:
                assert best_key is not None
                self._entries.move_to_end(best_key)
                stored = self._entries[best_key][0]
                reused = copy.deepcopy(stored)
                self.hits += 1
                self.tokens_reused += best
            else:
                self.misses += 1
        if self._on_lookup is not None:
            self._on_lookup(hit, best if hit else 0)
        if not hit:
            return 0, None
        _crop(reused, best)
        return best, reused

    def store(self, ids: Sequence[int], cache: Any) -> None:
        """Keep ``cache`` as the keys and values of ``ids`` but its last token.

        The cache may cover more (the generated tokens too): it is cropped here, and
        from now on belongs to this object.
        """
        key = tuple(ids)[:-1]
        if self.max_entries <= 0 or len(key) < self.min_tokens or cache is None:
            return
        _crop(cache, len(key))
        size = cache_bytes(cache)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (cache, size)
            self._bytes += size
            while self._entries and (
                len(self._entries) > self.max_entries or self._bytes > self.max_bytes
            ):
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
