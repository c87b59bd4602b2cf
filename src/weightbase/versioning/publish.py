"""Publishing a version: the one protocol that makes stored content a catalog fact.

Model versions, dataset versions (and later adapters and pipeline outputs)
all publish the same way, so a crash at any instant leaves either no version
or a whole one:

1. **hold**: the content is written to the tensor store under a *pending*
   ref (``pending/<domain>/<token>/<part>``), so gc cannot take it meanwhile;
2. **digest**: :func:`content_digest` names the content, whatever its layout;
3. **same-content check and insert**: in one catalog transaction, a live
   version with the same digest is returned as it is, or a new row is inserted;
4. **pin**: each snapshot the row references gets its permanent ref;
5. **release**: the pending refs are deleted, whatever happened.

    with publish_snapshot(store, "models") as publication:
        snapshot = store.write(tensors, ref=publication.pending_ref())
        version_id, created = catalog.write(insert_row)         # steps 2 and 3
        if created:
            publication.pin({version_ref(version_id): snapshot})

A process killed between the commit (3) and the pin (4) leaves a committed
row whose content only a pending ref holds. :func:`recover_pending` finishes
such publishes (pins what a live row references) and drops pending refs of
publishes that never committed; ``Workspace.gc`` runs it before the store's gc.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import blake3
from sqlalchemy import select

from weightbase.errors import NotFound
from weightbase.versioning.semver import BumpPart, next_version

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import InstrumentedAttribute, Session

    from weightbase.catalog import Catalog
    from weightbase.tensors import Snapshot, TensorStore

__all__ = [
    "PENDING_PREFIX",
    "Pin",
    "Publication",
    "RecoveryReport",
    "content_digest",
    "next_number",
    "publish_snapshot",
    "recover_pending",
    "same_content",
]

#: Refs under this prefix hold content whose catalog row is being written.
PENDING_PREFIX = "pending/"


def content_digest(snapshot: Snapshot, *, described: Mapping[str, Any] | None = None) -> str:
    """The digest that says two versions hold the same content; one rule for every domain.

    BLAKE3 of the canonical JSON (sorted keys, no spaces) of three parts:

    - ``tensors``: each tensor's name, dtype, shape and content digest;
    - ``files``: each blob file's name and digest (a model folder's config,
      tokenizer and other non-tensor files);
    - ``described``: what the domain declares part of the content beyond the
      arrays (a dataset's layout: which arrays are features and labels, its
      columns); empty for a model.

    How the bytes were laid out never counts: codecs, chunking, deltas, a
    safetensors header or the snapshot's other metadata. The same weights
    pushed as a state dict, a safetensors file or a folder get one digest.
    """
    doc = {
        "tensors": {
            name: [entry.dtype, list(entry.shape), entry.digest]
            for name, entry in sorted(snapshot.tensors.items())
        },
        "files": {
            name: entry.digest
            for name, entry in sorted(snapshot.files.items())
            if entry.kind == "blob"
        },
        "described": dict(described or {}),
    }
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
    return blake3.blake3(text.encode()).hexdigest()


def same_content(
    session: Session,
    row: Any,
    owner: ColumnElement[bool],
    digest: str,
) -> Any | None:
    """The oldest live row of ``row``'s table under ``owner`` whose content digest is ``digest``."""
    return session.scalars(
        select(row)
        .where(owner, row.content_digest == digest, row.deleted_at.is_(None))
        .order_by(row.id)
        .limit(1)
    ).first()


def next_number(
    session: Session,
    row: Any,
    owner: ColumnElement[bool],
    explicit: str | None,
    part: BumpPart,
    *,
    what: str,
) -> str:
    """The version a new row under ``owner`` gets: ``explicit``, or the latest bumped by ``part``.

    Every version ever taken counts, deleted ones too, so a number is never reused.
    """
    taken = list(session.scalars(select(row.version).where(owner)))
    return next_version(taken, explicit, part, what=what)


