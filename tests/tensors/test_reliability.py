"""Crash safety, corruption detection and garbage collection beside running writers.

The crash and concurrency tests run real child processes (``sys.executable``)
that write to the same store as the test; their tensors derive from a seed kept
in each snapshot's metadata, so the test can regenerate what every snapshot
must hold and compare bit for bit.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from weightbase.errors import Conflict, IntegrityError
from weightbase.tensors import Snapshot, TensorStore, WriteStats
from weightbase.tensors.maintenance import GcReport, gc
from weightbase.tensors.objects import ObjectInfo
from weightbase.tensors.objects.local import LocalObjectStore
from weightbase.tensors.read import chunk_key

KiB = 1024
CHUNK = 64 * KiB

# Shared by the child processes and the test: what a snapshot written from a seed holds.
_CONTENT = """
import numpy as np


def tensors_for(seed):
    rng = np.random.default_rng(seed)
    # the same few base tensors recur, so snapshots share chunks and deltas are small
    shared = np.random.default_rng(seed % 4).standard_normal(40_000).astype(np.float32)
    tuned = shared.copy()
    tuned[rng.integers(0, tuned.size, 20)] += np.float32(1e-3)
    return {
        "shared": shared,
        "tuned": tuned,
        "own": rng.standard_normal((int(rng.integers(1, 150)), 300)).astype(np.float32),
        "bias": rng.standard_normal(int(rng.integers(1, 100))).astype(np.float32),
        "step": np.array(seed, dtype=np.int64),
    }
"""

_KILLED_WRITER = """
import sys

from content import tensors_for
from weightbase.tensors import TensorStore

url, seed = sys.argv[1], int(sys.argv[2])
store = TensorStore.open(url, chunk_size=64 * 1024)
parent = None
print("ready", flush=True)
while True:
    tensors = tensors_for(seed)
    # the test counts a kill only when it lands between these two lines
    print("start", seed, flush=True)
    snapshot = store.write(
        tensors, parent=parent, metadata={"seed": str(seed)}, ref=f"run/{seed % 5}"
    )
    print("done", seed, flush=True)
    parent = snapshot if seed % 3 else None
    seed += 1
"""

_WRITER_BESIDE_GC = """
import sys
import time

from content import tensors_for
from weightbase.tensors import TensorStore

url, seconds, pause = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
store = TensorStore.open(url, chunk_size=64 * 1024)
deadline = time.monotonic() + seconds
parent = None
seed = 0
while time.monotonic() < deadline:
    tensors = tensors_for(seed)
    snapshot = store.write(
        tensors, parent=parent, metadata={"seed": str(seed)}, ref=f"live/{seed % 3}"
    )
    # committed: it reads back whole and verified while its ref holds it
    got = store.read(snapshot)
    if any(got[name].tobytes() != array.tobytes() for name, array in tensors.items()):
        sys.exit(f"snapshot {seed} read back wrong")
    if seed % 4 == 3:
        # drop the ref of the snapshot the next one deltas against: its chain must survive gc
        store.delete_ref(f"live/{seed % 3}")
    parent = snapshot
    seed += 1
    time.sleep(pause)
