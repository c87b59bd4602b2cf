"""Metric batches as bytes: how a remote run's points travel to the server.

    body = encode_batch({"train/loss": points})   # points: float64 (n, 4) step, epoch, time, value
    batch = decode_batch(body, max_points=250_000) # the same arrays, every field checked

The layout is a 4-byte magic (``WBP1``), a little-endian uint32 header length,
a UTF-8 JSON header ``{"metrics": [[name, count], …]}``, then each metric's
points as ``count * 4`` little-endian float64s in that order (step, epoch,
time, value per row). NaN and infinities travel bit for bit, and neither side
parses a number as text, so a batch of 100,000 points costs milliseconds.
"""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING

import numpy as np

from weightbase.errors import ValidationError
from weightbase.tracking.records import check_series

if TYPE_CHECKING:
    from weightbase.tracking.writer import MetricBatch

__all__ = ["MAGIC", "MEDIA_TYPE", "decode_batch", "encode_batch"]

#: The first bytes of every encoded batch (the format's version is its last character).
MAGIC = b"WBP1"
#: The content type of an encoded batch.
MEDIA_TYPE = "application/vnd.weightbase.points"

_HEADER = struct.Struct("<4sI")
_ROW_BYTES = 4 * 8
_MAX_STEP = 2**53


def encode_batch(batch: MetricBatch) -> bytes:
    """``batch`` (metric name → float64 ``(n, 4)`` array) as bytes."""
    header = json.dumps(
        {"metrics": [[name, int(points.shape[0])] for name, points in batch.items()]},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    parts = [_HEADER.pack(MAGIC, len(header)), header]
    parts += [np.ascontiguousarray(points, dtype="<f8").tobytes() for points in batch.values()]
    return b"".join(parts)


def decode_batch(data: bytes, *, max_points: int) -> MetricBatch:
    """The batch ``data`` encodes; ``ValidationError`` for anything malformed or out of range.

    Names must pass the naming rule (``name`` or ``name@dataset``), steps be
    whole numbers in [0, 2**53), epochs finite or NaN (none), times finite; at
    most ``max_points`` points.
    """
    if len(data) < _HEADER.size:
        raise ValidationError("a metric batch starts with an 8-byte header")
    magic, header_length = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValidationError(f"not a metric batch (it starts {magic!r}, not {MAGIC!r})")
    start = _HEADER.size + header_length
    try:
        header = json.loads(data[_HEADER.size : start].decode("utf-8"))
        entries = [(name, count) for name, count in header["metrics"]]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValidationError(f"the header of a metric batch is malformed: {exc}") from None
    total = 0
    for name, count in entries:
        check_series(name)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValidationError(f"metric {name!r} has {count!r} points; at least 1 is needed")
        total += count
    if len({name for name, _ in entries}) != len(entries):
        raise ValidationError("a metric batch names each metric once")
    if total > max_points:
        raise ValidationError(f"a metric batch holds at most {max_points} points, not {total}")
    if len(data) - start != total * _ROW_BYTES:
        raise ValidationError(
            f"a metric batch of {total} points has {total * _ROW_BYTES} bytes of points, "
            f"not {len(data) - start}"
        )
    rows = np.frombuffer(data, dtype="<f8", offset=start).reshape(-1, 4).astype(np.float64)
    _check_rows(rows)
    batch: MetricBatch = {}
    offset = 0
    for name, count in entries:
        batch[name] = rows[offset : offset + count]
        offset += count
    return batch


def _check_rows(rows: np.ndarray) -> None:
    steps, epochs, times = rows[:, 0], rows[:, 1], rows[:, 2]
    if not (np.isfinite(steps).all() and (steps >= 0).all() and (steps < _MAX_STEP).all()):
        raise ValidationError("steps of a metric batch must be whole numbers in [0, 2**53)")
    if not (np.floor(steps) == steps).all():
        raise ValidationError("steps of a metric batch must be whole numbers")
    if np.isinf(epochs).any():
        raise ValidationError("epochs of a metric batch must be finite (NaN for none)")
    if not np.isfinite(times).all():
        raise ValidationError("times of a metric batch must be finite Unix seconds")
