"""``wb.models`` of a remote workspace: the registry's API, over ``/api/v1/models``.

Every method takes and returns what ``weightbase.registry.ModelRegistry``'s
does. Pushes write the source into a local staging store (as deltas of the
model's latest version on the server, sharing every chunk the server holds),
upload only the chunks the server lacks, then commit; pulls, diffs and exports
read the server's chunks over HTTP and verify each against its digest.
"""

from __future__ import annotations

import builtins
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from weightbase.errors import NotFound, NotSupported, ValidationError
from weightbase.governance.audit import AuditEntry
from weightbase.lineage import Node, ReachedNode
from weightbase.names import split_version
from weightbase.registry.analysis import ModelAnalysis
from weightbase.registry.models import check_model_name
from weightbase.registry.push import LINEAGE, DeltaParent
from weightbase.registry.records import Model, ModelVersion, Page
from weightbase.registry.service import ModelRegistry
from weightbase.remote.decode import decode, decode_all
from weightbase.remote.http import path_of
from weightbase.remote.transfer import Transfer
from weightbase.tensors.manifest import Snapshot

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.registry.diff import SnapshotDiff
    from weightbase.remote.http import Connection
    from weightbase.remote.store import RemoteStore
    from weightbase.tensors import WriteStats
    from weightbase.versioning.semver import BumpPart

__all__ = ["RemoteModels"]

VersionLike = str | ModelVersion
_MODELS = "/api/v1/models"