print(seed, flush=True)
"""


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "content.py").write_text(_CONTENT)
    (folder / "killed_writer.py").write_text(_KILLED_WRITER)
    (folder / "writer_beside_gc.py").write_text(_WRITER_BESIDE_GC)
    return folder


@pytest.fixture
def content(scripts: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("content", scripts / "content.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _child(scripts: Path, name: str, *args: str, **options: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(scripts), *sys.path])}
    return subprocess.Popen(
        [sys.executable, str(scripts / name), *args], env=env, text=True, **options
    )


def _assert_refs_read_back(store: TensorStore, tensors_for: Callable[[int], Any]) -> int:
    """Every snapshot a ref reaches holds exactly what its seed says; returns how many."""
    refs = store.refs()
    for name, target in refs.items():
        snapshot = store.snapshot(target)
        expected = tensors_for(int(snapshot.metadata["seed"]))
        got = store.read(snapshot)
        assert set(got) == set(expected), name
        for tensor, array in expected.items():
            assert got[tensor].dtype == array.dtype
            assert got[tensor].shape == array.shape
            assert got[tensor].tobytes() == array.tobytes(), (name, tensor)
    return len(refs)


def _age(store: TensorStore, backend: str) -> None:
    """Make everything stored so far older than whatever is stored next."""
    if backend == "local":
        past = time.time() - 3600
        for info in store.objects.list():
            path = store.objects.local_path(info.key)
            assert path is not None
            os.utime(path, (past, past))
    else:  # S3 keeps its own clock, in whole seconds: step past the next full second
        time.sleep(1.1)


def _grace_between(store: TensorStore, old: set[str], young: set[str]) -> float:
    """A grace period that makes ``old`` objects collectable and keeps ``young`` ones."""
    mtimes = {info.key: info.mtime for info in store.objects.list()}
    newest_old = max(mtimes[key] for key in old)
    oldest_young = min(mtimes[key] for key in young)
    assert newest_old < oldest_young
    return time.time() - (newest_old + oldest_young) / 2


# -- (a) a writer killed at random moments -----------------------------------------------------


@pytest.mark.slow
def test_writer_killed_at_random_moments_leaves_a_consistent_store(
    tmp_path: Path, scripts: Path, content: ModuleType
) -> None:
    url = str(tmp_path / "store")
    rng = np.random.default_rng(2024)
    mid_write = rounds = 0
    while mid_write < 20 and rounds < 40:
        child = _child(
            scripts,
            "killed_writer.py",
            url,
            str(1000 * rounds),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        rounds += 1
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        child.send_signal(signal.SIGKILL)
        stdout, stderr = child.communicate()
        assert child.returncode == -signal.SIGKILL, stderr  # it was still writing, not crashed
        # everything the child printed before it died is in the pipe: the kill landed inside
        # a write exactly when its last line says a write started and none finished since
        mid_write += _killed_mid_write(stdout)
    assert mid_write >= 20, f"only {mid_write} of {rounds} kills landed inside a write"

    with TensorStore.open(url) as store:
        report = store.fsck()
        assert report.ok, report.problems
        assert report.snapshots_checked > 0
        assert _assert_refs_read_back(store, content.tensors_for) >= 3
        leftovers = len(list(store.objects.list_temporary()))  # type: ignore[attr-defined]
        # temporary files of interrupted puts are not problems; gc clears them
        collected = store.gc(grace_seconds=0)
        assert collected.removed_temporary == leftovers
        assert list(store.objects.list_temporary()) == []  # type: ignore[attr-defined]
        assert store.fsck().ok
        assert _assert_refs_read_back(store, content.tensors_for) >= 3


def _killed_mid_write(stdout: str) -> bool:
    """Whether a killed writer's output ends inside a write ("start" with no "done")."""
    lines = stdout.split()
    events = [word for word in lines if word in ("start", "done")]
    return bool(events) and events[-1] == "start"


def test_a_kill_counts_only_inside_a_write() -> None:
    assert _killed_mid_write("start\n0\ndone\n0\nstart\n1\n")
    assert not _killed_mid_write("start\n0\ndone\n0\n")
    assert not _killed_mid_write("")  # killed before its first write


# -- (b) corruption ---------------------------------------------------------------------------


def _flip_byte(store: TensorStore, backend: str, key: str, position: int) -> None:
    if backend == "local":
        path = store.objects.local_path(key)
        assert path is not None
        with open(path, "r+b") as handle:  # in place, the way bit rot happens
            handle.seek(position % path.stat().st_size)
            byte = handle.read(1)
            handle.seek(-1, os.SEEK_CUR)
            handle.write(bytes([byte[0] ^ 0x01]))
    else:
        data = bytearray(store.objects.get(key))
        data[position] ^= 0x01
        store.objects.put(key, bytes(data))


