"""safetensors files in and out, streamed, without the safetensors package.

Reading parses and checks the header (every rule of the format: sizes,
offsets that tile the data exactly, known dtypes), then hands the writer one
source per tensor that reads its bytes from disk on demand. The header bytes
are kept in the snapshot, so exporting rebuilds the original file bit for bit.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import blake3

from weightbase.errors import MalformedFileError, ValidationError
from weightbase.tensors.dtypes import DType, get_dtype
from weightbase.tensors.formats._files import atomic_file
from weightbase.tensors.formats._refusals import check_regular_file
from weightbase.tensors.manifest import Snapshot, validate_name
from weightbase.tensors.sources import TensorSource
from weightbase.tensors.write import FileSource

if TYPE_CHECKING:
    from weightbase.tensors.store import TensorStore

__all__ = [
    "MAX_HEADER_BYTES",
    "SafetensorsHeader",
    "build_header",
    "export_safetensors",
    "open_safetensors",
    "parse_header",
    "write_safetensors_file",
]

MAX_HEADER_BYTES = 100_000_000


@dataclass(frozen=True, slots=True)
class HeaderTensor:
    name: str
    dtype: DType
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True, slots=True)
class SafetensorsHeader:
    """A checked safetensors header: its raw bytes and its tensors in data order."""

    raw: bytes  # the 8-byte length and the JSON, exactly as in the file
    tensors: tuple[HeaderTensor, ...]
    metadata: dict[str, str]

    @property
    def data_start(self) -> int:
        return len(self.raw)


def parse_header(path: str | Path, file_size: int, head: bytes) -> SafetensorsHeader:
    """Check a safetensors header; ``head`` is the file's first ``8 + n`` bytes (or fewer)."""
    where = str(path)
    if file_size < 8:
        raise MalformedFileError(f"{where}: {file_size} bytes is too short for a safetensors file")
    ended_early = f"{where}: file ended early (was it truncated while reading?)"
    if len(head) < 8:
        raise MalformedFileError(ended_early)
    (length,) = struct.unpack("<Q", head[:8])
    if length > MAX_HEADER_BYTES:
        raise MalformedFileError(
            f"{where}: header of {length} bytes exceeds the {MAX_HEADER_BYTES} byte limit"
        )
    if 8 + length > file_size:
        raise MalformedFileError(
            f"{where}: header length {length} runs past the end of the {file_size} byte file"
        )
    if len(head) < 8 + length:
        raise MalformedFileError(ended_early)
    try:
        doc = json.loads(head[8 : 8 + length])
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedFileError(f"{where}: header is not valid JSON: {exc}") from None
    except RecursionError:  # a header is one level of tensors; nesting past the stack is hostile
        raise MalformedFileError(f"{where}: header nests JSON too deeply") from None
    if not isinstance(doc, dict):
        raise MalformedFileError(f"{where}: header is not a JSON object")
    metadata = doc.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise MalformedFileError(f"{where}: __metadata__ must map strings to strings")
    data_size = file_size - 8 - length
    tensors = [_header_tensor(where, name, info, data_size) for name, info in doc.items()]
    tensors.sort(key=lambda t: (t.begin, t.end))
    position = 0
    for tensor in tensors:
        if tensor.begin < position:
            raise MalformedFileError(
                f"{where}: tensor {tensor.name!r} overlaps the tensor before it "
                f"(starts at {tensor.begin}, previous ends at {position})"
            )
        if tensor.begin > position:
            raise MalformedFileError(
                f"{where}: {tensor.begin - position} bytes before tensor {tensor.name!r} "
                "belong to no tensor"
            )
        position = tensor.end
    if position != data_size:
        raise MalformedFileError(
            f"{where}: tensors cover {position} bytes but the file holds {data_size} data bytes"
        )
    return SafetensorsHeader(bytes(head[: 8 + length]), tuple(tensors), metadata)


