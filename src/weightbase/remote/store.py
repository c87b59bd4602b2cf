"""``wb.store`` of a remote workspace: verified reads of the server's snapshots, and checkpoints.

Reads go through a ``TensorStore`` over :class:`~weightbase.remote.objects.ServerObjects`,
so every chunk is checked against its digest here. Writes are what training
needs: a checkpoint is written into a local staging store (as deltas of the
checkpoint before it, on the server), its missing chunks uploaded, then a ref
under ``checkpoints/`` set on the server, which makes it visible only once
every byte of it is there. Other refs belong to the server's services
(versions, datasets) and are set by their commits, never directly.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightbase.errors import NotFound, NotSupported, ValidationError
from weightbase.remote.http import path_of
from weightbase.remote.objects import ServerObjects, StagingObjects
from weightbase.remote.transfer import Transfer, Uploader, upload_snapshot
from weightbase.tensors import FsckReport, GcReport, Sharing, Snapshot, TensorSource, TensorStore

if TYPE_CHECKING:
    from weightbase.remote.http import Connection
    from weightbase.tensors import FileSource, WriteStats

__all__ = ["WRITABLE_REF_PREFIXES", "RemoteStore"]

_STORE = "/api/v1/store"
#: The refs a remote workspace may set and delete: its training checkpoints.
WRITABLE_REF_PREFIXES = ("checkpoints/",)


class RemoteStore(TensorStore):
    """The server's tensor store: every read verified here; checkpoint writes; no maintenance."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(ServerObjects(connection))
        self._http = connection
        #: What the last checkpoint write sent over the network.
        self.last_transfer: Transfer | None = None

    @classmethod
    def open(cls, url: str | Path | None = None, **options: Any) -> TensorStore:
        raise NotSupported("open a remote store with weightbase.open(url, token=...)")

    def __repr__(self) -> str:
        return f"RemoteStore({self._http.url!r})"

    def close(self) -> None:
        """The connection belongs to the workspace; nothing of its own to close."""

    # -- names -----------------------------------------------------------------------

    def resolve(self, name: str) -> str:
        """A snapshot id from an id, or from a checkpoint ref (the refs a client may read)."""
        if name.startswith(WRITABLE_REF_PREFIXES):
            return self.get_ref(name)
        return super().resolve(name)

    def snapshots(self) -> Iterator[str]:
        raise NotSupported("a remote workspace cannot list the server's snapshots")

    def set_ref(self, name: str, snapshot: Snapshot | str) -> None:
        _check_writable(name)
        snapshot_id = snapshot.id if isinstance(snapshot, Snapshot) else snapshot
        self._http.put(f"{_STORE}/refs/{path_of(name)}", {"snapshot": snapshot_id}, retry=True)

    def get_ref(self, name: str) -> str:
        found = self.refs(name)
        if name not in found:
            raise NotFound(f"no ref {name!r} on {self._http.url}", ref=name)
        return found[name]

    def refs(self, prefix: str = "") -> dict[str, str]:
        """The checkpoint refs starting with ``prefix``, and the snapshot each points at."""
        if not prefix.startswith(WRITABLE_REF_PREFIXES):
            raise NotSupported(
                "a remote workspace lists only checkpoint refs (a prefix starting checkpoints/)"
            )
        found: dict[str, str] = self._http.get(f"{_STORE}/refs", prefix=prefix)["refs"]
        return found

    def delete_ref(self, name: str) -> None:
        _check_writable(name)
        self._http.delete(f"{_STORE}/refs/{path_of(name)}")

    # -- writing ---------------------------------------------------------------------

    def write(
        self,
        tensors: Mapping[str, Any] | Iterable[TensorSource],
        *,
        ref: str | None = None,
        parent: Snapshot | str | None = None,
        files: Iterable[FileSource] = (),
        metadata: Mapping[str, str] | None = None,
        codec: str | None = None,
        progress: Callable[[int], None] | None = None,
        stats: WriteStats | None = None,
    ) -> Snapshot:
        """Store ``tensors`` on the server under ``ref``, a ``checkpoints/…`` name.

        Written here as deltas of ``parent``; only chunks the server lacks are
        sent, then the ref is set, so the checkpoint is visible only when whole.
        """
        if ref is None:
            raise ValidationError("a remote write names its checkpoint ref (checkpoints/…)")
        _check_writable(ref)
        parent_snapshot = self.snapshot(parent) if parent is not None else None
        with tempfile.TemporaryDirectory(prefix="weightbase-checkpoint-") as folder:
            staging = self.staging(Path(folder), parent_snapshot)
            try:
                snapshot = TensorStore(staging, options=self.options).write(
                    tensors,
                    ref="staged",
                    parent=parent_snapshot,
                    files=files,
                    metadata=metadata,
                    codec=codec,
                    progress=progress,
                    stats=stats,
                )
                self.last_transfer = upload_snapshot(self._http, staging, snapshot)
            finally:
                staging.close()
        self.set_ref(ref, snapshot)
        return snapshot

    def staging(
        self, folder: Path, parent: Snapshot | None = None, *, workers: int = 4
    ) -> StagingObjects:
        """A staging store in ``folder`` over the server's objects, ``parent``'s chunks known,
        whose new chunks go up as they are written (``workers`` uploads at a time)."""
        objects = self.objects
        assert isinstance(objects, ServerObjects)
        if parent is not None:
            objects.know(parent.chunk_digests())
        uploader = Uploader(self._http, Transfer(), workers=workers)
        return StagingObjects(objects, folder, uploader=uploader)

    def upload(self, staging: StagingObjects, snapshot: Snapshot, *, workers: int = 4) -> Transfer:
        """Send what the server lacks of ``snapshot`` from ``staging``, then its manifest."""
        self.last_transfer = upload_snapshot(self._http, staging, snapshot, workers=workers)
        return self.last_transfer

    # -- maintenance -----------------------------------------------------------------

    def sharing(self, first: Snapshot | str, second: Snapshot | str) -> Sharing:
        return super().sharing(self.snapshot(first), self.snapshot(second))

    def derive(self, snapshot: Any, tensors: Any, **_: Any) -> Snapshot:
        raise NotSupported(
            "a remote workspace cannot write manifests of the server's chunks; push instead"
        )

    def fsck(self, **_: Any) -> FsckReport:
        raise NotSupported("fsck runs on the server: `weightbase store fsck` there")

    def gc(self, **_: Any) -> GcReport:
        raise NotSupported("gc runs on the server: `weightbase store gc` there")


def _check_writable(name: str) -> None:
    if not isinstance(name, str) or not name.startswith(WRITABLE_REF_PREFIXES):
        raise ValidationError(
            f"a remote workspace sets only checkpoint refs (checkpoints/…), not {name!r}",
            ref=name,
        )
