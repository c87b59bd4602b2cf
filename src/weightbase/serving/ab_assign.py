"""Sticky A/B assignment: a salted hash of a unit id into 10,000 buckets, buckets to variants.

The hash is GrowthBook's version 2 (FNV-1a 32 of the salt and id, then of that number's
decimal text, modulo 10,000), so a unit lands in the bucket GrowthBook's SDKs would put it in.
An :class:`Allocation` maps buckets to variants; :func:`reweight` changes the weights while
moving only the buckets the change forces, so units already assigned keep their variant
wherever the new weights allow it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from weightbase.errors import ValidationError

__all__ = [
    "BUCKETS",
    "EXCLUDED",
    "Allocation",
    "BucketRange",
    "allocate",
    "assign",
    "assign_many",
    "bucket",
    "buckets",
    "reweight",
]

#: The number of buckets a unit hashes into.
BUCKETS = 10_000
#: The variant index of a bucket outside the test's coverage: its units are not in the test.
EXCLUDED = -1

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK32 = 0xFFFFFFFF
_DIGIT_ZERO = 48  # ord("0")


def _fnv1a32(text: str, state: int = _FNV_OFFSET) -> int:
    """FNV-1a over the code points of ``text`` (as GrowthBook's SDKs hash), from ``state``."""
    for char in text:
        state = ((state ^ ord(char)) * _FNV_PRIME) & _MASK32
    return state


def _id_text(unit_id: str | int | bytes) -> str:
    return unit_id.decode() if isinstance(unit_id, bytes) else str(unit_id)


def bucket(salt: str, unit_id: str | int | bytes) -> int:
    """The bucket (0 to 9,999) of one unit: ``fnv1a32(str(fnv1a32(salt + id))) % 10000``.

    An integer id hashes as its decimal text, a bytes id as its UTF-8 text; trailing NUL
    characters of the id are ignored, as in :func:`buckets`.
    """
    inner = _fnv1a32(_id_text(unit_id).rstrip("\0"), _fnv1a32(salt))
    return _fnv1a32(str(inner)) % BUCKETS


def _as_text_array(
    unit_ids: Iterable[str | int | bytes] | npt.ArrayLike,
) -> npt.NDArray[np.str_]:
    if isinstance(unit_ids, np.ndarray):
        if unit_ids.dtype.kind == "U":
            array = unit_ids
        elif unit_ids.dtype.kind == "S":
            array = np.char.decode(unit_ids, "utf-8")
        else:
            array = unit_ids.astype(str)
    else:
        ids = unit_ids if isinstance(unit_ids, Sequence) else list(unit_ids)  # type: ignore[arg-type]
        try:
            # NumPy reads bytes as ASCII, which is UTF-8 wherever it succeeds.
            array = np.asarray(ids, dtype=str)
        except UnicodeDecodeError:
            texts = [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
            array = np.asarray(texts, dtype=str)
    if array.ndim != 1:
        raise ValidationError("unit ids must be a flat sequence", shape=array.shape)
    return array


def buckets(
    salt: str, unit_ids: Iterable[str | int | bytes] | npt.ArrayLike
) -> npt.NDArray[np.int64]:
    """The buckets of many units at once, vectorised; element for element :func:`bucket`."""
    texts = _as_text_array(unit_ids)
    count = texts.shape[0]
    width = texts.dtype.itemsize // 4
    result = np.empty(count, dtype=np.int64)
    if count == 0:
        return result
    # A "U" array is UTF-32: one uint32 per code point, padded with NULs to the widest id.
    code_points = texts.view(np.uint32).reshape(count, width)
    lengths = np.char.str_len(texts)
    salted = _fnv1a32(salt)
    # Chunks small enough that their transposed code points and hash states stay in cache.
    for start in range(0, count, _CHUNK):
        stop = start + _CHUNK
        result[start:stop] = _bucket_chunk(code_points[start:stop], lengths[start:stop], salted)
    return result


_CHUNK = 16_384
_PRIME = np.uint32(_FNV_PRIME)


def _bucket_chunk(
    code_points: npt.NDArray[np.uint32], lengths: npt.NDArray[np.integer[Any]], salted: int
) -> npt.NDArray[np.uint32]:
    by_position = np.ascontiguousarray(code_points.T)
    state = np.full(code_points.shape[0], salted, dtype=np.uint32)
    shortest = int(lengths.min())
    mixed = np.empty_like(state)
    for position, column in enumerate(by_position):
        if position < shortest:
            np.bitwise_xor(state, column, out=state)
            np.multiply(state, _PRIME, out=state)
        else:
            np.multiply(state ^ column, _PRIME, out=mixed)
            np.copyto(state, mixed, where=position < lengths)
    # Second round over the decimal text of the first hash, most significant digit first.
    result = np.full_like(state, _FNV_OFFSET)
    for power in range(9, -1, -1):
        scale = np.uint32(10**power)
        digit = (state // scale) % np.uint32(10)
        np.multiply(result ^ (digit + np.uint32(_DIGIT_ZERO)), _PRIME, out=mixed)
        np.copyto(result, mixed, where=(state >= scale) if power else True)
    result %= np.uint32(BUCKETS)
    return result


@dataclass(frozen=True)
class BucketRange:
    """Buckets ``start`` to ``end - 1`` go to ``variant`` (``EXCLUDED``: not in the test)."""

    start: int
    end: int
    variant: int

    def to_dict(self) -> dict[str, int]:
        return {"start": self.start, "end": self.end, "variant": self.variant}


@dataclass(frozen=True)
class Allocation:
    """Which variant each of the 10,000 buckets goes to, and the weights it was made for.

    ``ranges`` cover 0 to 9,999 in order, without gaps; a variant may own several ranges
    after :func:`reweight`.
    """

    weights: tuple[float, ...]
    coverage: float
    ranges: tuple[BucketRange, ...]

    def __post_init__(self) -> None:
        _check_weights(self.weights, self.coverage)
        position = 0
        for bucket_range in self.ranges:
            if bucket_range.start != position or bucket_range.end <= bucket_range.start:
                raise ValidationError("bucket ranges must cover 0-9999 in order", at=position)
            if not EXCLUDED <= bucket_range.variant < len(self.weights):
                raise ValidationError("a bucket range names an unknown variant", at=position)
            position = bucket_range.end
        if position != BUCKETS:
            raise ValidationError("bucket ranges must cover 0-9999 in order", at=position)

    @cached_property
    def table(self) -> npt.NDArray[np.int16]:
        """The variant of every bucket, indexed by bucket."""
        table = np.empty(BUCKETS, dtype=np.int16)
        for bucket_range in self.ranges:
            table[bucket_range.start : bucket_range.end] = bucket_range.variant
        table.flags.writeable = False
        return table

    def bucket_counts(self) -> tuple[int, ...]:
        """Buckets per variant, in variant order (the excluded ones are not counted)."""
        counts = np.bincount(self.table[self.table >= 0], minlength=len(self.weights))
        return tuple(int(count) for count in counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": list(self.weights),
            "coverage": self.coverage,
            "ranges": [bucket_range.to_dict() for bucket_range in self.ranges],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Allocation:
        try:
            return cls(
                weights=tuple(float(weight) for weight in data["weights"]),
                coverage=float(data["coverage"]),
                ranges=tuple(
                    BucketRange(int(item["start"]), int(item["end"]), int(item["variant"]))
                    for item in data["ranges"]
                ),
            )
        except (KeyError, TypeError) as exc:
            raise ValidationError(f"not an allocation: {exc}") from exc


def _check_weights(weights: Sequence[float], coverage: float) -> None:
    if len(weights) < 2:
        raise ValidationError("an A/B test needs at least 2 variants", variants=len(weights))
    if any(not math.isfinite(weight) or weight < 0 for weight in weights):
        raise ValidationError("traffic weights must be finite and >= 0", weights=tuple(weights))
    if sum(weights) <= 0:
        raise ValidationError("traffic weights must sum to more than 0", weights=tuple(weights))
    if not (math.isfinite(coverage) and 0 <= coverage <= 1):
        raise ValidationError("coverage must be between 0 and 1", coverage=coverage)


def _target_counts(weights: Sequence[float], coverage: float) -> list[int]:
    """Buckets per variant by largest remainder: they sum to ``round(coverage * 10000)``."""
    in_test = round(coverage * BUCKETS)
    total = math.fsum(weights)
    shares = [in_test * weight / total for weight in weights]
    counts = [math.floor(share) for share in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (counts[i] - shares[i], i))
    for index in by_remainder[: in_test - sum(counts)]:
        counts[index] += 1
    return counts


def _ranges_of(table: npt.NDArray[np.int16]) -> tuple[BucketRange, ...]:
    starts = np.flatnonzero(np.diff(table)) + 1
    bounds = [0, *starts.tolist(), BUCKETS]
    return tuple(
        BucketRange(start, end, int(table[start])) for start, end in itertools.pairwise(bounds)
    )


def allocate(weights: Sequence[float], coverage: float = 1.0) -> Allocation:
    """A first allocation: variant ``i`` gets a block of ``coverage * weight_i`` of the buckets,
    the blocks side by side from bucket 0; the buckets after them are outside the test."""
    weights = tuple(float(weight) for weight in weights)
    _check_weights(weights, coverage)
    table = np.full(BUCKETS, EXCLUDED, dtype=np.int16)
    start = 0
    for variant, count in enumerate(_target_counts(weights, coverage)):
        table[start : start + count] = variant
        start += count
    return Allocation(weights, float(coverage), _ranges_of(table))


def reweight(
    allocation: Allocation, weights: Sequence[float], coverage: float | None = None
) -> Allocation:
    """The allocation for new weights (and coverage) that moves the fewest buckets.

    A variant (or the excluded part) that needs fewer buckets gives up its highest ones; a
    variant that needs more takes the freed buckets, lowest first. A bucket changes variant
    only if its variant shrank, and the buckets that change are exactly
    ``sum(max(0, old_count - new_count))`` over the variants and the excluded part: the least
    any allocation for the new weights can move. Variants may be added at the end.
    """
    weights = tuple(float(weight) for weight in weights)
    coverage = allocation.coverage if coverage is None else float(coverage)
    _check_weights(weights, coverage)
    if len(weights) < len(allocation.weights):
        raise ValidationError(
            "variants cannot be removed from a running test; give them weight 0",
            variants=len(weights),
            before=len(allocation.weights),
        )
    table = allocation.table.copy()
    targets = dict(enumerate(_target_counts(weights, coverage)))
    targets[EXCLUDED] = BUCKETS - sum(targets.values())
    freed: list[npt.NDArray[np.intp]] = []
    for slot, target in targets.items():
        owned = np.flatnonzero(table == slot)
        if owned.size > target:
            freed.append(owned[target:])
    pool = np.sort(np.concatenate(freed)) if freed else np.empty(0, dtype=np.intp)
    taken = 0
    for slot, target in targets.items():
        missing = target - int(np.count_nonzero(table == slot))
        if missing > 0:
            table[pool[taken : taken + missing]] = slot
            taken += missing
    return Allocation(weights, coverage, _ranges_of(table))


def assign(allocation: Allocation, salt: str, unit_id: str | int | bytes) -> int:
    """The variant index of one unit, or ``EXCLUDED`` when its bucket is outside the test."""
    return int(allocation.table[bucket(salt, unit_id)])


def assign_many(
    allocation: Allocation, salt: str, unit_ids: Iterable[str | int | bytes] | npt.ArrayLike
) -> npt.NDArray[np.int16]:
    """The variant index of each unit (``EXCLUDED`` outside the test), vectorised."""
    return allocation.table[buckets(salt, unit_ids)]
