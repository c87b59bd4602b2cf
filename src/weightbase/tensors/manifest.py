"""Snapshot manifests: the immutable records that say which chunks make which tensor.

A manifest serialises to canonical JSON (sorted keys, no spaces); a snapshot's
id is the BLAKE3 digest of those bytes, so the id verifies the manifest and
two identical snapshots share one id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import blake3

from weightbase.errors import IntegrityError, ValidationError
from weightbase.tensors.dtypes import get_dtype

__all__ = ["ChunkRef", "FileEntry", "Snapshot", "TensorEntry", "validate_name"]

FORMAT_VERSION = 1


def validate_name(name: str, *, what: str = "tensor") -> str:
    """Refuse names that could escape a folder on export or confuse a reader."""
    if not isinstance(name, str) or not name:
        raise ValidationError(f"{what} names must be non-empty strings, got {name!r}", name=name)
    if "\x00" in name:
        raise ValidationError(f"{what} name {name!r} contains a NUL byte", name=name)
    # a tensor name is a key inside a file, kept verbatim; every other name is one line
    if what != "tensor" and any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValidationError(f"{what} name {name!r} contains a control character", name=name)
    if what == "tensor" and ("/" in name or "\\" in name):
        raise ValidationError(f"tensor name {name!r} contains a path separator", name=name)
    parts = name.replace("\\", "/").split("/")
    if name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValidationError(f"{what} name {name!r} is not a safe relative name", name=name)
    return name


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """Where a run of a tensor's bytes lives.

    ``length`` bytes start at ``offset`` in the chunk's decoded bytes (non-zero
    only inside packs of small tensors); ``stored`` is the size of the chunk's
    frame in the object store. ``bases`` lists the chain of chunks a delta chunk
    is XORed against, nearest first; it is empty for a keyframe.
    """

    digest: str
    offset: int
    length: int
    stored: int
    bases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "d": self.digest,
            "o": self.offset,
            "n": self.length,
            "s": self.stored,
        }
        if self.bases:
            out["b"] = list(self.bases)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChunkRef:
        bases = tuple(data.get("b", ()))
        return cls(data["d"], int(data["o"]), int(data["n"]), int(data["s"]), bases)


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """One tensor of a snapshot: its type, shape, codec, content digest and chunks."""

    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    codec: str
    digest: str
    chunks: tuple[ChunkRef, ...]
    base: str | None = None  # content digest of the tensor a delta was taken against

    @property
    def stored_digests(self) -> tuple[str, ...]:
        return tuple(ref.digest for ref in self.chunks)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dtype": self.dtype,
            "shape": list(self.shape),
            "nbytes": self.nbytes,
            "codec": self.codec,
            "digest": self.digest,
            "chunks": [ref.to_dict() for ref in self.chunks],
        }
        if self.base is not None:
            out["base"] = self.base
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorEntry:
        entry = cls(
            dtype=data["dtype"],
            shape=tuple(int(d) for d in data["shape"]),
            nbytes=int(data["nbytes"]),
            codec=data["codec"],
            digest=data["digest"],
            chunks=tuple(ChunkRef.from_dict(c) for c in data["chunks"]),
            base=data.get("base"),
        )
        entry.check()
        return entry

    def check(self) -> None:
        """Raise ``IntegrityError`` if the entry contradicts itself."""
        dtype = get_dtype(self.dtype)
        count = 1
        for dim in self.shape:
            count *= dim
        if count * dtype.itemsize != self.nbytes:
            raise IntegrityError(
                f"entry of shape {self.shape} {self.dtype} says {self.nbytes} bytes"
            )
        if sum(ref.length for ref in self.chunks) != self.nbytes:
            raise IntegrityError("entry's chunks do not add up to its size")


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file kept in a snapshot (config, tokenizer, a weights file's layout).

    For a safetensors file the chunks hold its header and ``tensors`` names the
    tensors whose bytes follow it, in file order, so the file is rebuilt bit
    for bit; ``size`` is then that of the whole file and ``digest`` that of its
    header (each tensor carries its own digest). A ``torch`` file lists its
    tensors and is rebuilt with ``torch.save``.
    """

    size: int
    digest: str
    chunks: tuple[ChunkRef, ...]
    tensors: tuple[str, ...] = ()
    kind: str = "blob"  # "blob", "safetensors" (chunks hold the header) or "torch"

    @property
    def nbytes(self) -> int:
        return self.size

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "size": self.size,
            "digest": self.digest,
            "chunks": [ref.to_dict() for ref in self.chunks],
            "kind": self.kind,
        }
        if self.tensors:
            out["tensors"] = list(self.tensors)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileEntry:
        return cls(
            size=int(data["size"]),
            digest=data["digest"],
            chunks=tuple(ChunkRef.from_dict(c) for c in data["chunks"]),
            tensors=tuple(data.get("tensors", ())),
            kind=data.get("kind", "blob"),
        )


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(sorted(mapping.items())))


