"""Artifacts of runs: files, folders or named arrays, each kept as one tensor-store snapshot.

A snapshot already in the store (one a remote workspace uploaded) is kept as
it is. The snapshot is written (under the ref ``runs/<id>/artifacts/<name>``) before the
catalog row that names it, and the run's ``storage_bytes`` is the sum of its
artifacts' stored bytes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select, update

from weightbase.catalog.schema import RunArtifactRow, RunRow, utcnow
from weightbase.errors import Conflict, NotFound, ValidationError
from weightbase.tensors import Snapshot
from weightbase.tracking.context import RUN_KIND
from weightbase.tracking.reads import get_run, run_row
from weightbase.tracking.records import Artifact, check_name

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.tensors import FileSource
    from weightbase.tracking.context import ArtifactSource, TrackingContext

__all__ = ["Artifacts"]

ArtifactKind = Literal["tensors", "file", "folder"]


class Artifacts:
    """Logging, listing and loading the artifacts of runs."""

    def __init__(self, context: TrackingContext) -> None:
        self._context = context

    def log_artifact(
        self, run_id: int, source: ArtifactSource, *, name: str | None, overwrite: bool
    ) -> Artifact:
        """Keep ``source`` as artifact ``name`` of a run (``Conflict`` if taken, or overwrite)."""
        context = self._context
        kind: ArtifactKind
        if isinstance(source, Snapshot):
            if name is None:
                raise ValidationError("a snapshot logged as an artifact needs a name")
            kind = _snapshot_kind(source)
        elif isinstance(source, Mapping):
            if name is None:
                raise ValidationError("arrays logged as an artifact need a name")
            kind = "tensors"
        else:
            path = Path(os.fspath(source))
            if not path.exists():
                raise NotFound(f"no file or folder {str(path)!r} to log", path=str(path))
            kind = "folder" if path.is_dir() else "file"
            name = name if name is not None else path.name
        check_name(name, what="artifact")
        get_run(context, run_id)  # NotFound before anything is written to the store
        if not overwrite:
            with context.catalog.session() as session:
                if _artifact_row(session, run_id, name) is not None:
                    raise _taken(run_id, name)
        ref = f"runs/{run_id}/artifacts/{name}"
        metadata = {"run_id": str(run_id)}
        if isinstance(source, Snapshot):
            # already in the store, whole (a remote workspace uploaded it): pin it
            snapshot = context.store.snapshot(source.id)
            context.store.set_ref(ref, snapshot)
        elif kind == "tensors":
            assert isinstance(source, Mapping)
            snapshot = context.store.write(source, ref=ref, metadata=metadata)
        else:
            files = _file_sources(path, kind)
            snapshot = context.store.write({}, ref=ref, files=files, metadata=metadata)

        def work(session: Session) -> Artifact:
            run_row(session, run_id)
            row = _artifact_row(session, run_id, name)
            before = None if row is None else _to_artifact(row).to_dict()
            if row is not None and not overwrite:
                raise _taken(run_id, name)
            if row is None:
                row = RunArtifactRow(run_id=run_id, name=name)
                session.add(row)
            row.kind = kind
            row.snapshot_id = snapshot.id
            row.size_bytes = _logical_size(snapshot)
            row.stored_bytes = snapshot.stored_bytes
            row.created_at = utcnow()
            session.flush()
            total = session.execute(
                select(func.coalesce(func.sum(RunArtifactRow.stored_bytes), 0)).where(
                    RunArtifactRow.run_id == run_id
                )
            ).scalar_one()
            session.execute(
                update(RunRow).where(RunRow.id == run_id).values(storage_bytes=int(total))
            )
            artifact = _to_artifact(row)
            context.recorder.record(
                session,
                "run.log_artifact",
                RUN_KIND,
                run_id,
                before=before,
                after=artifact.to_dict(),
                event="run_artifact_logged",
            )
            return artifact

        return context.catalog.write(work)

    def artifacts(self, run_id: int) -> list[Artifact]:
        """A run's artifacts, by name."""
        with self._context.catalog.session() as session:
            run_row(session, run_id)
            rows = session.scalars(
                select(RunArtifactRow)
                .where(RunArtifactRow.run_id == run_id)
                .order_by(RunArtifactRow.name)
            )
            return [_to_artifact(row) for row in rows]

    def artifact(self, run_id: int, name: str) -> Artifact:
        """One artifact of a run; ``NotFound`` if it has none of that name."""
        with self._context.catalog.session() as session:
            run_row(session, run_id)
            row = _artifact_row(session, run_id, name)
            if row is None:
                raise NotFound(f"run {run_id} has no artifact {name!r}", run_id=run_id, name=name)
            return _to_artifact(row)

    def load_artifact(self, run_id: int, name: str) -> dict[str, Any]:
        """An artifact's contents: ``{name: array}`` for arrays, ``{path: bytes}`` for files."""
        store = self._context.store
        artifact = self.artifact(run_id, name)
        if artifact.kind == "tensors":
            return store.read(artifact.snapshot_id)
        snapshot = store.snapshot(artifact.snapshot_id)
        return {path: store.file_bytes(snapshot, path) for path in snapshot.files}


def _artifact_row(session: Session, run_id: int, name: str) -> RunArtifactRow | None:
    return session.scalars(
        select(RunArtifactRow).where(RunArtifactRow.run_id == run_id, RunArtifactRow.name == name)
    ).one_or_none()


def _to_artifact(row: RunArtifactRow) -> Artifact:
    kind: ArtifactKind = row.kind  # type: ignore[assignment]
    return Artifact(
        run_id=row.run_id,
        name=row.name,
        kind=kind,
        snapshot_id=row.snapshot_id,
        size_bytes=row.size_bytes,
        stored_bytes=row.stored_bytes,
        created_at=row.created_at,
    )


def _taken(run_id: int, name: str) -> Conflict:
    return Conflict(
        f"run {run_id} already has an artifact {name!r} (overwrite=True replaces it)",
        run_id=run_id,
        name=name,
    )


def _snapshot_kind(snapshot: Snapshot) -> ArtifactKind:
    """What a snapshot holds as an artifact: its ``artifact_kind`` metadata, else its content."""
    named = snapshot.metadata.get("artifact_kind")
    if named in ("tensors", "file", "folder"):
        return named  # type: ignore[return-value]
    if snapshot.tensors or not snapshot.files:
        return "tensors"
    return "file" if len(snapshot.files) == 1 else "folder"


def _file_sources(path: Path, kind: ArtifactKind) -> list[FileSource]:
    from weightbase.tensors import FileSource

    if kind == "file":
        return [FileSource(name=path.name, data=path.read_bytes())]
    files = sorted(item for item in path.rglob("*") if item.is_file())
    return [
        FileSource(name=item.relative_to(path).as_posix(), data=item.read_bytes()) for item in files
    ]


def _logical_size(snapshot: Snapshot) -> int:
    return sum(entry.nbytes for entry in snapshot.tensors.values()) + sum(
        entry.size for entry in snapshot.files.values()
    )
