"""The store lock for object stores without a lock primitive, built from put, list and delete.

Writers hold it shared from their first chunk to their ref, garbage collection
exclusively; each holder keeps a lease object under ``locks/`` that it renews
while it holds the lock. A lease not renewed for ``ttl`` seconds belongs to a
process that died and is ignored.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from weightbase.errors import Conflict

if TYPE_CHECKING:
    from weightbase.tensors.objects import ObjectStore

__all__ = ["LeaseLock"]

WRITERS = "locks/writers/"
COLLECTORS = "locks/gc/"


class LeaseLock:
    """Mutual exclusion between writers and gc over a strongly consistent object store.

    Each side first puts its own lease, then lists the other side's: of two
    that start together at least one sees the other (a put is visible to every
    later list, as on S3 since 2020). A writer that sees a live gc lease waits
    for it to go; a gc that sees a live writer lease withdraws and tries again,
    so writers are never kept out for longer than one gc run. Ages are read off
    the store's own clock (every lease's modification time against the holder's
    own lease), so the machines' clocks need not agree.

    Shared holds are counted per process: the first thread in takes the lease
    and the last one out returns it.
    """

    def __init__(self, objects: ObjectStore, *, ttl: float = 120.0, poll: float = 0.2) -> None:
        self.objects = objects
        self.ttl = ttl
        self.poll = poll
        self._mutex = threading.Lock()
        self._holders = 0
        self._pid = os.getpid()
        self._lease: _Lease | None = None

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock as one writer among any number."""
        self._enter_shared()
        try:
            yield
        finally:
            self._exit_shared()

    def _enter_shared(self) -> None:
        with self._mutex:
            if self._pid != os.getpid():  # a forked child: its parent's lease is not its own
                self._pid, self._holders, self._lease = os.getpid(), 0, None
            if self._holders == 0:
                lease = _Lease(self.objects, WRITERS, self.ttl)
                try:
                    while self._live(COLLECTORS, lease):
                        time.sleep(self.poll)
                except BaseException:
                    lease.release()
                    raise
                self._lease = lease
            self._holders += 1

    def _exit_shared(self) -> None:
        with self._mutex:
            self._holders -= 1
            if self._holders == 0 and self._lease is not None:
                self._lease.release()
                self._lease = None

    @contextlib.contextmanager
    def exclusive(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the lock alone; ``Conflict`` if writers kept it for ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            lease = _Lease(self.objects, COLLECTORS, self.ttl)
            if not self._live(WRITERS, lease):
                self._clear_lapsed(lease)
                break
            lease.release()
            if deadline is not None and time.monotonic() >= deadline:
                raise Conflict(
                    f"writers held the lock of {self.objects.url} for {timeout:g} s",
                    url=self.objects.url,
                )
            time.sleep(self.poll)
        try:
            yield
        finally:
            lease.release()

    def _clear_lapsed(self, own: _Lease) -> None:
        """Remove the leases of holders that died holding them (unrenewed for a ttl)."""
        now = own.renewed_at()
        if now is None:
            return
        for info in list(self.objects.list("locks/")):
            if info.key != own.key and info.mtime <= now - self.ttl:
                self.objects.delete(info.key)

    def _live(self, prefix: str, own: _Lease) -> bool:
        """Whether a lease under ``prefix`` other than ``own`` was renewed within the ttl."""
        now = own.renewed_at()
        for info in self.objects.list(prefix):
            if info.key == own.key:
                continue
            if now is None or info.mtime > now - self.ttl:
                return True
        return False


class _Lease:
    """One holder's lease object, renewed from a thread until released."""

    def __init__(self, objects: ObjectStore, prefix: str, ttl: float) -> None:
        self.objects = objects
        self.key = f"{prefix}{uuid.uuid4().hex}-{os.getpid()}"
        self._stop = threading.Event()
        self.objects.put(self.key, f"{os.getpid()}\n".encode())
        self._renewer = threading.Thread(
            target=self._renew, args=(ttl / 4,), name="wb-lease", daemon=True
        )
        self._renewer.start()

    def _renew(self, every: float) -> None:
        while not self._stop.wait(every):
            with contextlib.suppress(Exception):  # a missed renewal is retried; ttl allows 3
                self.objects.put(self.key, f"{os.getpid()}\n".encode())

    def renewed_at(self) -> float | None:
        """The lease's modification time on the store's clock."""
        for info in self.objects.list(self.key):
            if info.key == self.key:
                return info.mtime
        return None

    def release(self) -> None:
        self._stop.set()
        self._renewer.join()
        self.objects.delete(self.key)