class Publication:
    """One publish in progress: its pending refs, and the pins it makes once committed."""

    def __init__(self, store: TensorStore, domain: str) -> None:
        self._store = store
        self._prefix = f"{PENDING_PREFIX}{domain}/{uuid.uuid4().hex}"
        self._pending: list[str] = []

    def pending_ref(self, part: str = "content") -> str:
        """A pending ref for one snapshot of this publish; write the snapshot under it."""
        ref = f"{self._prefix}/{part}"
        self._pending.append(ref)
        return ref

    def hold(self, snapshot: Snapshot, part: str = "content") -> Snapshot:
        """Hold a snapshot that is already in the store under a pending ref of this publish."""
        self._store.set_ref(self.pending_ref(part), snapshot)
        return snapshot

    def pin(self, pins: Mapping[str, Snapshot | str]) -> None:
        """Give each snapshot its permanent ref, once the row that references it is committed."""
        for ref, snapshot in pins.items():
            self._store.set_ref(ref, snapshot)

    def release(self) -> None:
        """Delete this publish's pending refs (those already gone are skipped)."""
        for ref in self._pending:
            with contextlib.suppress(NotFound):
                self._store.delete_ref(ref)
        self._pending.clear()


@contextlib.contextmanager
def publish_snapshot(store: TensorStore, domain: str) -> Iterator[Publication]:
    """Run one publish; its pending refs are released on the way out, committed or not."""
    publication = Publication(store, domain)
    try:
        yield publication
    finally:
        publication.release()


@dataclass(frozen=True, slots=True)
class Pin:
    """Where a domain's rows reference snapshots, and the ref that pins each.

    ``snapshot`` is the column holding a snapshot id, ``row_id`` the row's id
    column, ``live`` the condition of rows still in use, and ``ref`` the
    permanent ref of a row id.
    """

    snapshot: InstrumentedAttribute[Any]
    row_id: InstrumentedAttribute[int]
    live: ColumnElement[bool]
    ref: Callable[[int], str]


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What :func:`recover_pending` found: publishes finished, and pending refs dropped."""

    pinned: tuple[str, ...] = ()
    released: tuple[str, ...] = ()
    kept_young: int = 0
    dry_run: bool = False


def recover_pending(
    catalog: Catalog,
    store: TensorStore,
    pins: Sequence[Pin],
    *,
    grace_seconds: float,
    dry_run: bool = False,
) -> RecoveryReport:
    """Finish or drop publishes whose process died, by their pending refs older than the grace.

    A pending ref whose snapshot a live row references has its missing pins
    set (the publish had committed); then every stale pending ref is deleted,
    so content no row took becomes garbage for the store's gc. Pending refs
    younger than ``grace_seconds`` may belong to a publish still running and
    are left alone.
    """
    cutoff = time.time() - grace_seconds
    pinned: list[str] = []
    released: list[str] = []
    young = 0
    for info in list(store.objects.list(f"refs/{PENDING_PREFIX}")):
        name = info.key.removeprefix("refs/")
        if info.mtime >= cutoff:
            young += 1
            continue
        try:
            snapshot_id = store.get_ref(name)
        except NotFound:
            continue  # released since it was listed
        with catalog.session() as session:
            wanted = [
                pin.ref(row_id)
                for pin in pins
                for row_id in session.scalars(
                    select(pin.row_id).where(pin.snapshot == snapshot_id, pin.live)
                )
            ]
        for ref in wanted:
            if _ref_target(store, ref) != snapshot_id:
                pinned.append(ref)
                if not dry_run:
                    store.set_ref(ref, snapshot_id)
        released.append(name)
        if not dry_run:
            with contextlib.suppress(NotFound):
                store.delete_ref(name)
    return RecoveryReport(tuple(pinned), tuple(released), young, dry_run)


def _ref_target(store: TensorStore, ref: str) -> str | None:
    try:
        return store.get_ref(ref)
    except NotFound:
        return None
