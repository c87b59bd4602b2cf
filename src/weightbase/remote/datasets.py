"""``wb.datasets`` of a remote workspace: the dataset registry's API, over ``/api/v1/datasets``.

Every method takes and returns what ``weightbase.datasets.DatasetRegistry``'s
does. A registration encodes the content here exactly as an embedded one does
(:mod:`weightbase.datasets.write`), into a local staging store, uploads only
the chunks the server lacks, then commits; the server reads the content back
and computes the statistics and quality itself. Loads, splits and arrays read
the server's chunks over HTTP and verify each against its digest.
"""

from __future__ import annotations

import builtins
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightbase.datasets.content import DatasetContent
from weightbase.datasets.parts import check_part, inputs_and_targets
from weightbase.datasets.records import Dataset, DatasetVersion, DatasetVersionLike
from weightbase.datasets.service import DatasetRegistry
from weightbase.datasets.splits import Preprocessing, Splits, SplitSpec
from weightbase.datasets.write import check_content, draw_splits, write_dataset, write_splits
from weightbase.errors import NotFound, NotSupported
from weightbase.governance.audit import AuditEntry
from weightbase.lineage import Node
from weightbase.names import check_entity_name, check_tag, split_version
from weightbase.remote.decode import decode, decode_all
from weightbase.remote.http import path_of
from weightbase.remote.transfer import Transfer
from weightbase.tensors.manifest import Snapshot
from weightbase.versioning.pages import Page
from weightbase.versioning.semver import canonical_version

if TYPE_CHECKING:
    from weightbase.remote.http import Connection
    from weightbase.remote.objects import StagingObjects
    from weightbase.remote.store import RemoteStore
    from weightbase.versioning.semver import BumpPart

__all__ = ["RemoteDatasets"]

_DATASETS = "/api/v1/datasets"
_NODE = "dataset_version"
#: Versions asked for per page when listing them all.
_VERSIONS_PAGE = 500


