"""Object stores: where chunks, manifests and refs live.

A backend implements a handful of primitives (``put``, ``get``, ``get_range``,
``exists``, ``delete``, ``list``); everything the tensor store needs is built
on them. Backends are chosen by URL scheme and imported lazily, so a missing
optional dependency is reported only when that backend is asked for.
"""

from __future__ import annotations

import contextlib
import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from weightbase.errors import MissingExtraError, NotFound, ValidationError
from weightbase.tensors.codecs import Buffer

__all__ = ["ObjectInfo", "ObjectStore", "open_object_store", "validate_key"]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One stored object as a listing sees it; ``mtime`` is seconds since the epoch."""

    key: str
    size: int
    mtime: float


def validate_key(key: str) -> str:
    """Refuse keys that could escape the store or confuse a backend."""
    if (
        not key
        or key.startswith("/")
        or "\x00" in key
        or "\\" in key
        or any(part in ("", ".", "..") for part in key.split("/"))
    ):
        raise ValidationError(f"invalid object key {key!r}", key=key)
    return key


class ObjectStore(ABC):
    """A flat namespace of immutable-by-convention objects addressed by ``/``-separated keys.

    ``put`` is atomic: a reader sees the old object, the new one, or none, never
    part of one. Its content is durable when ``put`` returns; the name becomes
    durable at the latest after the next ``sync()``, which callers invoke before
    they write anything that refers to what they put.
    """

    url: str

    @abstractmethod
    def put(self, key: str, data: Buffer, *, durable: bool = True) -> None:
        """Store ``data`` under ``key`` atomically, replacing any object there.

        ``durable=False`` is for what may be lost in a crash (a cache): the
        object is whole or absent, but need not be on disk when ``put`` returns.
        """

    @abstractmethod
    def get(self, key: str) -> Buffer:
        """The whole object; ``NotFound`` if there is none."""

    @abstractmethod
    def get_range(self, key: str, start: int, length: int) -> Buffer:
        """``length`` bytes from ``start``; ``NotFound`` if there is no object."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in no particular order."""

    def get_many(self, keys: Iterable[str]) -> dict[str, Buffer]:
        """The objects among ``keys`` that exist; a store across a network reads them in
        one round trip, where one ``get`` a key would cost one each."""
        found: dict[str, Buffer] = {}
        for key in keys:
            with contextlib.suppress(NotFound):
                found[key] = self.get(key)
        return found

    def sync(self) -> None:  # noqa: B027 - optional hook, a no-op where puts are durable
        """Make the names of earlier ``put`` calls durable."""

    def touch(self, key: str) -> None:  # noqa: B027 - optional hook
        """Refresh ``key``'s modification time, so garbage collection treats it as new."""

    def map(self, key: str) -> Buffer | None:
        """A zero-copy, read-only view of the object where the backend can give one."""
        return None

    def local_path(self, key: str) -> Path | None:
        """The object's path on the local file system, where it has one."""
        return None

    def lock(
        self, *, exclusive: bool, timeout: float | None = None
    ) -> AbstractContextManager[None]:
        """The store-wide lock: writers hold it shared, garbage collection exclusively.

        A writer holds it from its first chunk until its ref is set, so gc never
        sweeps beside a write in progress. ``timeout`` bounds the wait for the
        exclusive lock (``Conflict`` when it runs out; ``None`` waits as long as
        it takes); shared holders wait for a running gc. This default builds the
        lock from lease objects under ``locks/`` (``weightbase.tensors.objects.leases``);
        a backend with a lock primitive of its own overrides it.
        """
        from weightbase.tensors.objects.leases import LeaseLock

        leases: LeaseLock | None = self.__dict__.get("_leases")
        if leases is None:
            leases = self.__dict__.setdefault("_leases", LeaseLock(self))
        return leases.exclusive(timeout) if exclusive else leases.shared()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and handles."""


# scheme -> (module, class, extra that provides its dependencies)
_BACKENDS: dict[str, tuple[str, str, str | None]] = {
    "file": ("weightbase.tensors.objects.local", "LocalObjectStore", None),
    "s3": ("weightbase.tensors.objects.s3", "S3ObjectStore", "s3"),
}


def open_object_store(url: str | Path) -> ObjectStore:
    """The object store for ``url``: a path or ``file://`` URL, or ``s3://bucket/prefix``."""
    text = str(url)
    scheme = urlsplit(text).scheme if "://" in text else "file"
    if scheme not in _BACKENDS:
        known = ", ".join(f"{s}://" for s in _BACKENDS)
        raise ValidationError(f"unsupported store URL {text!r}; use one of {known}", url=text)
    module_name, class_name, extra = _BACKENDS[scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingExtraError(
            f"the {scheme}:// store needs an optional dependency ({exc.name}); "
            f"install it with: pip install 'weightbase[{extra}]'",
            extra=extra,
        ) from exc
    backend: type[ObjectStore] = getattr(module, class_name)
    return backend.from_url(text)  # type: ignore[attr-defined,no-any-return]
