"""Moving a snapshot to a server: ask which chunks it lacks, upload those, then the manifest.

``upload_snapshot`` is resumable by construction: every step is addressed by
content, so a push that died half-way and is run again asks again which chunks
are missing and sends only those. Uploads run in parallel; each is verified by
the server against its digest, and retried with backoff when the connection
drops. Nothing is visible on the server until the caller commits the manifest
as a version.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from weightbase.errors import Conflict, NotFound
from weightbase.tensors.manifest import Snapshot
from weightbase.tensors.read import chunk_key

if TYPE_CHECKING:
    from weightbase.remote.http import Connection
    from weightbase.remote.objects import StagingObjects

__all__ = [
    "BATCH_BYTES",
    "MISSING_BATCH",
    "Transfer",
    "Uploader",
    "missing_digests",
    "put_chunks",
    "upload_snapshot",
]

_STORE = "/api/v1/store"
#: Digests asked about per ``missing`` request.
MISSING_BATCH = 10_000
#: About how many bytes of chunks one upload request carries (the server takes up to 48 MiB).
BATCH_BYTES = 8 << 20


@dataclass(slots=True)
class Transfer:
    """What a push sent: chunks and their bytes, the chunks the server already had."""

    sent_chunks: int = 0
    sent_bytes: int = 0
    present_chunks: int = 0
    manifest_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _sent: set[str] = field(default_factory=set, repr=False)

    def add(self, digest: str, nbytes: int) -> None:
        with self._lock:
            if digest in self._sent:
                return
            self._sent.add(digest)
            self.sent_chunks += 1
            self.sent_bytes += nbytes

    def sent(self, digest: str) -> bool:
        """Whether this transfer sent the chunk ``digest``."""
        with self._lock:
            return digest in self._sent

    @property
    def total_bytes(self) -> int:
        """Every body byte the push sent: chunks and manifest."""
        return self.sent_bytes + self.manifest_bytes


class Uploader:
    """Chunks sent while the snapshot is still being written, in batches.

    ``send`` adds one chunk to the batch being gathered; a full batch (``batch_bytes``)
    goes to a worker, which asks the server which of its chunks it lacks and uploads
    those in one ``POST /store/chunks``. At most ``workers * 2`` batches wait, so a
    writer faster than the network blocks rather than filling memory. A chunk is held
    in memory only until its batch is stored (:meth:`frame` reads it meanwhile), so
    a push writes no chunk to local disk. ``finish`` sends the last batch, waits for
    all and raises the first failure: a push whose upload failed fails, and running
    it again sends only what the server still lacks.
    """

    def __init__(
        self,
        connection: Connection,
        transfer: Transfer,
        *,
        workers: int = 4,
        batch_bytes: int | None = None,
    ) -> None:
        self._http = connection
        self.transfer = transfer
        self.batch_bytes = BATCH_BYTES if batch_bytes is None else batch_bytes
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers))
        self._slots = threading.BoundedSemaphore(max(1, workers) * 2)
        self._futures: list[Future[None]] = []
        self._batch: dict[str, bytes] = {}
        self._batch_bytes = 0
        self._held: dict[str, bytes] = {}  # sent, not yet stored: readable through frame()
        self._stored: set[str] = set()
        self._lock = threading.Lock()

    def send(self, digest: str, frame: bytes) -> None:
        with self._lock:
            if digest in self._held or digest in self._stored:
                return
            self._held[digest] = frame
            self._batch[digest] = frame
            self._batch_bytes += len(frame)
            if self._batch_bytes < self.batch_bytes:
                return
            batch = self._take()
        self._submit(batch)

    def _take(self) -> dict[str, bytes]:
        batch, self._batch, self._batch_bytes = self._batch, {}, 0
        return batch

    def _submit(self, batch: dict[str, bytes]) -> None:
        self._slots.acquire()
        try:
            future = self._pool.submit(self._upload, batch)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        with self._lock:
            self._futures.append(future)

    def _upload(self, batch: dict[str, bytes]) -> None:
        lacking = missing_digests(self._http, batch)
        put_chunks(self._http, [(digest, batch[digest]) for digest in lacking], self.batch_bytes)
        for digest in lacking:
            self.transfer.add(digest, len(batch[digest]))
        with self._lock:
            self._stored.update(batch)
            for digest in batch:
                del self._held[digest]

    def holds(self, digest: str) -> bool:
        """Whether ``digest`` was given to this uploader (and, once it finishes, is stored)."""
        with self._lock:
            return digest in self._held or digest in self._stored

    def frame(self, digest: str) -> bytes | None:
        """The frame of ``digest`` while it waits to be stored, else None."""
        with self._lock:
            return self._held.get(digest)

    def finish(self) -> None:
        """Send the last batch, wait for every upload; raise the first that failed."""
        with self._lock:
            batch = self._take()
        if batch:
            self._submit(batch)
        with self._lock:
            futures, self._futures = self._futures, []
        for future in futures:
            future.result()

    def close(self) -> None:
        """Drop what is still queued and stop the workers (a failed push)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def put_chunks(connection: Connection, chunks: list[tuple[str, bytes]], batch_bytes: int) -> None:
    """Upload chunk frames in bodies of about ``batch_bytes``; the server verifies each."""
    body: list[bytes] = []
    size = 0

    def flush() -> None:
        nonlocal body, size
        if body:
            connection.request(
                "POST",
                f"{_STORE}/chunks",
                content=b"".join(body),
                headers={"Content-Type": "application/octet-stream"},
                retry=True,  # addressed by content: sending it twice stores it once
            )
            body, size = [], 0

    for digest, frame in chunks:
        if size and size + len(frame) > batch_bytes:
            flush()
        body += [digest.encode("ascii"), len(frame).to_bytes(8, "big"), frame]
        size += len(frame) + 72
    flush()


