"""Deriving a snapshot from another's entries: a new manifest over chunks already stored.

    derived = derive_snapshot(checkpoint, select_prefix(checkpoint, "model."))
    commit_snapshot(objects, derived)      # no chunk is read, decoded or written

A tensor's entry names its chunks (delta bases included), so a snapshot of some of
another's tensors, renamed, is only a new manifest: nothing is decoded or encoded
and no chunk is written. :func:`commit_snapshot` refreshes every chunk it names
(so a concurrent gc keeps them) and writes the manifest durably, as a write does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from weightbase.errors import NotFound, ValidationError
from weightbase.tensors.manifest import Snapshot, validate_name
from weightbase.tensors.read import chunk_key

if TYPE_CHECKING:
    from weightbase.tensors.objects import ObjectStore

__all__ = ["commit_snapshot", "derive_snapshot", "select_prefix"]


def select_prefix(snapshot: Snapshot, prefix: str) -> dict[str, str]:
    """``{new name: name}`` for the tensors of ``snapshot`` under ``prefix``, prefix stripped."""
    found = {
        name.removeprefix(prefix): name
        for name in snapshot.tensors
        if name.startswith(prefix) and len(name) > len(prefix)
    }
    if not found:
        raise ValidationError(
            f"snapshot {snapshot.id[:12]} has no tensors under {prefix!r}", prefix=prefix
        )
    return found


def derive_snapshot(
    source: Snapshot,
    tensors: Mapping[str, str],
    *,
    files: Mapping[str, str] | None = None,
    metadata: Mapping[str, str] | None = None,
    parent: str | None = None,
) -> Snapshot:
    """A snapshot of ``source``'s entries under new names: ``{new name: source name}``.

    Each entry is kept as it is (dtype, shape, codec, content digest, chunks and
    their delta bases), so the derived snapshot reads back bit for bit what
    ``source`` holds under the old names.
    """
    entries = {}
    for new, old in tensors.items():
        validate_name(new)
        try:
            entries[new] = source.tensors[old]
        except KeyError:
            raise NotFound(f"snapshot {source.id[:12]} has no tensor {old!r}", tensor=old) from None
    kept_files = {}
    for new, old in (files or {}).items():
        validate_name(new, what="file")
        try:
            kept_files[new] = source.files[old]
        except KeyError:
            raise NotFound(f"snapshot {source.id[:12]} has no file {old!r}", file=old) from None
    return Snapshot(tensors=entries, files=kept_files, parent=parent, metadata=dict(metadata or {}))


def commit_snapshot(objects: ObjectStore, snapshot: Snapshot) -> None:
    """Write ``snapshot``'s manifest, durably, once every chunk it needs is known stored.

    Each chunk is refreshed under the store's writer lock, as a write refreshes the
    chunks it reuses, so a concurrent gc's grace period keeps it until a ref names
    the snapshot. A chunk already gone is ``NotFound`` and no manifest is written.
    """
    with objects.lock(exclusive=False):
        for digest in sorted(snapshot.chunk_digests()):
            key = chunk_key(digest)
            try:
                objects.touch(key)
            except NotFound:
                # a store that learns what it holds lazily (a server's) is asked outright
                if not objects.exists(key):
                    raise NotFound(
                        f"chunk {digest} of snapshot {snapshot.id[:12]} is not in the store",
                        digest=digest,
                    ) from None
        objects.put(f"snapshots/{snapshot.id}", snapshot.to_json())
        objects.sync()