class RemoteModels(ModelRegistry):
    """Models and their versions on a weightbase server: ``ModelRegistry``'s every method.

    It overrides each one (a test checks that none is inherited), so nothing
    here reaches for a catalog; the base class is the API it promises.
    """

    def __init__(
        self, connection: Connection, store: RemoteStore, *, upload_workers: int = 4
    ) -> None:  # no super().__init__: the base's state is a catalog, which is remote
        self._http = connection
        self._store = store
        self.upload_workers = upload_workers
        #: What the last push sent over the network (chunks, bytes, chunks already there).
        self.last_transfer: Transfer | None = None

    # -- models --------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        description: str | None = None,
        licence: str | None = None,
        model_card: str | None = None,
        tags: Iterable[str] = (),
        exist_ok: bool = False,
    ) -> Model:
        body = {
            "name": name,
            "description": description,
            "licence": licence,
            "model_card": model_card,
            "tags": list(tags),
            "exist_ok": exist_ok,
        }
        return decode(Model, self._http.post(_MODELS, body))

    def get(self, name: str) -> Model:
        return decode(Model, self._http.get(_model(name)))

    def list(
        self,
        *,
        name: str | None = None,
        tag: str | None = None,
        alias: str | None = None,
        framework: str | None = None,
        architecture: str | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> Page[Model]:
        found = self._http.get(
            _MODELS,
            name=name,
            tag=tag,
            alias=alias,
            framework=framework,
            architecture=architecture,
            limit=limit,
            after=after,
        )
        return Page(tuple(decode_all(Model, found["items"])), found["next"])

    def update(
        self,
        name: str,
        *,
        description: str | None = None,
        licence: str | None = None,
        model_card: str | None = None,
        reason: str | None = None,
    ) -> Model:
        body = {
            "description": description,
            "licence": licence,
            "model_card": model_card,
            "reason": reason,
        }
        return decode(Model, self._http.patch(_model(name), body))

    def delete(self, name: str, *, force: bool = False, reason: str | None = None) -> None:
        self._http.delete(_model(name), force=force, reason=reason)

    # -- versions ------------------------------------------------------------------------

    def push(
        self,
        name: str,
        source: Any,
        *,
        version: str | None = None,
        bump: BumpPart = "minor",
        description: str | None = None,
        tags: Iterable[str] = (),
        metrics: Mapping[str, float] | None = None,
        stage: str | None = None,
        aliases: Iterable[str] = (),
        config: Mapping[str, Any] | None = None,
        derived_from: VersionLike | None = None,
        fine_tuned_from: VersionLike | None = None,
        codec: str | None = None,
        create: bool = True,
        progress: Callable[[int], None] | None = None,
        stats: WriteStats | None = None,
        trainable: Iterable[str] | None = None,
        delta_from: VersionLike | DeltaParent | None = LINEAGE,
        entry_point: str | None = None,
        init_args: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Store ``source`` as a new version of ``name`` on the server (see ``ModelRegistry.push``).

        Only chunks the server lacks are sent; ``last_transfer`` says how many.
        Pickle-based files are scanned here, before anything is sent, and refused
        on findings, as a local push refuses them.
        """
        from weightbase.governance.scan_results import check_pickled
        from weightbase.registry.push import WriteArgs, write_source
        from weightbase.serving.entry_points import check_recorded, parse_entry_point
        from weightbase.tensors import TensorStore

        if init_args is not None and entry_point is None:
            raise ValidationError("init_args need an entry_point to be passed to")
        # recorded in the snapshot's metadata, where the server reads it back
        entry = parse_entry_point(entry_point, init_args) if entry_point is not None else None

        if isinstance(source, str | os.PathLike) and Path(source).exists():
            check_pickled(source)
        if isinstance(source, Snapshot):
            check_recorded(self._store.snapshot(source.id), entry)
            snapshot_id, pushed_config, found = source.id, None, None  # on the server
            self.last_transfer = Transfer(present_chunks=len(source.chunk_digests()))
        else:
            parent = self._delta_parent(name, delta_from, fine_tuned_from, derived_from)
            parent_snapshot = self._store.snapshot(parent) if parent is not None else None
            with tempfile.TemporaryDirectory(prefix="weightbase-push-") as folder:
                staging = self._store.staging(
                    Path(folder), parent_snapshot, workers=self.upload_workers
                )
                try:
                    staged = TensorStore(staging, options=self._store.options)
                    how: WriteArgs = {
                        "ref": "pushes/staged",
                        "parent": parent,
                        "codec": codec,
                        "progress": progress,
                        "stats": stats,
                    }
                    snapshot, pushed_config, found = write_source(
                        staged, source, how, entry_point=entry
                    )
                    self.last_transfer = self._store.upload(
                        staging, snapshot, workers=self.upload_workers
                    )
                finally:
                    staging.close()
            snapshot_id = snapshot.id
        body = {
            "snapshot": snapshot_id,
            "version": version,
            "bump": bump,
            "description": description,
            "tags": list(tags),
            "metrics": dict(metrics) if metrics is not None else None,
            "stage": stage,
            "aliases": list(aliases),
            "config": dict(config) if config is not None else _plain(pushed_config),
            "derived_from": _ref_text(derived_from),
            "fine_tuned_from": _ref_text(fine_tuned_from),
            "create": create,
            "trainable": _names(trainable if trainable is not None else found),
        }
        if not isinstance(delta_from, DeltaParent):  # absent: the server's default, the lineage
            body["delta_from"] = _ref_text(delta_from)
        return decode(ModelVersion, self._http.post(_model(name) + "/-/versions", body))

    def version(self, ref: VersionLike, version: str | None = None) -> ModelVersion:
        name, part = _split(ref, version)
        return decode(ModelVersion, self._http.get(_version(name, part)))

    def versions(self, name: str, *, include_deleted: bool = False) -> builtins.list[ModelVersion]:
        items: builtins.list[ModelVersion] = []
        after = None
        while True:
            found = self._http.get(
                _model(name) + "/-/versions",
                include_deleted=include_deleted,
                limit=500,
                after=after,
            )
            items += decode_all(ModelVersion, found["items"])
            after = found["next"]
            if after is None:
                return items

    def analysis(self, ref: VersionLike, version: str | None = None) -> ModelAnalysis:
        name, part = _split(ref, version)
        return ModelAnalysis.from_dict(self._http.get(_version(name, part) + "/analysis"))

    def delete_version(
        self, ref: VersionLike, version: str | None = None, *, reason: str | None = None
    ) -> None:
        name, part = _split(ref, version)
        self._http.delete(_version(name, part), reason=reason)

    # -- pulling -------------------------------------------------------------------------

    def pull(
        self, ref: VersionLike, version: str | None = None, *, names: Iterable[str] | None = None
    ) -> Any:
        from weightbase.tensors.formats.torch import read_content

        snapshot_id = self.version(ref, version).snapshot_id
        return read_content(self._store, snapshot_id, names, as_torch=False)

    def pull_torch(
        self, ref: VersionLike, version: str | None = None, *, names: Iterable[str] | None = None
    ) -> Any:
        from weightbase.tensors.formats.torch import read_content

        snapshot_id = self.version(ref, version).snapshot_id
        return read_content(self._store, snapshot_id, names, as_torch=True)

    def load_into(
        self, module: Any, ref: VersionLike, version: str | None = None, *, strict: bool = True
    ) -> Any:
        return module.load_state_dict(self.pull_torch(ref, version), strict=strict)

    def export(
        self,
        ref: VersionLike,
        path: str | os.PathLike[str],
        *,
        version: str | None = None,
        format: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Path:
        from weightbase.tensors.formats import export_path

        found = self.version(ref, version)
        return export_path(
            self._store, found.snapshot_id, Path(path), format=format, progress=progress
        )

    # -- aliases, stages, tags, metrics ---------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: str, *, reason: str | None = None
    ) -> ModelVersion:
        body = {"version": version, "reason": reason}
        return decode(ModelVersion, self._http.put(f"{_model(name)}/-/aliases/{alias}", body))

    def set_alias_in(
        self, session: Session, name: str, alias: str, version: str, *, reason: str | None = None
    ) -> None:
        raise NotSupported(
            "a remote workspace holds no catalog transaction: the server moves aliases "
            "together with other changes (use set_alias here)"
        )

    def remove_alias(self, name: str, alias: str, *, reason: str | None = None) -> None:
        self._http.delete(f"{_model(name)}/-/aliases/{alias}", reason=reason)

    def rollback(
        self, name: str, *, to: str, alias: str = "production", reason: str | None = None
    ) -> ModelVersion:
        body = {"to": to, "alias": alias, "reason": reason}
        return decode(ModelVersion, self._http.post(f"{_model(name)}/-/rollback", body))

    def promote(
        self,
        ref: VersionLike,
        stage: str,
        *,
        version: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        name, part = _split(ref, version)
        body = {"stage": stage, "reason": reason}
        return decode(ModelVersion, self._http.post(_version(name, part) + "/stage", body))

    def tag(self, ref: VersionLike, *tags: str) -> None:
        self._tags(ref, {"add": list(tags)})

    def untag(self, ref: VersionLike, *tags: str) -> None:
        self._tags(ref, {"remove": list(tags)})

    def log_metrics(
        self,
        ref: VersionLike,
        metrics: Mapping[str, float],
        *,
        version: str | None = None,
        dataset: str | None = None,
        step: int | None = None,
    ) -> ModelVersion:
        name, part = _split(ref, version)
        body = {"metrics": dict(metrics), "dataset": dataset, "step": step}
        return decode(ModelVersion, self._http.post(_version(name, part) + "/metrics", body))

    # -- comparing, history, lineage --------------------------------------------------------

    def diff(
        self, a: VersionLike, b: VersionLike, *, model: str | None = None, values: bool = True
    ) -> SnapshotDiff:
        """What changed from ``a`` to ``b``: compared here, reading only the changed chunks."""
        from weightbase.registry.diff import diff_snapshots

        first = self.version(model, a) if model and isinstance(a, str) else self.version(a)
        second = self.version(model, b) if model and isinstance(b, str) else self.version(b)
        return diff_snapshots(
            self._store,
            first.snapshot_id,
            second.snapshot_id,
            metrics_a=first.metrics,
            metrics_b=second.metrics,
            read_values=values,
        )

    def history(
        self, name: str, *, limit: int = 1000, since_id: int | None = None
    ) -> builtins.list[AuditEntry]:
        found = self._http.get(_model(name) + "/-/history", limit=limit, after=since_id)
        return decode_all(AuditEntry, found["items"])

    def link(self, source: VersionLike, relation: str, target: VersionLike | Node) -> None:
        name, part = _split(source, None)
        body: dict[str, Any] = {"relation": relation}
        if isinstance(target, Node):
            body.update(kind=target.kind, id=target.id)
        else:
            body["version"] = _ref_text(target)
        self._http.post(_version(name, part) + "/links", body)

    def node(self, ref: VersionLike) -> Node:
        return Node("model_version", str(self.version(ref).id))

    def lineage(
        self,
        ref: VersionLike,
        *,
        direction: Literal["ancestors", "descendants"] = "ancestors",
        depth: int | None = None,
    ) -> builtins.list[ReachedNode]:
        if direction not in ("ancestors", "descendants"):
            raise ValidationError(f"direction must be ancestors or descendants, not {direction!r}")
        name, part = _split(ref, None)
        found = self._http.get(_version(name, part) + "/lineage", direction=direction, depth=depth)
        return decode_all(ReachedNode, found["items"])

    def describe(self, nodes: Iterable[Node]) -> dict[Node, str]:
        wanted = builtins.list(nodes)
        body = {"nodes": [node.to_dict() for node in wanted]}
        names = self._http.post(f"{_MODELS}/describe", body, retry=True)["names"]
        return {node: name for node, name in zip(wanted, names, strict=True) if name is not None}

    # -- helpers -------------------------------------------------------------------------

    def _tags(self, ref: VersionLike, body: dict[str, Any]) -> None:
        if isinstance(ref, ModelVersion) or "@" in ref:
            name, part = _split(ref, None)
            self._http.post(_version(name, part) + "/tags", body)
        else:
            self._http.post(_model(ref) + "/-/tags", body)

    def _delta_parent(
        self,
        name: str,
        delta_from: VersionLike | DeltaParent | None,
        fine_tuned_from: VersionLike | None,
        derived_from: VersionLike | None,
    ) -> str | None:
        """The snapshot the staging store takes deltas against, as a local push chooses it."""
        if delta_from is None:
            return None
        if not isinstance(delta_from, DeltaParent):
            return self.version(delta_from).snapshot_id
        lineage = fine_tuned_from if fine_tuned_from is not None else derived_from
        if lineage is not None:
            return self.version(lineage).snapshot_id
        return self._latest_snapshot(name)

    def _latest_snapshot(self, name: str) -> str | None:
        try:
            found = self._http.get(_version(name, "latest"))
        except NotFound:
            return None
        snapshot_id: str = found["snapshot_id"]
        return snapshot_id


def _model(name: str) -> str:
    return f"{_MODELS}/{path_of(check_model_name(name))}"


def _version(name: str, version: str | None) -> str:
    return f"{_model(name)}/-/versions/{version or 'latest'}"


def _split(ref: VersionLike | None, version: str | None) -> tuple[str, str | None]:
    if isinstance(ref, ModelVersion):
        return ref.model, ref.version
    if ref is None:
        raise ValidationError("name a model version: 'name@version' or a record")
    return split_version(ref, version)


def _ref_text(ref: VersionLike | None) -> str | None:
    if ref is None:
        return None
    return ref.ref if isinstance(ref, ModelVersion) else ref


def _names(names: Iterable[str] | None) -> builtins.list[str] | None:
    return sorted(names) if names is not None else None


def _plain(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if config is None:
        return None
    import json

    loaded: dict[str, Any] = json.loads(json.dumps(dict(config), default=str))
    return loaded
