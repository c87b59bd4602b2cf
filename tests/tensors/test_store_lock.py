"""The store lock and the writer-liveness checks that keep gc off writes in progress."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from weightbase.errors import Conflict
from weightbase.tensors import TensorStore
from weightbase.tensors.objects import ObjectStore
from weightbase.tensors.objects.leases import COLLECTORS, WRITERS, LeaseLock
from weightbase.tensors.objects.local import LocalObjectStore, pid_alive, writer_alive


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert pid_alive(1)  # init: alive, though not ours to signal when unprivileged
    assert not pid_alive(_dead_pid())
    assert not pid_alive(0)
    assert not pid_alive(-1)


def test_writer_alive_reads_the_pid_from_the_temporary_name() -> None:
    assert writer_alive(f"0123abcd-{os.getpid()}-7.part")
    assert not writer_alive(f"0123abcd-{_dead_pid()}-7.part")
    assert not writer_alive("0123abcd-7.part")  # an older form: no pid, writer unknown
    assert not writer_alive("0123abcd-x1-7.part")


def test_gc_keeps_the_temporary_file_of_a_live_writer(tmp_path: Path) -> None:
    store = TensorStore.open(tmp_path / "store")
    tmp = tmp_path / "store" / "tmp"
    live = tmp / f"feed-{os.getpid()}-0.part"
    dead = tmp / f"feed-{_dead_pid()}-0.part"
    old = time.time() - 3600
    for path in (live, dead):
        path.write_bytes(b"half a chunk")
        os.utime(path, (old, old))
    report = store.gc(grace_seconds=0)
    assert report.removed_temporary == 1
    assert live.exists()
    assert not dead.exists()


def test_a_put_in_flight_survives_gc_with_no_grace(tmp_path: Path) -> None:
    """gc between a put's temporary file and its rename leaves the put to finish."""

    class Paused(LocalObjectStore):
        def _ensure_dir(self, directory: str) -> None:
            # the temporary file is written and synced; gc runs before the rename
            TensorStore(LocalObjectStore(self.root)).gc(grace_seconds=0)
            super()._ensure_dir(directory)

    objects = Paused(tmp_path / "store")
    objects.put("refs/x", b"payload")
    assert objects.get("refs/x") == b"payload"


# -- the lease lock (the default for stores without a lock primitive, such as S3) -----------


def test_lease_lock_keeps_gc_out_while_a_writer_holds_it(object_store: ObjectStore) -> None:
    writers = LeaseLock(object_store, poll=0.05)
    collector = LeaseLock(object_store, poll=0.05)
    with writers.shared(), writers.shared():  # nested holds share one lease
        assert len(list(object_store.list(WRITERS))) == 1
        with pytest.raises(Conflict), collector.exclusive(timeout=0.3):
            pass
        assert list(object_store.list(COLLECTORS)) == []  # it withdrew its lease
    assert list(object_store.list(WRITERS)) == []
    with collector.exclusive(timeout=0.3):
        assert len(list(object_store.list(COLLECTORS))) == 1
    assert list(object_store.list("locks/")) == []


def test_lease_lock_makes_a_writer_wait_for_a_running_gc(object_store: ObjectStore) -> None:
    writers = LeaseLock(object_store, poll=0.05)
    collector = LeaseLock(object_store, poll=0.05)
    events: list[str] = []
    entered = threading.Event()

    def write() -> None:
        entered.set()
        with writers.shared():
            events.append("write")

    with collector.exclusive(timeout=1):
        thread = threading.Thread(target=write)
        thread.start()
        entered.wait()
        time.sleep(0.5)
        events.append("gc done")
    thread.join(timeout=30)
    assert events == ["gc done", "write"]


def test_lease_of_a_dead_holder_expires(tmp_path: Path) -> None:
    objects = LocalObjectStore(tmp_path / "store")
    objects.put(f"{WRITERS}crashed-1", b"1\n")
    stale = time.time() - 60
    path = objects.local_path(f"{WRITERS}crashed-1")
    assert path is not None
    os.utime(path, (stale, stale))
    with LeaseLock(objects, ttl=10, poll=0.05).exclusive(timeout=0.5):
        pass  # the crashed writer's lease, unrenewed for longer than the ttl, does not count
    assert list(objects.list("locks/")) == []  # and the gc that got the lock removed it
    objects.put(f"{WRITERS}running-1", b"1\n")  # renewed just now: a live writer's
    with pytest.raises(Conflict), LeaseLock(objects, ttl=10, poll=0.05).exclusive(timeout=0.3):
        pass
    assert [info.key for info in objects.list("locks/")] == [f"{WRITERS}running-1"]


def test_store_lock_on_s3_is_the_lease_lock(s3_url: str) -> None:
    with TensorStore.open(s3_url) as store:
        with store.objects.lock(exclusive=False):
            assert len(list(store.objects.list(WRITERS))) == 1
        assert list(store.objects.list("locks/")) == []
