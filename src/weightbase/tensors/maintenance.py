"""Checking and cleaning a store: ``fsck`` re-hashes everything, ``gc`` sweeps the unreachable.

Garbage collection is mark-and-sweep from the refs. It is safe beside running
writers whatever the grace period: a writer holds the store's lock shared from
its first chunk until its ref is set, and gc marks and sweeps under the same
lock held exclusively, so it never sees a write half done. It removes a
temporary file only once the process writing it is gone. The grace period
spares unreferenced objects a user may still want (and writers that ignore
the lock): nothing younger is removed.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from weightbase.errors import IntegrityError, NotFound
from weightbase.tensors.chunks import chunk_digest, parse_header
from weightbase.tensors.manifest import FileEntry, Snapshot, TensorEntry
from weightbase.tensors.objects import ObjectInfo
from weightbase.tensors.read import chunk_key

if TYPE_CHECKING:
    from weightbase.tensors.store import TensorStore

__all__ = ["FsckReport", "GcReport", "fsck", "gc"]

DEFAULT_GRACE_SECONDS = 3600.0
# How long gc waits for running writes to finish before it gives up.
DEFAULT_LOCK_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing fsck found wrong: what, where, and which tensors it hurts."""

    kind: str  # "corrupt-chunk", "missing-chunk", "corrupt-manifest", "dangling-ref"
    key: str
    detail: str
    snapshots: tuple[str, ...] = ()
    tensors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FsckReport:
    """What fsck checked and what it found; ``ok`` when it found nothing."""

    chunks_checked: int
    bytes_checked: int
    snapshots_checked: int
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class GcReport:
    """What gc kept and removed."""

    live_snapshots: int
    live_chunks: int
    removed_chunks: int
    removed_bytes: int
    removed_snapshots: int
    removed_index_entries: int
    removed_temporary: int
    kept_young: int
    dry_run: bool


def _users(snapshots: dict[str, Snapshot]) -> dict[str, list[tuple[str, str]]]:
    """chunk digest -> (snapshot id, tensor or file name) that need it."""
    users: dict[str, list[tuple[str, str]]] = {}
    for snapshot_id, snapshot in snapshots.items():
        named: list[tuple[str, TensorEntry | FileEntry]] = [
            *snapshot.tensors.items(),
            *snapshot.files.items(),
        ]
        for name, entry in named:
            for ref in entry.chunks:
                for digest in (ref.digest, *ref.bases):
                    users.setdefault(digest, []).append((snapshot_id, name))
    return users


def _load_snapshots(store: TensorStore, problems: list[Problem]) -> dict[str, Snapshot]:
    snapshots: dict[str, Snapshot] = {}
    for snapshot_id in store.snapshots():
        try:
            data = store.objects.get(f"snapshots/{snapshot_id}")
            snapshots[snapshot_id] = Snapshot.from_json(bytes(data), expected_id=snapshot_id)
        except (IntegrityError, NotFound) as exc:
            problems.append(Problem("corrupt-manifest", f"snapshots/{snapshot_id}", str(exc)))
    return snapshots


def fsck(store: TensorStore, *, progress: Callable[[int], None] | None = None) -> FsckReport:
    """Re-hash every chunk and manifest; report corrupt or missing chunks and dangling refs."""
    problems: list[Problem] = []
    snapshots = _load_snapshots(store, problems)
    users = _users(snapshots)
    for name, target in store.refs().items():
        if target not in snapshots:
            problems.append(Problem("dangling-ref", f"refs/{name}", f"points at missing {target}"))
    present: set[str] = set()
    checked = checked_bytes = 0
    for info in store.objects.list("chunks/"):
        digest = info.key.rsplit("/", 1)[-1]
        present.add(digest)
        try:
            data = store.objects.get(info.key)
        except NotFound:  # removed by a concurrent gc
            present.discard(digest)
            continue
        checked += 1
        checked_bytes += len(data)
        detail = ""
        if chunk_digest(data) != digest:
            detail = "bytes do not match the digest"
        else:
            try:
                parse_header(data)
            except IntegrityError as exc:
                detail = str(exc)
        if detail:
            problems.append(_problem("corrupt-chunk", digest, detail, users))
        if progress is not None:
            progress(len(data))
    for digest in sorted(set(users) - present):
        problems.append(_problem("missing-chunk", digest, "referenced but not stored", users))
    return FsckReport(checked, checked_bytes, len(snapshots), tuple(problems))


def _problem(
    kind: str, digest: str, detail: str, users: dict[str, list[tuple[str, str]]]
) -> Problem:
    needed = users.get(digest, [])
    return Problem(
        kind,
        chunk_key(digest),
        detail,
        tuple(sorted({s for s, _ in needed})),
        tuple(sorted({t for _, t in needed})),
    )


def gc(
    store: TensorStore,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    dry_run: bool = False,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
) -> GcReport:
    """Remove chunks, manifests and index entries no ref reaches, older than the grace period.

    Everything but the listing of chunks runs under the store's exclusive lock,
    taken once no write is in progress (``Conflict`` if writers held it for
    ``lock_timeout`` seconds); a dry run takes no lock.
    """
    objects = store.objects
    started = time.time()
    cutoff = started - grace_seconds
    # Chunks stored after this listing are no candidates; those listed but reused or
    # newly referenced by a write that commits before the lock is taken are marked live.
    chunk_infos = list(objects.list("chunks/"))
    with (
        contextlib.nullcontext() if dry_run else objects.lock(exclusive=True, timeout=lock_timeout)
    ):
        return _collect(store, chunk_infos, cutoff, dry_run)