@pytest.fixture
def store(store_url: str) -> Iterator[TensorStore]:
    with TensorStore.open(store_url, chunk_size=CHUNK) as opened:
        yield opened


def _model(seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "w": rng.standard_normal((600, 100)).astype(np.float32),  # 240 kB, 4 chunks
        "b1": rng.standard_normal(100).astype(np.float32),
        "b2": rng.standard_normal(100).astype(np.float32),
    }


@pytest.mark.parametrize(
    ("codec", "position"),
    [("raw", 100), ("zstd", -1), ("zstd", 0)],
    ids=["raw-payload", "zstd-last-byte", "zstd-magic"],
)
def test_flipped_byte_is_caught_on_read_and_by_fsck(
    store: TensorStore, backend: str, codec: str, position: int
) -> None:
    arrays = _model()
    snapshot = store.write(arrays, ref="m", codec=codec)
    entry = snapshot.tensors["w"]
    damaged = entry.chunks[1].digest
    _flip_byte(store, backend, chunk_key(damaged), position)

    with TensorStore.open(store.objects.url) as fresh:
        with pytest.raises(IntegrityError) as caught:
            fresh.read("m")
        assert caught.value.tensor == "w"
        assert caught.value.chunk == damaged
        assert damaged[:16] in str(caught.value)
        with pytest.raises(IntegrityError):
            fresh.read_tensor("m", "w")
        # rows in the healthy chunks still read, and the other tensors do too
        rows = fresh.read_tensor("m", "w", rows=slice(0, 10))
        assert rows.tobytes() == arrays["w"][:10].tobytes()
        assert fresh.read("m", ["b1", "b2"])["b2"].tobytes() == arrays["b2"].tobytes()

        report = fresh.fsck()
        assert not report.ok
        (problem,) = report.problems
        assert problem.kind == "corrupt-chunk"
        assert problem.key == chunk_key(damaged)
        assert problem.tensors == ("w",)
        assert problem.snapshots == (snapshot.id,)


def test_corrupt_pack_names_every_tensor_in_it(store: TensorStore, backend: str) -> None:
    arrays = {f"bias.{i}": np.full(10, i, dtype=np.float32) for i in range(3)}
    snapshot = store.write(arrays, ref="m")
    packs = {entry.chunks[0].digest for entry in snapshot.tensors.values()}
    pack = packs.pop()
    members = sorted(n for n, e in snapshot.tensors.items() if e.chunks[0].digest == pack)
    _flip_byte(store, backend, chunk_key(pack), 30)
    report = store.fsck()
    (problem,) = report.problems
    assert problem.kind == "corrupt-chunk"
    assert list(problem.tensors) == members
    with pytest.raises(IntegrityError) as caught:
        store.read(snapshot, [members[0]])
    assert caught.value.chunk == pack


def test_corrupt_delta_base_is_named_when_reading_the_child(
    store: TensorStore, backend: str
) -> None:
    arrays = _model()
    base = store.write(arrays, ref="base")
    tuned = {**arrays, "w": arrays["w"] + np.float32(1e-6)}
    child = store.write(tuned, parent=base, ref="tuned", codec="delta")
    ref = child.tensors["w"].chunks[2]
    assert ref.bases == (base.tensors["w"].chunks[2].digest,)
    _flip_byte(store, backend, chunk_key(ref.bases[0]), -1)
    with pytest.raises(IntegrityError) as caught:
        store.read("tuned", ["w"])
    assert caught.value.tensor == "w"
    assert caught.value.chunk == ref.bases[0]
    (problem,) = store.fsck().problems
    assert problem.kind == "corrupt-chunk"
    assert set(problem.snapshots) == {base.id, child.id}


def test_deleted_chunk_is_reported_missing(store: TensorStore) -> None:
    snapshot = store.write(_model(), ref="m")
    gone = snapshot.tensors["w"].chunks[0].digest
    store.objects.delete(chunk_key(gone))
    with pytest.raises(IntegrityError) as caught:
        store.read("m")
    assert caught.value.tensor == "w"
    assert caught.value.chunk == gone
    assert caught.value.context["missing"] is True
    report = store.fsck()
    (problem,) = report.problems
    assert problem.kind == "missing-chunk"
    assert problem.key == chunk_key(gone)
    assert problem.tensors == ("w",)