def _header_tensor(where: str, name: str, info: Any, data_size: int) -> HeaderTensor:
    try:
        validate_name(name)
    except ValidationError as exc:
        raise MalformedFileError(f"{where}: {exc}") from None
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise MalformedFileError(
            f"{where}: tensor {name!r} needs exactly dtype, shape, data_offsets"
        )
    try:
        dtype = get_dtype(info["dtype"])
    except ValidationError:
        raise MalformedFileError(
            f"{where}: tensor {name!r} has unknown dtype {info['dtype']!r}"
        ) from None
    shape, offsets = info["shape"], info["data_offsets"]
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise MalformedFileError(f"{where}: tensor {name!r} has an invalid shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise MalformedFileError(f"{where}: tensor {name!r} has invalid data_offsets {offsets!r}")
    begin, end = offsets
    if begin > end or end > data_size:
        raise MalformedFileError(
            f"{where}: tensor {name!r} offsets [{begin}, {end}] fall outside the "
            f"{data_size} data bytes"
        )
    count = 1
    for dim in shape:
        count *= dim
    if count * dtype.itemsize != end - begin:
        raise MalformedFileError(
            f"{where}: tensor {name!r} of shape {shape} {dtype} needs {count * dtype.itemsize} "
            f"bytes but its offsets give {end - begin}"
        )
    return HeaderTensor(name, dtype, tuple(shape), begin, end)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _pread_exact(fd: int, length: int, offset: int, where: str) -> bytes:
    parts = []
    remaining = length
    while remaining:
        piece = os.pread(fd, min(remaining, 1 << 30), offset)
        if not piece:
            raise MalformedFileError(f"{where}: file ended early (was it truncated while reading?)")
        parts.append(piece)
        offset += len(piece)
        remaining -= len(piece)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _read_at(fd: int, start: int, where: str, offset: int, length: int) -> bytes:
    return _pread_exact(fd, length, start + offset, where)


@contextmanager
def open_safetensors(
    path: str | Path, *, name: str | None = None
) -> Iterator[tuple[list[TensorSource], FileSource]]:
    """Check a safetensors file and yield a source per tensor plus its layout record.

    The file stays open (and is read piece by piece) while the context is active.
    """
    where = str(path)
    check_regular_file(path)
    try:
        # non-blocking, in case a FIFO took the file's place since the check
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ValidationError(f"cannot open {where}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValidationError(f"{where} is not a regular file; only regular files are read")
        size = info.st_size
        head = os.pread(fd, 8, 0)
        if len(head) == 8:
            (length,) = struct.unpack("<Q", head)
            if length <= MAX_HEADER_BYTES and 8 + length <= size:
                head = _pread_exact(fd, 8 + length, 0, where)
        header = parse_header(where, size, head)
        base = header.data_start
        sources = [
            TensorSource(
                t.name,
                t.dtype,
                t.shape,
                partial(_read_at, fd, base + t.begin, where),
            )
            for t in header.tensors
        ]
        # The layout's digest covers the header; the tensors' bytes are covered by
        # their own content digests, so the file is never read twice.
        layout = FileSource(
            name or Path(path).name,
            header.raw,
            tuple(t.name for t in header.tensors),
            kind="safetensors",
            size=size,
            digest=blake3.blake3(header.raw).hexdigest(),
        )
        yield sources, layout
    finally:
        os.close(fd)


def build_header(snapshot: Snapshot, names: list[str], metadata: dict[str, str]) -> bytes:
    """A canonical safetensors header for ``names`` laid out in that order."""
    doc: dict[str, Any] = {}
    if metadata:
        doc["__metadata__"] = metadata
    position = 0
    for name in names:
        entry = snapshot.tensors[name]
        doc[name] = {
            "dtype": entry.dtype,
            "shape": list(entry.shape),
            "data_offsets": [position, position + entry.nbytes],
        }
        position += entry.nbytes
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes
    return struct.pack("<Q", len(text)) + text


def write_safetensors_file(
    store: TensorStore,
    snapshot: Snapshot,
    path: Path,
    header: bytes,
    names: list[str],
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write ``header`` and the tensors' bytes to ``path`` crash-safely (temp, fsync, rename).

    ``progress`` is called with the number of tensor bytes written as they are.
    """
    with atomic_file(path) as handle:
        handle.write(header)
        for name in names:
            for piece in store.iter_tensor_bytes(snapshot, name):
                handle.write(piece)
                if progress is not None:
                    progress(memoryview(piece).nbytes)


def export_safetensors(
    store: TensorStore,
    snapshot: Snapshot,
    path: str | Path,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write a snapshot's tensors as one safetensors file.

    A snapshot made from one safetensors file is rebuilt bit for bit; any
    other gets a canonical header with tensors in name order.
    """
    target = Path(path)
    layouts = [f for f in snapshot.files.values() if f.kind == "safetensors"]
    if len(layouts) == 1 and set(layouts[0].tensors) == set(snapshot.tensors):
        name = next(n for n, f in snapshot.files.items() if f is layouts[0])
        header = store.file_bytes(snapshot, name)
        write_safetensors_file(store, snapshot, target, header, list(layouts[0].tensors), progress)
    else:
        names = sorted(snapshot.tensors)
        header = build_header(snapshot, names, {})
        write_safetensors_file(store, snapshot, target, header, names, progress)
    return target