def _collect(
    store: TensorStore, chunk_infos: list[ObjectInfo], cutoff: float, dry_run: bool
) -> GcReport:
    objects = store.objects
    # mark: every snapshot a ref points at, and every chunk those snapshots need
    live_snapshots: set[str] = set()
    live_chunks: set[str] = set()
    for target in store.refs().values():
        try:
            snapshot = store.snapshot(target)
        except (NotFound, IntegrityError):
            continue  # fsck reports dangling refs; gc must not fail on them
        live_snapshots.add(snapshot.id)
        live_chunks |= snapshot.chunk_digests()

    def sweep(
        infos: list[ObjectInfo], is_live: Callable[[str], bool]
    ) -> tuple[list[ObjectInfo], int]:
        doomed, young = [], 0
        for info in infos:
            if is_live(info.key):
                continue
            if info.mtime >= cutoff:
                young += 1
            else:
                doomed.append(info)
        return doomed, young

    manifest_infos = list(objects.list("snapshots/"))
    dead_manifests, young_manifests = sweep(
        manifest_infos, lambda k: k.rsplit("/", 1)[-1] in live_snapshots
    )
    # A manifest kept for its youth keeps its chunks, however old: it may be about to get
    # a ref, and without them it would stay listed but unreadable.
    kept_for_young: set[str] = set()
    doomed_manifests = {info.key for info in dead_manifests}
    for info in manifest_infos:
        snapshot_id = info.key.rsplit("/", 1)[-1]
        if snapshot_id in live_snapshots or info.key in doomed_manifests:
            continue
        try:
            kept_for_young |= store.snapshot(snapshot_id).chunk_digests()
        except (NotFound, IntegrityError):
            continue
    dead_chunks, young = sweep(chunk_infos, lambda k: k.rsplit("/", 1)[-1] in live_chunks)
    unprotected = [i for i in dead_chunks if i.key.rsplit("/", 1)[-1] not in kept_for_young]
    young += len(dead_chunks) - len(unprotected)
    dead_chunks = unprotected
    removed_chunks: list[ObjectInfo] = []
    removed_manifests = 0
    if not dry_run:
        removed_chunks = _remove(store, dead_chunks, cutoff)
        removed_manifests = len(_remove(store, dead_manifests, cutoff))
    removed_digests = {info.key.rsplit("/", 1)[-1] for info in removed_chunks}
    removed_index = 0 if dry_run else _prune_index(store, removed_digests)
    removed_tmp = 0
    list_temporary = getattr(objects, "list_temporary", None)
    if list_temporary is not None and not dry_run:
        # only leftovers: a temporary file whose writer is alive is not listed at all
        for info in list(list_temporary()):
            if info.mtime < cutoff:
                objects.delete_temporary(info.key)  # type: ignore[attr-defined]
                removed_tmp += 1
    objects.sync()
    return GcReport(
        live_snapshots=len(live_snapshots),
        live_chunks=len(live_chunks),
        removed_chunks=len(removed_chunks) if not dry_run else len(dead_chunks),
        removed_bytes=sum(i.size for i in (removed_chunks if not dry_run else dead_chunks)),
        removed_snapshots=removed_manifests if not dry_run else len(dead_manifests),
        removed_index_entries=removed_index,
        removed_temporary=removed_tmp,
        kept_young=young + young_manifests,
        dry_run=dry_run,
    )


def _remove(store: TensorStore, doomed: list[ObjectInfo], cutoff: float) -> list[ObjectInfo]:
    """Delete candidates whose age still qualifies (a writer that ignores the lock may
    have refreshed one since it was listed)."""
    removed = []
    for info in doomed:
        fresh = _mtime(store, info.key)
        if fresh is None or fresh >= cutoff:
            continue  # gone already, or reused since it was listed
        store.objects.delete(info.key)
        removed.append(info)
    return removed


def _mtime(store: TensorStore, key: str) -> float | None:
    path = store.objects.local_path(key)
    if path is not None:
        try:
            return path.stat().st_mtime
        except FileNotFoundError:
            return None
    for info in store.objects.list(key):
        if info.key == key:
            return info.mtime
    return None


def _prune_index(store: TensorStore, removed: set[str]) -> int:
    """Drop index entries that point at removed chunks (they would only be missed shortcuts)."""
    if not removed:
        return 0
    pruned = 0
    for info in list(store.objects.list("index/")):
        try:
            chunks = json.loads(bytes(store.objects.get(info.key)))["chunks"]
            digests = {c["d"] for c in chunks} | {b for c in chunks for b in c.get("b", ())}
        except NotFound:
            continue
        except (ValueError, LookupError, TypeError, AttributeError):
            digests = removed  # damaged (entries are written without fsync): drop it too
        if digests & removed:
            store.objects.delete(info.key)
            pruned += 1
    return pruned