@dataclass(frozen=True)
class Snapshot:
    """An immutable set of named tensors and files; ``id`` is the digest of its manifest."""

    tensors: Mapping[str, TensorEntry]
    files: Mapping[str, FileEntry] = field(default_factory=dict)
    parent: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tensors", _frozen(self.tensors))
        object.__setattr__(self, "files", _frozen(self.files))
        object.__setattr__(self, "metadata", _frozen(self.metadata))

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "tensors": {name: entry.to_dict() for name, entry in self.tensors.items()},
            "files": {name: entry.to_dict() for name, entry in self.files.items()},
            "metadata": dict(self.metadata),
        }
        if self.parent is not None:
            doc["parent"] = self.parent
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @property
    def id(self) -> str:
        cached: str | None = self.__dict__.get("_id")
        if cached is None:
            cached = blake3.blake3(self.to_json()).hexdigest()
            self.__dict__["_id"] = cached
        return cached

    @classmethod
    def from_json(cls, data: bytes, *, expected_id: str | None = None) -> Snapshot:
        """Parse a manifest; with ``expected_id``, verify it first."""
        if expected_id is not None and blake3.blake3(data).hexdigest() != expected_id:
            raise IntegrityError(
                f"manifest of snapshot {expected_id} is corrupt", snapshot=expected_id
            )
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT_VERSION:
                raise IntegrityError(f"unsupported manifest format {doc.get('format')!r}")
            return cls(
                tensors={n: TensorEntry.from_dict(e) for n, e in doc["tensors"].items()},
                files={n: FileEntry.from_dict(e) for n, e in doc["files"].items()},
                parent=doc.get("parent"),
                metadata=doc.get("metadata", {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise IntegrityError(f"manifest is malformed: {exc}", snapshot=expected_id) from exc

    @property
    def nbytes(self) -> int:
        """Logical size: the raw bytes of every tensor and of every other file."""
        return sum(e.nbytes for e in self.tensors.values()) + sum(
            f.size for f in self.files.values() if f.kind == "blob"
        )

    def entries(self) -> Iterator[TensorEntry | FileEntry]:
        """Every tensor entry, then every file entry."""
        yield from self.tensors.values()
        yield from self.files.values()

    def chunk_sizes(self) -> dict[str, int]:
        """Stored size of every chunk this snapshot references directly."""
        sizes: dict[str, int] = {}
        for entry in self.entries():
            for ref in entry.chunks:
                sizes[ref.digest] = ref.stored
        return sizes

    @property
    def stored_bytes(self) -> int:
        """Bytes of the distinct chunks this snapshot references (delta bases excluded)."""
        return sum(self.chunk_sizes().values())

    def chunk_digests(self) -> set[str]:
        """Every chunk this snapshot needs, delta bases included."""
        digests: set[str] = set()
        for entry in self.entries():
            for ref in entry.chunks:
                digests.add(ref.digest)
                digests.update(ref.bases)
        return digests

    def __repr__(self) -> str:
        return f"Snapshot(id={self.id[:12]}…, tensors={len(self.tensors)}, files={len(self.files)})"