class RemoteDatasets(DatasetRegistry):
    """Datasets and their versions on a weightbase server: ``DatasetRegistry``'s every method.

    It overrides each one (a test checks that none is inherited), so nothing
    here reaches for a catalog; the base class is the API it promises.
    """

    def __init__(
        self, connection: Connection, store: RemoteStore, *, upload_workers: int = 4
    ) -> None:  # no super().__init__: the base's state is a catalog, which is remote
        self._http = connection
        self._server_store = store
        self.upload_workers = upload_workers
        #: What the last registration sent over the network (chunks, bytes, chunks already there).
        self.last_transfer: Transfer | None = None

    # -- registering -----------------------------------------------------------------------

    def register(
        self,
        name: str,
        content: DatasetContent | Snapshot,
        *,
        version: str | None = None,
        bump: BumpPart = "minor",
        description: str | None = None,
        split: SplitSpec | Splits | None = None,
        preprocessing: Preprocessing | None = None,
        tags: Iterable[str] = (),
        derived_from: DatasetVersionLike | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> DatasetVersion:
        """Store ``content`` as a new version of ``name`` on the server (see ``DatasetRegistry``).

        The splits are drawn here, and the arrays and split indices written as
        a local registration writes them; only chunks the server lacks are
        sent (``last_transfer`` says how many). The server computes the
        statistics and quality from what it stored. A ``Snapshot`` is content
        already on the server: nothing is sent, and the server draws its splits.
        """
        check_entity_name(name, what="dataset")
        if not isinstance(content, Snapshot):
            content = check_content(name, content)
        tag_list = [check_tag(tag) for tag in tags]
        if version is not None:
            canonical_version(version)
        parent = self.version(derived_from) if derived_from is not None else None
        with tempfile.TemporaryDirectory(prefix="weightbase-register-") as folder:
            staging = self._server_store.staging(Path(folder))
            try:
                snapshot_id, splits_id, spec = self._upload(staging, content, split, progress)
            finally:
                staging.close()
        body = {
            "snapshot": snapshot_id,
            "splits_snapshot": splits_id,
            "split_spec": spec.to_dict() if spec is not None else None,
            "preprocessing": [step.to_dict() for step in (preprocessing or Preprocessing()).steps],
            "version": version,
            "bump": bump,
            "description": description,
            "tags": tag_list,
            "derived_from": parent.ref if parent is not None else None,
        }
        return _version_of(self._http.post(_dataset(name) + "/-/versions", body))

    def _upload(
        self,
        staging: StagingObjects,
        content: DatasetContent | Snapshot,
        split: SplitSpec | Splits | None,
        progress: Callable[[int], None] | None,
    ) -> tuple[str, str | None, SplitSpec | None]:
        """Stage and upload what the server lacks; the snapshot ids and the split spec."""
        from weightbase.tensors import TensorStore

        staged = TensorStore(staging, options=self._server_store.options)
        sent: builtins.list[Transfer] = []
        if isinstance(content, Snapshot):  # on the server already
            sent.append(Transfer(present_chunks=len(content.chunk_digests())))
            snapshot_id = content.id
            drawn = split if isinstance(split, Splits) else None
            spec = split.spec if isinstance(split, Splits) else split
            splits = write_splits(staged, drawn, ref="datasets/splits") if drawn else None
        else:
            drawn = draw_splits(content, split)
            snapshot, splits = write_dataset(
                staged,
                content,
                drawn,
                ref="datasets/staged",
                splits_ref="datasets/splits",
                progress=progress,
            )
            sent.append(self._server_store.upload(staging, snapshot, workers=self.upload_workers))
            snapshot_id, spec = snapshot.id, drawn.spec
        if splits is not None:
            sent.append(self._server_store.upload(staging, splits, workers=self.upload_workers))
        self.last_transfer = _sum(sent)
        return snapshot_id, splits.id if splits is not None else None, spec

    # -- reading ---------------------------------------------------------------------------

    def get(self, name: str) -> Dataset:
        return decode(Dataset, self._http.get(_dataset(name)))

    def list(
        self,
        *,
        name: str | None = None,
        kind: str | None = None,
        format: str | None = None,
        tag: str | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> Page[Dataset]:
        found = self._http.get(
            _DATASETS, name=name, kind=kind, format=format, tag=tag, limit=limit, after=after
        )
        return Page(tuple(decode_all(Dataset, found["items"])), found["next"])

    def version(self, ref: DatasetVersionLike, version: str | None = None) -> DatasetVersion:
        name, part = _split(ref, version)
        return _version_of(self._http.get(_version(name, part)))

    def versions(self, name: str) -> builtins.list[DatasetVersion]:
        found: builtins.list[DatasetVersion] = []
        after: str | None = None
        while True:
            answer = self._http.get(
                _dataset(name) + "/-/versions", limit=_VERSIONS_PAGE, after=after
            )
            found.extend(_version_of(item) for item in answer["items"])
            after = answer["next"]
            if after is None:
                return found

    def load(self, ref: DatasetVersionLike, version: str | None = None) -> DatasetContent:
        return self._content(self.version(ref, version))

    def splits(self, ref: DatasetVersionLike, version: str | None = None) -> Splits:
        return self._splits(self.version(ref, version))

    def arrays(
        self, ref: DatasetVersionLike, part: str | None = None, *, version: str | None = None
    ) -> tuple[Any, Any]:
        check_part(part)
        found = self.version(ref, version)
        content = self._content(found)
        indices = None if part is None else getattr(self._splits(found), part)
        return inputs_and_targets(content, indices)

    def history(
        self, name: str, *, limit: int = 1000, since_id: int | None = None
    ) -> builtins.list[AuditEntry]:
        found = self._http.get(_dataset(name) + "/-/history", limit=limit, after=since_id)
        return decode_all(AuditEntry, found["items"])

    def node(self, ref: DatasetVersionLike) -> Node:
        return Node(_NODE, str(self.version(ref).id))

    def describe(self, nodes: Iterable[Node]) -> dict[Node, str]:
        raise NotSupported(
            "describe() reads the server's catalog directly; a remote workspace names a "
            "dataset version by its record (wb.datasets.version(...).ref)"
        )

    # -- changing --------------------------------------------------------------------------

    def tag(self, ref: DatasetVersionLike, *tags: str) -> None:
        name, part = _split(ref, None)
        self._http.post(_version(name, part) + "/tags", {"add": list(tags)})

    def delete(self, name: str, *, reason: str | None = None) -> None:
        self._http.delete(_dataset(name), reason=reason)

    # -- helpers ---------------------------------------------------------------------------

    def _content(self, found: DatasetVersion) -> DatasetContent:
        snapshot = self._server_store.snapshot(found.snapshot_id)
        return DatasetContent.from_stored(self._server_store.read(snapshot), snapshot.metadata)

    def _splits(self, found: DatasetVersion) -> Splits:
        if found.splits_snapshot_id is None or found.split_spec is None:
            raise NotFound(f"{found.ref} has no splits")
        indices = self._server_store.read(found.splits_snapshot_id)
        return Splits.from_arrays(
            found.split_spec, indices, duplicate_groups=found.split_duplicate_groups
        )


def _dataset(name: str) -> str:
    return f"{_DATASETS}/{path_of(name)}"


def _version(name: str, version: str | None) -> str:
    return f"{_dataset(name)}/-/versions/{version or 'latest'}"


def _split(ref: DatasetVersionLike, version: str | None) -> tuple[str, str | None]:
    if isinstance(ref, DatasetVersion):
        return ref.dataset, ref.version
    return split_version(ref, version)


def _version_of(data: Mapping[str, Any]) -> DatasetVersion:
    """A version record from the API's JSON (its ``splits`` are the record's ``split_sizes``)."""
    fields = dict(data)
    fields["split_sizes"] = fields.pop("splits", None) or {}
    fields["preprocessing"] = {"steps": fields.get("preprocessing") or []}
    return decode(DatasetVersion, fields)


def _sum(transfers: Iterable[Transfer]) -> Transfer:
    total = Transfer()
    for part in {id(item): item for item in transfers}.values():  # one staging: one Transfer
        total.sent_chunks += part.sent_chunks
        total.sent_bytes += part.sent_bytes
        total.present_chunks += part.present_chunks
        total.manifest_bytes += part.manifest_bytes
    return total