def test_corrupt_manifest_and_dangling_ref(store: TensorStore) -> None:
    damaged = store.write(_model(1), ref="damaged")
    removed = store.write(_model(2), ref="removed")
    healthy = store.write(_model(3), ref="healthy")
    key = f"snapshots/{damaged.id}"
    store.objects.put(key, bytes(store.objects.get(key)).replace(b'"F32"', b'"F64"', 1))
    store.objects.delete(f"snapshots/{removed.id}")
    with TensorStore.open(store.objects.url) as fresh:
        with pytest.raises(IntegrityError):
            fresh.read("damaged")
        assert fresh.read("healthy")["w"].tobytes() == _model(3)["w"].tobytes()
        report = fresh.fsck()
    kinds = sorted((p.kind, p.key) for p in report.problems)
    assert ("corrupt-manifest", key) in kinds
    assert ("dangling-ref", "refs/removed") in kinds
    assert all(kind != "corrupt-chunk" for kind, _ in kinds)
    assert healthy.id not in {p.key.rsplit("/", 1)[-1] for p in report.problems}


def test_fsck_of_a_healthy_store_is_clean(store: TensorStore) -> None:
    base = store.write(_model(), ref="base")
    store.write({**_model(), "w": _model()["w"] * 2}, parent=base, ref="child")
    report = store.fsck()
    assert report.ok
    assert report.problems == ()
    assert report.snapshots_checked == 2
    assert report.chunks_checked == len(list(store.objects.list("chunks/")))
    assert report.bytes_checked == sum(i.size for i in store.objects.list("chunks/"))


# -- (c) garbage collection ----------------------------------------------------------------------


def _chunk_keys(store: TensorStore) -> set[str]:
    return {info.key for info in store.objects.list("chunks/")}


def _keys_of(snapshot: Snapshot) -> set[str]:
    return {chunk_key(d) for d in snapshot.chunk_digests()}


