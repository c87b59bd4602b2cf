"""The server's tensor store as object stores on the client: read over HTTP, written in staging.

``ServerObjects`` reads the content-addressed objects a server serves (chunks,
manifests, index entries) with ``GET /api/v1/store/objects/...``; under a
``TensorStore`` it gives pulls, diffs and exports the same verified reads a
local store does (every chunk is checked against its digest as it is decoded).
It writes nothing.

``StagingObjects`` is what a push writes through: reads fall through to the
server (so a new version is stored as deltas of its parent and shares every
chunk the server holds), writes land in a local folder, from which
:mod:`weightbase.remote.transfer` uploads only the chunks the server lacks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from weightbase.errors import NotFound, NotSupported
from weightbase.tensors.codecs import Buffer
from weightbase.tensors.objects import ObjectInfo, ObjectStore, validate_key
from weightbase.tensors.objects.local import LocalObjectStore

if TYPE_CHECKING:
    from weightbase.remote.http import Connection

__all__ = ["ServerObjects", "StagingObjects"]

_STORE = "/api/v1/store"
_READABLE = ("chunks/", "snapshots/", "index/")


class ServerObjects(ObjectStore):
    """A server's content-addressed objects, read over HTTP (read-only)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.url = f"{connection.url}{_STORE}"
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def get(self, key: str) -> Buffer:
        validate_key(key)
        if not key.startswith(_READABLE):
            raise NotFound(f"no object {key} readable on {self.connection.url}", key=key)
        data = self.connection.get_bytes(f"{_STORE}/objects/{key}")
        with self._lock:
            self._known.add(key)
        return data

    def get_range(self, key: str, start: int, length: int) -> Buffer:
        return memoryview(self.get(key))[start : start + length]

    def exists(self, key: str) -> bool:
        try:
            self.touch(key)
        except NotFound:
            return False
        return True

    def touch(self, key: str) -> None:
        """Whether the server holds a chunk, marking it fresh there; ``NotFound`` if not."""
        with self._lock:
            if key in self._known:
                return
        if key.startswith("chunks/"):
            digest = key.rsplit("/", 1)[-1]
            answer = self.connection.post(f"{_STORE}/missing", {"digests": [digest]}, retry=True)
            if digest in answer["missing"]:
                raise NotFound(f"no chunk {digest} on {self.connection.url}", key=key)
        else:
            self.get(key)
        with self._lock:
            self._known.add(key)

    def know(self, digests: Iterable[str]) -> None:
        """Ask in one round trip which of ``digests`` the server holds, and remember those."""
        from weightbase.remote.transfer import missing_digests

        wanted = set(digests)
        lacking = set(missing_digests(self.connection, wanted))
        with self._lock:
            self._known.update(f"chunks/{d[:2]}/{d}" for d in wanted - lacking)

    def put(self, key: str, data: Buffer, *, durable: bool = True) -> None:
        raise NotSupported(
            "a server's store is written by pushes, which upload only missing chunks; "
            "use wb.models.push or wb.datasets.register"
        )

    def delete(self, key: str) -> None:
        raise NotSupported("a remote workspace cannot delete objects; run gc on the server")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        raise NotSupported("a remote workspace cannot list the server's store")


class StagingObjects(ObjectStore):
    """Writes to a local folder, reads from it or else from the server."""

    def __init__(self, server: ServerObjects, folder: Path) -> None:
        self.server = server
        self.local = LocalObjectStore(folder)
        self.url = f"staging:{folder}"

    def put(self, key: str, data: Buffer, *, durable: bool = True) -> None:
        # Staging is scratch: a crash loses the push, which is then simply run again.
        self.local.put(key, data, durable=False)

    def get(self, key: str) -> Buffer:
        try:
            return self.local.get(key)
        except NotFound:
            return self.server.get(key)

    def get_range(self, key: str, start: int, length: int) -> Buffer:
        return memoryview(self.get(key))[start : start + length]

    def exists(self, key: str) -> bool:
        return self.local.exists(key) or self.server.exists(key)

    def touch(self, key: str) -> None:
        if not self.local.exists(key):
            self.server.touch(key)

    def delete(self, key: str) -> None:
        self.local.delete(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.local.list(prefix)

    def close(self) -> None:
        self.local.close()
