"""One content digest per sample: what "the same sample" means for duplicates and splits.

The quality score counts samples whose inputs and label hash alike; a split
keeps samples whose inputs hash alike (whatever their labels) in one split, so
no copy of a test sample is trained on. With ``decimals`` the digest is of a
normalised sample, for near-duplicates: numbers rounded to that many decimals,
text in Unicode NFKC form, case-folded, with runs of whitespace made one space.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

from weightbase.datasets.content import DatasetContent, DatasetFormat
from weightbase.datasets.encoding import decode_strings, string_views
from weightbase.errors import ValidationError

__all__ = ["sample_digests"]

_WHITESPACE = re.compile(r"\s+")


def sample_digests(
    content: DatasetContent, *, labels: bool = False, decimals: int | None = None
) -> list[bytes]:
    """A 16-byte digest per sample; equal digests are copies of one sample.

    The digest covers a sample's inputs: every table column but the target, the
    pixels and shape of an image, a document's bytes, a clip's samples and rate,
    a row of ``x``. ``labels=True`` adds the label (``y``, the target column, the
    folder's class). ``decimals`` hashes the normalised sample instead (module
    docstring), so near-duplicates share a digest. A graph's nodes are not
    samples in this sense (a node is its place in the graph): each gets a digest
    of its own number.
    """
    if decimals is not None and (not isinstance(decimals, int) or decimals < 0):
        raise ValidationError(f"decimals must be an integer >= 0, got {decimals!r}")
    n = content.sample_count
    if content.format is DatasetFormat.GRAPH:
        return [_digest([i.to_bytes(8, "little")]) for i in range(n)]
    parts = _input_parts(content, decimals)
    if labels:
        parts.extend(_label_parts(content))
    return [_digest([p[i] for p in parts]) for i in range(n)]


def _digest(pieces: list[bytes]) -> bytes:
    framed = b"\x00".join(len(piece).to_bytes(8, "little") + piece for piece in pieces)
    return hashlib.blake2b(framed, digest_size=16).digest()


def _input_parts(content: DatasetContent, decimals: int | None) -> list[list[bytes]]:
    fmt = content.format
    arrays = content.arrays
    if fmt is DatasetFormat.TENSOR:
        return [_row_bytes(_rounded(arrays["x"], decimals))]
    if fmt is DatasetFormat.TABLE:
        parts: list[list[bytes]] = []
        for position, layout in enumerate(content.columns):
            if layout.name == content.target:
                continue
            parts.extend(_column_parts(content, f"column.{position}", layout.encoding, decimals))
        return parts
    if fmt is DatasetFormat.IMAGE:
        return [[_shape_and_bytes(_rounded(image, decimals)) for image in content.images()]]
    if fmt is DatasetFormat.TEXT:
        return [_texts(arrays["text.bytes"], arrays["text.offsets"], decimals)]
    return [
        [
            _shape_and_bytes(clip.samples) + clip.sample_rate.to_bytes(8, "little")
            for clip in content.audio()
        ]
    ]


def _column_parts(
    content: DatasetContent, prefix: str, encoding: str, decimals: int | None
) -> list[list[bytes]]:
    arrays = content.arrays
    parts: list[list[bytes]] = []
    if encoding == "strings":
        parts.append(_texts(arrays[f"{prefix}.bytes"], arrays[f"{prefix}.offsets"], decimals))
    key = "codes" if encoding == "categorical" else "values"
    if f"{prefix}.{key}" in arrays:
        parts.append(_row_bytes(_rounded(arrays[f"{prefix}.{key}"], decimals)))
    if f"{prefix}.mask" in arrays:
        parts.append(_row_bytes(arrays[f"{prefix}.mask"]))
    return parts


def _label_parts(content: DatasetContent) -> list[list[bytes]]:
    arrays = content.arrays
    parts: list[list[bytes]] = []
    if content.format is DatasetFormat.TENSOR and "y" in arrays:
        parts.append(_row_bytes(arrays["y"]))
    if content.format is DatasetFormat.TABLE:
        for position, layout in enumerate(content.columns):
            if layout.name == content.target:
                parts.extend(_column_parts(content, f"column.{position}", layout.encoding, None))
    if "labels" in arrays:
        parts.append(_row_bytes(arrays["labels"]))
    return parts


def _texts(data: np.ndarray, offsets: np.ndarray, decimals: int | None) -> list[bytes]:
    if decimals is None:
        return [len(raw).to_bytes(8, "little") + raw for raw in string_views(data, offsets)]
    texts = decode_strings(data, offsets)
    # A leading byte tells a missing string from any text.
    return [
        b"\x00" if text is None else b"\x01" + _normalised(text).encode("utf-8", "surrogatepass")
        for text in texts
    ]


def _normalised(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _WHITESPACE.sub(" ", folded).strip()


def _rounded(array: np.ndarray, decimals: int | None) -> np.ndarray:
    if decimals is None or array.dtype.kind not in "fc":
        return array
    with np.errstate(all="ignore"):
        rounded = np.round(array, decimals) + 0  # + 0 turns -0.0 into 0.0
    # Every NaN hashes alike, whatever its payload bits.
    return np.where(np.isnan(rounded), np.nan, rounded).astype(array.dtype)


def _row_bytes(array: np.ndarray) -> list[bytes]:
    rows = np.ascontiguousarray(array).reshape(array.shape[0], -1)
    width = rows.dtype.itemsize * rows.shape[1]
    if width == 0:
        return [b""] * rows.shape[0]
    flat = rows.view(np.uint8).reshape(-1)
    return [flat[i : i + width].tobytes() for i in range(0, flat.size, width)]


def _shape_and_bytes(array: np.ndarray) -> bytes:
    header = np.array(array.shape, dtype=np.int64).tobytes() + array.dtype.str.encode()
    return header + np.ascontiguousarray(array).tobytes()