def test_gc_removes_exactly_the_old_unreachable_objects(store: TensorStore, backend: str) -> None:
    rng = np.random.default_rng(5)
    shared = rng.standard_normal(CHUNK // 2).astype(np.float32)
    gone = rng.standard_normal(CHUNK).astype(np.float32)
    old = store.write({"shared": shared, "gone": gone})
    live = store.write(
        {"shared": shared, "kept": rng.standard_normal(CHUNK).astype(np.float32)}, ref="live"
    )
    store.delete_ref(f"snapshots/{old.id}")
    before = {info.key for info in store.objects.list()}
    _age(store, backend)
    young = store.write({"young": rng.standard_normal(CHUNK).astype(np.float32)})
    store.delete_ref(f"snapshots/{young.id}")
    grace = _grace_between(store, before, _keys_of(young) | {f"snapshots/{young.id}"})

    doomed = _keys_of(old) - _keys_of(live)
    assert doomed
    assert not doomed & _keys_of(young)
    everything = sorted(info.key for info in store.objects.list())
    preview = store.gc(grace_seconds=grace, dry_run=True)
    assert preview.dry_run
    assert sorted(info.key for info in store.objects.list()) == everything  # nothing removed
    assert preview.removed_chunks == len(doomed)
    assert preview.removed_snapshots == 1

    report = store.gc(grace_seconds=grace)
    assert report.removed_chunks == len(doomed)
    assert report.removed_snapshots == 1
    assert report.live_snapshots == 1
    assert report.kept_young == len(_keys_of(young)) + 1  # its chunks and its manifest
    assert _chunk_keys(store) == _keys_of(live) | _keys_of(young)
    assert sorted(store.snapshots()) == sorted([live.id, young.id])
    assert store.read("live")["kept"].shape == (CHUNK,)
    assert store.fsck().ok

    # what gc removed can be written again: no stale shortcut may point at removed chunks
    stats = WriteStats()
    again = store.write({"shared": shared, "gone": gone}, ref="again", stats=stats)
    assert again.id == old.id
    assert stats.new_bytes > 0
    assert store.read("again")["gone"].tobytes() == gone.tobytes()
    assert store.fsck().ok

    # with no grace at all, the unreferenced young snapshot goes too
    later = store.gc(grace_seconds=0)
    assert later.removed_snapshots == 1
    assert sorted(store.snapshots()) == sorted([live.id, again.id])
    assert _chunk_keys(store) == _keys_of(live) | _keys_of(again)


def test_gc_keeps_the_bases_of_a_live_delta_chain(store: TensorStore) -> None:
    arrays = _model()
    base = store.write(arrays, ref="base")
    versions = [arrays]
    snapshots = [base]
    for step in range(1, 3):
        versions.append({**versions[-1], "w": versions[-1]["w"] + np.float32(step * 1e-6)})
        snapshots.append(store.write(versions[-1], parent=snapshots[-1], codec="delta"))
    last = snapshots[-1]
    assert all(len(ref.bases) == 2 for ref in last.tensors["w"].chunks)
    store.set_ref("tip", last)
    for snapshot in snapshots[1:]:
        store.delete_ref(f"snapshots/{snapshot.id}")
    store.delete_ref("base")
    report = store.gc(grace_seconds=0)
    assert report.removed_snapshots == 2
    assert list(store.snapshots()) == [last.id]
    assert _keys_of(last) <= _chunk_keys(store)
    with TensorStore.open(store.objects.url) as fresh:
        assert fresh.read("tip")["w"].tobytes() == versions[-1]["w"].tobytes()
        assert fresh.fsck().ok


def test_gc_keeps_the_chunks_of_a_manifest_it_keeps(tmp_path: Path) -> None:
    """An unreferenced manifest younger than the grace period still reads after gc."""
    store = TensorStore.open(tmp_path / "store", chunk_size=CHUNK)
    arrays = _model()
    pending = store.write(arrays)
    store.delete_ref(f"snapshots/{pending.id}")
    # its chunks were stored a while ago, its manifest just now (as for a slow writer)
    past = time.time() - 3600
    for info in store.objects.list("chunks/"):
        path = store.objects.local_path(info.key)
        assert path is not None
        os.utime(path, (past, past))
    report = store.gc(grace_seconds=60)
    assert report.removed_chunks == 0
    assert report.removed_snapshots == 0
    assert report.kept_young == len(_keys_of(pending)) + 1
    store.set_ref("now-wanted", pending.id)
    assert store.read("now-wanted")["w"].tobytes() == arrays["w"].tobytes()
    assert store.fsck().ok


class _RefDeletedWhileListing(LocalObjectStore):
    """A local store where another process deletes ``refs/gone`` just after it is listed."""

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        infos = list(super().list(prefix))
        if any(info.key == "refs/gone" for info in infos):
            self.delete("refs/gone")
        return iter(infos)


def test_refs_deleted_concurrently_do_not_break_listing_or_gc(tmp_path: Path) -> None:
    store = TensorStore(_RefDeletedWhileListing(tmp_path / "store"))
    kept = store.write({"w": np.ones(4, np.float32)}, ref="kept")
    store.write({"w": np.zeros(4, np.float32)}, ref="gone")
    assert store.refs() == {"kept": kept.id}
    store.set_ref("gone", kept)
    assert store.gc(grace_seconds=0).live_snapshots == 1
    store.set_ref("gone", kept)
    assert store.fsck().ok


@pytest.mark.parametrize("when", ["first", "last"])
def test_gc_started_during_a_write_waits_for_it_and_keeps_its_delta_bases(
    tmp_path: Path, when: str
) -> None:
    """A gc that starts while a write is in progress sweeps only after its ref is set.

    The parent is unreferenced and old, so a gc that swept mid-write would take
    the chunks the new snapshot's deltas are taken against.
    """
    store = TensorStore.open(tmp_path / "store", chunk_size=CHUNK, workers=1)
    arrays = _model()
    parent = store.write(arrays, ref="parent")
    store.delete_ref("parent")
    _age(store, "local")
    tuned = {**arrays, "w": arrays["w"] + np.float32(1e-6)}
    total = sum(a.nbytes for a in tuned.values())
    written = [0]
    write_done = threading.Event()
    swept_after_write: list[bool] = []
    reports: list[GcReport] = []
    collectors: list[threading.Thread] = []
    lock = threading.Lock()

    def collect() -> None:
        with TensorStore.open(tmp_path / "store") as other:
            reports.append(other.gc(grace_seconds=0))
        swept_after_write.append(write_done.is_set())

    def progress(count: int) -> None:
        # "last": once every chunk of the new snapshot is stored, before its manifest exists
        with lock:
            first = written[0] == 0
            written[0] += count
            if (when == "first" and first) or (when == "last" and written[0] == total):
                collectors.append(threading.Thread(target=collect))
                collectors[-1].start()
                time.sleep(0.3)  # time enough for a gc that did not wait to sweep

    child = store.write(tuned, parent=parent, ref="child", codec="delta", progress=progress)
    write_done.set()
    (collector,) = collectors
    collector.join(timeout=60)
    assert swept_after_write == [True]
    (report,) = reports
    assert report.removed_snapshots == 1  # the parent's manifest, now the gc ran
    assert any(ref.bases for ref in child.tensors["w"].chunks)
    with TensorStore.open(tmp_path / "store") as fresh:
        got = fresh.read("child")
        assert got["w"].tobytes() == tuned["w"].tobytes()
        assert fresh.fsck().ok


def test_gc_gives_up_when_writers_hold_the_lock(store: TensorStore, backend: str) -> None:
    """A gc that cannot get the lock in time removes nothing and says why."""
    store.write(_model(), ref="m")
    store.delete_ref("m")
    before = sorted(info.key for info in store.objects.list() if not info.key.startswith("locks/"))
    with store.objects.lock(exclusive=False), pytest.raises(Conflict) as caught:
        gc(store, grace_seconds=0, lock_timeout=0.5)
    assert "writers held the lock" in str(caught.value)
    after = sorted(info.key for info in store.objects.list() if not info.key.startswith("locks/"))
    assert after == before
    assert store.gc(grace_seconds=0).removed_snapshots == 1  # once the writer let go


@pytest.mark.slow
@pytest.mark.parametrize(("grace", "pause", "seconds"), [(2.0, 0.05, 5.0), (0.0, 0.0, 30.0)])
def test_gc_running_beside_a_writer_process(
    store_url: str,
    backend: str,
    scripts: Path,
    content: ModuleType,
    grace: float,
    pause: float,
    seconds: float,
) -> None:
    """gc in a loop beside a writer process: the writer never fails, and every snapshot it
    committed reads back verified, whatever the grace (0: a tight loop, no pause)."""
    if backend == "s3":
        seconds = 15.0  # each S3 round trip goes through the moto server: slower writes
    writer = _child(
        scripts,
        "writer_beside_gc.py",
        store_url,
        str(seconds),
        str(pause),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    removed = runs = 0
    with TensorStore.open(store_url) as store:
        while writer.poll() is None:
            report = store.gc(grace_seconds=grace)
            removed += report.removed_chunks
            runs += 1
            if grace:
                time.sleep(0.1)
        stdout, stderr = writer.communicate()
        assert writer.returncode == 0, stderr
        assert int(stdout.strip()) > 10  # the writer got somewhere
        # gc ran again and again beside it (on S3 under a loaded machine a run with a
        # grace takes over a second: a handful of runs, not dozens)
        assert runs >= 5
        assert removed > 0  # gc had work to do while the writer wrote
        report = store.fsck()
        assert report.ok, report.problems
        assert _assert_refs_read_back(store, content.tensors_for) >= 1