def missing_digests(connection: Connection, digests: Iterable[str]) -> list[str]:
    """Which of ``digests`` the server lacks (those it holds are marked fresh there)."""
    wanted = sorted(set(digests))
    lacking: list[str] = []
    for start in range(0, len(wanted), MISSING_BATCH):
        batch = wanted[start : start + MISSING_BATCH]
        answer = connection.post(f"{_STORE}/missing", {"digests": batch}, retry=True)
        lacking.extend(answer["missing"])
    return lacking


def upload_snapshot(
    connection: Connection,
    staging: StagingObjects,
    snapshot: Snapshot,
    *,
    workers: int = 4,
    transfer: Transfer | None = None,
    progress: Callable[[int], None] | None = None,
) -> Transfer:
    """Upload what the server still lacks of ``snapshot`` from ``staging``, then its manifest.

    Chunks ``staging``'s uploader sent while the snapshot was written are waited for
    first; then the server is asked what is missing, so nothing is sent twice.
    """
    transfer = transfer if transfer is not None else Transfer()
    early = staging.uploader
    if early is not None:
        early.finish()
        transfer = early.transfer
    needed = snapshot.chunk_digests()
    if early is not None and all(early.holds(d) or staging.server.knows(d) for d in needed):
        # Every chunk was stored by this push or found on the server by it: nothing to ask.
        # Should one have gone since (a gc), the manifest is refused with a 409 naming it.
        lacking = []
    else:
        lacking = missing_digests(connection, needed)
    transfer.present_chunks += len(needed - set(lacking)) - sum(map(transfer.sent, needed))

    if lacking:
        frames = []
        for digest in lacking:
            try:
                frames.append((digest, bytes(staging.local.get(chunk_key(digest)))))
            except NotFound:
                if early is not None and early.holds(digest):
                    raise Conflict(
                        f"chunk {digest}, uploaded by this push, is not on the server (a "
                        "garbage collection ran): push again",
                        digest=digest,
                    ) from None
                raise Conflict(
                    f"chunk {digest} was on the server when this push began and is gone "
                    "now (a garbage collection ran); push again",
                    digest=digest,
                ) from None
        rest = Uploader(connection, transfer, workers=workers)
        try:
            for digest, frame in frames:
                rest.send(digest, frame)
            rest.finish()
        finally:
            rest.close()
        if progress is not None:
            progress(sum(len(frame) for _, frame in frames))
    manifest = snapshot.to_json()
    transfer.manifest_bytes += len(manifest)
    try:
        stored = connection.request(
            "POST",
            f"{_STORE}/snapshots",
            content=manifest,
            headers={"Content-Type": "application/json"},
            retry=True,
        ).json()
    except Conflict as exc:
        gone = exc.context.get("missing")
        if not isinstance(gone, list) or not gone:
            raise
        staging.server.forget(str(digest) for digest in gone)
        raise Conflict(
            f"{len(gone)} chunks were on the server when this push began and are gone now "
            f"(a garbage collection ran; the first is {gone[0]}): push again",
            missing=gone,
        ) from None
    if stored["id"] != snapshot.id:  # pragma: no cover - a server that re-serialises differently
        raise Conflict(f"the server stored manifest {stored['id']}, not {snapshot.id}")
    return transfer
