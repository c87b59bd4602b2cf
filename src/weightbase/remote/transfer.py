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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from weightbase.errors import Conflict, NotFound
from weightbase.tensors.manifest import Snapshot
from weightbase.tensors.read import chunk_key

if TYPE_CHECKING:
    from weightbase.remote.http import Connection
    from weightbase.remote.objects import StagingObjects

__all__ = ["MISSING_BATCH", "Transfer", "missing_digests", "upload_snapshot"]

_STORE = "/api/v1/store"
#: Digests asked about per ``missing`` request.
MISSING_BATCH = 10_000


@dataclass(slots=True)
class Transfer:
    """What a push sent: chunks and their bytes, the chunks the server already had."""

    sent_chunks: int = 0
    sent_bytes: int = 0
    present_chunks: int = 0
    manifest_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.sent_chunks += 1
            self.sent_bytes += nbytes

    @property
    def total_bytes(self) -> int:
        """Every body byte the push sent: chunks and manifest."""
        return self.sent_bytes + self.manifest_bytes


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
    """Upload what the server lacks of ``snapshot`` from ``staging``, then its manifest."""
    transfer = transfer if transfer is not None else Transfer()
    lacking = missing_digests(connection, snapshot.chunk_digests())
    transfer.present_chunks = len(snapshot.chunk_digests()) - len(lacking)

    def send(digest: str) -> None:
        try:
            frame = bytes(staging.local.get(chunk_key(digest)))
        except NotFound:
            raise Conflict(
                f"chunk {digest} was on the server when this push began and is gone now "
                "(a garbage collection ran); push again",
                digest=digest,
            ) from None
        connection.request(
            "PUT",
            f"{_STORE}/chunks/{digest}",
            content=frame,
            headers={"Content-Type": "application/octet-stream"},
            retry=True,  # addressed by content: sending it twice stores it once
        )
        transfer.add(len(frame))
        if progress is not None:
            progress(len(frame))

    if lacking:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for future in [pool.submit(send, digest) for digest in lacking]:
                future.result()
    manifest = snapshot.to_json()
    transfer.manifest_bytes = len(manifest)
    stored = connection.request(
        "POST",
        f"{_STORE}/snapshots",
        content=manifest,
        headers={"Content-Type": "application/json"},
        retry=True,
    ).json()
    if stored["id"] != snapshot.id:  # pragma: no cover - a server that re-serialises differently
        raise Conflict(f"the server stored manifest {stored['id']}, not {snapshot.id}")
    return transfer
