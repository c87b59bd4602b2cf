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

import json
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from weightbase.errors import NotFound, NotSupported
from weightbase.tensors.codecs import Buffer
from weightbase.tensors.objects import ObjectInfo, ObjectStore, validate_key
from weightbase.tensors.objects.local import LocalObjectStore
from weightbase.tensors.read import chunk_key

if TYPE_CHECKING:
    from weightbase.remote.http import Connection
    from weightbase.remote.transfer import Uploader

__all__ = ["ServerObjects", "StagingObjects"]

_STORE = "/api/v1/store"
_READABLE = ("chunks/", "snapshots/", "index/")
# Index keys asked per ``POST /store/index`` (the server takes up to 10,000).
_INDEX_BATCH = 10_000


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
        if key.startswith("index/"):
            self._know_entry(data)
        return data

    def get_many(self, keys: Iterable[str]) -> dict[str, Buffer]:
        """Index entries in one ``POST /store/index`` a batch; other keys one GET each."""
        keys = list(dict.fromkeys(keys))
        index = [key for key in keys if key.startswith("index/")]
        found = super().get_many(key for key in keys if not key.startswith("index/"))
        for start in range(0, len(index), _INDEX_BATCH):
            batch = index[start : start + _INDEX_BATCH]
            answer = self.connection.post(f"{_STORE}/index", {"keys": batch}, retry=True)
            for key, text in answer["entries"].items():
                if key in batch:
                    data = text.encode("utf-8")
                    found[key] = data
                    self._know_entry(data)
        return found

    def _know_entry(self, data: bytes) -> None:
        """An index entry names a stored tensor's chunks: learn which the server still has."""
        try:
            chunks = json.loads(data)["chunks"]
            digests = {str(ref["d"]) for ref in chunks} | {
                str(base) for ref in chunks for base in ref.get("b", ())
            }
        except (ValueError, KeyError, TypeError):
            return  # a damaged entry is only a missed shortcut, as the writer treats it
        self.know(digests)

    def get_range(self, key: str, start: int, length: int) -> Buffer:
        return memoryview(self.get(key))[start : start + length]

    def exists(self, key: str) -> bool:
        """Whether the server holds ``key`` (asked of it)."""
        if key.startswith("chunks/"):
            self.know([key.rsplit("/", 1)[-1]])
        try:
            self.touch(key)
        except NotFound:
            return False
        return True

    def touch(self, key: str) -> None:
        """Pass if the server is known to hold ``key`` (marked fresh when it was learnt).

        What the server holds is learnt in batches (:meth:`know`: a parent's chunks, an
        index entry's), not asked chunk by chunk: a writer takes any other chunk as
        missing, and the uploader asks, a batch at a time, before it sends one.
        """
        with self._lock:
            if key in self._known:
                return
        if key.startswith("chunks/"):
            raise NotFound(f"chunk {key} is not known to be on {self.connection.url}", key=key)
        self.get(key)

    def knows(self, digest: str) -> bool:
        """Whether the chunk ``digest`` was found on the server (and marked fresh there)."""
        with self._lock:
            return chunk_key(digest) in self._known

    def know(self, digests: Iterable[str]) -> None:
        """Ask in one round trip which of ``digests`` the server holds, and remember those."""
        from weightbase.remote.transfer import missing_digests

        wanted = set(digests)
        lacking = set(missing_digests(self.connection, wanted))
        with self._lock:
            self._known.update(chunk_key(d) for d in wanted - lacking)
            self._known.difference_update(chunk_key(d) for d in lacking)  # gone since

    def forget(self, digests: Iterable[str]) -> None:
        """Take ``digests`` as no longer on the server (a gc took them): ask again next time."""
        with self._lock:
            self._known.difference_update(chunk_key(d) for d in digests)

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
    """Writes to a local folder, reads from it or else from the server.

    With an ``uploader``, each chunk written is sent at once instead of written to
    the folder: the writer puts only chunks it found missing on the server, so the
    upload runs alongside the encoding of the rest, and the chunk is held in memory
    only until its batch is stored.
    """

    def __init__(
        self, server: ServerObjects, folder: Path, *, uploader: Uploader | None = None
    ) -> None:
        self.server = server
        self.local = LocalObjectStore(folder)
        self.url = f"staging:{folder}"
        self.uploader = uploader

    def put(self, key: str, data: Buffer, *, durable: bool = True) -> None:
        if self.uploader is not None and key.startswith("chunks/"):
            self.uploader.send(key.rsplit("/", 1)[-1], bytes(data))
            return
        # Staging is scratch: a crash loses the push, which is then simply run again.
        self.local.put(key, data, durable=False)

    def _uploading(self, key: str) -> bool:
        return (
            self.uploader is not None
            and key.startswith("chunks/")
            and self.uploader.holds(key.rsplit("/", 1)[-1])
        )

    def get(self, key: str) -> Buffer:
        if self.uploader is not None and key.startswith("chunks/"):
            frame = self.uploader.frame(key.rsplit("/", 1)[-1])
            if frame is not None:
                return frame
        try:
            return self.local.get(key)
        except NotFound:
            return self.server.get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, Buffer]:
        keys = list(dict.fromkeys(keys))
        found = self.local.get_many(keys)
        return found | self.server.get_many(key for key in keys if key not in found)

    def get_range(self, key: str, start: int, length: int) -> Buffer:
        return memoryview(self.get(key))[start : start + length]

    def exists(self, key: str) -> bool:
        return self._uploading(key) or self.local.exists(key) or self.server.exists(key)

    def touch(self, key: str) -> None:
        if not self._uploading(key) and not self.local.exists(key):
            self.server.touch(key)

    def delete(self, key: str) -> None:
        self.local.delete(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.local.list(prefix)

    def close(self) -> None:
        if self.uploader is not None:
            self.uploader.close()  # nothing left running once the push is over
        self.local.close()
