"""``wb.models``: the model registry on the catalog and the tensor store.

    v1 = wb.models.push("bert-tiny", model)                  # 0.1.0
    v2 = wb.models.push("bert-tiny", tuned, bump="minor",    # 0.2.0, shares
                        fine_tuned_from=v1)                  #   every unchanged chunk
    wb.models.set_alias("bert-tiny", "production", v2.version)
    wb.models.diff("bert-tiny@0.1.0", "bert-tiny@production")
    wb.models.rollback("bert-tiny", to="0.1.0", reason="latency regression")

Weights go to the tensor store first (each version's snapshot is pinned there
by its own ref); the catalog row that makes the version visible is committed
last, so a crash leaves either no version or a whole one. Every change is one
catalog transaction that also writes its audit entries, lineage edges and
events: a model's history is its audit trail.

A version is named by ``name@ref`` (or ``name`` and ``ref`` apart), where
``ref`` is a semantic version, an alias (``production``) or ``latest``.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import blake3
import numpy as np
from sqlalchemy import and_, exists, select

from weightbase.catalog.rows import add_tag, tags_of
from weightbase.catalog.schema import (
    STAGES,
    AliasRow,
    ModelRow,
    ModelVersionLayerRow,
    ModelVersionRow,
    TagRow,
    VersionMetricRow,
    utcnow,
)
from weightbase.errors import Conflict, NotFound, ValidationError
from weightbase.lineage import Node
from weightbase.names import check_entity_name, check_tag, split_ref
from weightbase.registry.analysis import ModelAnalysis, analyse, trainable_parameter_names
from weightbase.registry.diff import SnapshotDiff, diff_snapshots
from weightbase.registry.records import Model, ModelVersion, Page
from weightbase.tensors.manifest import Snapshot
from weightbase.versioning.named import NamedEntities
from weightbase.versioning.publish import (
    Pin,
    Publication,
    content_digest,
    next_number,
    publish_snapshot,
    same_content,
)
from weightbase.versioning.semver import (
    BumpPart,
    canonical_version,
    latest_version,
    parse_version,
    version_key,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.governance.audit import AuditEntry
    from weightbase.lineage import LineageService, ReachedNode
    from weightbase.tensors import TensorStore, WriteStats

__all__ = ["ModelRegistry", "VersionLike"]

#: A version: a record, or ``"name@ref"`` text.
VersionLike = ModelVersion | str

_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}$")
_METRIC = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./ -]{0,254}$")
_LATEST = "latest"
_VERSION_NODE = "model_version"


# -- names -----------------------------------------------------------------------------


def check_model_name(name: str) -> str:
    """``name`` if it is a valid model name (``org/name`` style, ≤ 255 characters)."""
    return check_entity_name(name, what="model")


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias == _LATEST:
        raise ValidationError(
            f"invalid alias {alias!r}: a letter, then letters, digits, '_' or '-' "
            "(at most 128 characters; 'latest' is reserved)",
            alias=alias,
        )
    return alias


def check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise ValidationError(
            f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}", stage=stage
        )
    return stage


def version_ref(version_id: int) -> str:
    """The tensor-store ref that pins a model version's weights."""
    return f"registry/model-versions/{version_id}"


#: Where model versions reference snapshots, for finishing interrupted publishes.
PINS = (
    Pin(
        ModelVersionRow.snapshot_id,
        ModelVersionRow.id,
        ModelVersionRow.deleted_at.is_(None),
        version_ref,
    ),
)


def _is_version(text: str) -> bool:
    try:
        canonical_version(text)
    except ValidationError:
        return False
    return True


# -- the service ---------------------------------------------------------------------------


class ModelRegistry:
    """Models and their versions, aliases, stages, tags, metrics, diffs and lineage."""

    def __init__(
        self,
        catalog: Catalog,
        store: TensorStore,
        *,
        recorder: ChangeRecorder,
        lineage: LineageService,
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._recorder = recorder
        self._lineage = lineage
        self._named = NamedEntities(ModelRow, "model", recorder=recorder)

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
        """Register a model with no versions yet (``push`` creates one as needed)."""
        check_model_name(name)
        tag_list = [check_tag(tag) for tag in tags]

        def work(session: Session) -> int:
            row = self._named.live(session, name)
            if row is not None:
                if exist_ok:
                    return row.id
                raise Conflict(f"model {name!r} already exists", name=name)
            row = self._named.insert(session, name)
            changes = {"description": description, "licence": licence, "model_card": model_card}
            for field_name, value in changes.items():
                if value is not None:
                    setattr(row, field_name, value)
            for tag in tag_list:
                add_tag(session, "model", row.id, tag)
            return row.id

        model_id = self._catalog.write(work)
        return self._model_by_id(model_id)

    def get(self, name: str) -> Model:
        """The live model called ``name``."""
        with self._catalog.session() as session:
            row = self._named.require(session, name)
            return self._models(session, [row])[0]

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
        """Live models, by name, filtered by every condition given.

        ``name`` matches a substring of the name; ``tag`` a tag of the model
        (``tag("bert", …)``, not of a version); ``architecture`` a model type
        (``bert``, ``llama``) of any live version; ``alias`` models that have it
        set. Pages are ``limit`` long; pass the page's ``next_after`` to go on.
        """
        if not 1 <= limit <= 1000:
            raise ValidationError(f"limit must be between 1 and 1000, not {limit}")
        query = select(ModelRow).where(ModelRow.deleted_at.is_(None))
        if name:
            pattern = "%" + name.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
            query = query.where(ModelRow.name.ilike(pattern + "%", escape="\\"))
        if tag is not None:
            tagged = select(TagRow.entity_id).where(
                TagRow.entity_kind == "model", TagRow.tag == tag
            )
            query = query.where(ModelRow.id.in_(tagged))
        if alias is not None:
            query = query.where(
                exists().where(AliasRow.model_id == ModelRow.id, AliasRow.alias == alias)
            )
        if framework is not None:
            query = query.where(ModelRow.framework == framework)
        if architecture is not None:
            typed = select(ModelVersionRow.model_id).where(
                ModelVersionRow.model_type == architecture, ModelVersionRow.deleted_at.is_(None)
            )
            query = query.where(ModelRow.id.in_(typed))
        if after is not None:
            query = query.where(ModelRow.name > after)
        query = query.order_by(ModelRow.name).limit(limit + 1)
        with self._catalog.session() as session:
            rows = list(session.scalars(query))
            more = len(rows) > limit
            rows = rows[:limit]
            models = self._models(session, rows)
        return Page(tuple(models), models[-1].name if more and models else None)

    def update(
        self,
        name: str,
        *,
        description: str | None = None,
        licence: str | None = None,
        model_card: str | None = None,
        reason: str | None = None,
    ) -> Model:
        """Change a model's description, licence or model card (markdown); None keeps one."""
        changes = {"description": description, "licence": licence, "model_card": model_card}
        changes = {key: value for key, value in changes.items() if value is not None}

        def work(session: Session) -> int:
            row = self._named.require(session, name, lock=True)
            before = {key: _audited(key, getattr(row, key)) for key in changes}
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            after = {key: _audited(key, value) for key, value in changes.items()}
            self._named.record(
                session, row.id, "model.update", before=before, after=after, reason=reason
            )
            return row.id

        return self._model_by_id(self._catalog.write(work))

    def delete(self, name: str, *, force: bool = False, reason: str | None = None) -> None:
        """Soft-delete a model (its name becomes free); refused while it has aliases.

        ``force`` removes its aliases first. The versions' weights are unpinned:
        the store's next gc frees the chunks no other snapshot uses.
        """

        def work(session: Session) -> builtins.list[int]:
            row = self._named.require(session, name, lock=True)
            aliases = self._aliases_of_model(session, row.id)
            if aliases and not force:
                shown = ", ".join(f"{alias} → {version}" for alias, version in aliases.items())
                raise Conflict(
                    f"model {name!r} has aliases ({shown}); remove them first or delete "
                    "with force=True",
                    name=name,
                )
            for alias in aliases:
                self._remove_alias_row(session, row.id, alias)
            row.deleted_at = utcnow()
            self._named.record(
                session,
                row.id,
                "model.delete",
                before={"aliases": aliases},
                reason=reason,
                event="model_deleted",
                payload={"model": name},
            )
            return list(
                session.scalars(
                    select(ModelVersionRow.id).where(
                        ModelVersionRow.model_id == row.id, ModelVersionRow.deleted_at.is_(None)
                    )
                )
            )

        for version_id in self._catalog.write(work):
            self._unpin(version_id)

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
    ) -> ModelVersion:
        """Store ``source`` as a new version of ``name`` and return it.

        ``source`` is a torch module, a state dict of torch tensors or NumPy
        arrays, a path to a ``.safetensors`` or torch weights file, a Hugging
        Face model folder, or a :class:`Snapshot` already in the store. The
        version is ``version`` when given, else the latest bumped by ``bump``.
        ``stage`` defaults to ``development``.

        Content equal to a live version's is not stored twice: that version is
        returned with ``created=False``, with the tags, aliases, metrics,
        lineage, stage and description this push names applied to it (an
        explicit ``version`` other than its own is a ``Conflict``). Changed
        tensors are stored as deltas of the latest version where that is smaller.
        What storing the weights cost is added into ``stats``, when given.
        """
        check_model_name(name)
        if stage is not None:
            check_stage(stage)
        alias_list = [check_alias(alias) for alias in aliases]
        tag_list = [check_tag(tag) for tag in tags]
        metric_values = _check_metrics(metrics or {})
        explicit = canonical_version(version) if version is not None else None
        if explicit is None and bump not in ("major", "minor", "patch"):
            raise ValidationError(f"cannot bump {bump!r}; choose one of major, minor, patch")
        links = {
            relation: self.version(ref)
            for relation, ref in (
                ("derived_from", derived_from),
                ("fine_tuned_from", fine_tuned_from),
            )
            if ref is not None
        }

        parent = self._latest_snapshot(name)
        with publish_snapshot(self._store, "models") as publication:
            snapshot, push_config, trainable = self._store_source(
                source, publication, parent, codec, progress, stats
            )
            analysis = analyse(
                snapshot, self._store, config=push_config or config, trainable=trainable
            )
            digest = content_digest(snapshot)
            actor = self._recorder.actor

            def work(session: Session) -> tuple[int, bool]:
                if create:
                    model = self._named.live(session, name, lock=True)
                    if model is None:
                        model = self._named.insert(session, name)
                else:
                    model = self._named.require(session, name, lock=True)
                row = same_content(
                    session, ModelVersionRow, ModelVersionRow.model_id == model.id, digest
                )
                created = row is None
                if row is None:
                    number = next_number(
                        session,
                        ModelVersionRow,
                        ModelVersionRow.model_id == model.id,
                        explicit,
                        bump,
                        what=model.name,
                    )
                    row = self._insert_version(
                        session, model, number, snapshot, digest, analysis, actor
                    )
                    row.stage = stage or "development"
                    row.description = description
                    if model.framework is None:
                        model.framework = analysis.framework
                    after = {
                        "version": number,
                        "snapshot_id": snapshot.id,
                        "stage": row.stage,
                        "parameters": analysis.parameters,
                    }
                    self._named.record(
                        session,
                        model.id,
                        "version.create",
                        after=after,
                        event="model_version_created",
                        payload={
                            "model": name,
                            "version": number,
                            "snapshot_id": snapshot.id,
                            "id": row.id,
                        },
                    )
                elif explicit is not None and explicit != row.version:
                    raise Conflict(
                        f"this content is already {name}@{row.version}; it cannot also be "
                        f"{explicit} (tag or alias the existing version instead)",
                        model=name,
                        version=row.version,
                    )
                else:
                    self._apply_extras(session, model, row, stage=stage, description=description)
                model.updated_at = utcnow()
                for tag in tag_list:
                    add_tag(session, "model_version", row.id, tag)
                for metric, value in metric_values.items():
                    session.add(VersionMetricRow(version_id=row.id, name=metric, value=value))
                node = Node(_VERSION_NODE, str(row.id))
                for relation, other in links.items():
                    self._recorder.link(session, node, Node(_VERSION_NODE, str(other.id)), relation)
                for alias in alias_list:
                    self._set_alias_row(session, model.id, alias, row, None)
                return row.id, created

            version_id, created = self._catalog.write(work, attempts=8)
            if created:  # an identical version keeps the snapshot it has
                publication.pin({version_ref(version_id): snapshot})
        result = self._version_by_id(version_id)
        return result if created else _replace(result, created=False)

    def _unpin(self, version_id: int) -> None:
        with contextlib.suppress(NotFound):
            self._store.delete_ref(version_ref(version_id))

    def _apply_extras(
        self,
        session: Session,
        model: ModelRow,
        row: ModelVersionRow,
        *,
        stage: str | None,
        description: str | None,
    ) -> None:
        """An identical push still applies the stage and description it names."""
        if stage is not None and stage != row.stage:
            before = {"version": row.version, "stage": row.stage}
            row.stage = stage
            self._named.record(
                session,
                model.id,
                "version.stage",
                before=before,
                after={"version": row.version, "stage": stage},
            )
        if description is not None and description != row.description:
            row.description = description

    def version(self, ref: VersionLike, version: str | None = None) -> ModelVersion:
        """A version: ``version("bert@1.0.0")``, ``version("bert", "production")``, a record.

        Without a ref, ``latest``: the highest live version by SemVer precedence.
        """
        if isinstance(ref, ModelVersion):
            return self._version_by_id(ref.id)
        name, part = split_ref(ref)
        if version is not None:
            if part is not None:
                raise ValidationError(f"{ref!r} already names a version; pass one or the other")
            part = version
        with self._catalog.session() as session:
            model = self._named.require(session, name)
            row = self._resolve(session, model, part)
            return self._versions(session, model, [row])[0]

    def versions(self, name: str, *, include_deleted: bool = False) -> builtins.list[ModelVersion]:
        """Every version of a model, oldest first by SemVer precedence."""
        with self._catalog.session() as session:
            model = self._named.require(session, name)
            query = select(ModelVersionRow).where(ModelVersionRow.model_id == model.id)
            if not include_deleted:
                query = query.where(ModelVersionRow.deleted_at.is_(None))
            rows = list(session.scalars(query))
            versions = self._versions(session, model, rows)

        return sorted(versions, key=lambda item: version_key(item.version))

    def analysis(self, ref: VersionLike, version: str | None = None) -> ModelAnalysis:
        """What the push found in a version: parameters, dtypes, architecture and layers."""
        found = self.version(ref, version)
        with self._catalog.session() as session:
            data = session.scalars(
                select(ModelVersionRow.analysis).where(ModelVersionRow.id == found.id)
            ).one()
        if data is None:  # pragma: no cover - every push stores one
            return analyse(found.snapshot_id, self._store)
        return ModelAnalysis.from_dict(data)

    def delete_version(
        self, ref: VersionLike, version: str | None = None, *, reason: str | None = None
    ) -> None:
        """Soft-delete a version (its weights are unpinned); refused while an alias points at it."""
        found = self.version(ref, version)

        def work(session: Session) -> None:
            model = self._named.require(session, found.model, lock=True)
            row = session.get_one(ModelVersionRow, found.id)
            aliases = self._aliases_of_version(session, row.id)
            if aliases:
                raise Conflict(
                    f"{found.ref} is aliased as {', '.join(aliases)}; move or remove the "
                    "alias first",
                    model=found.model,
                    version=found.version,
                )
            row.deleted_at = utcnow()
            self._named.record(
                session, model.id, "version.delete", before={"version": row.version}, reason=reason
            )

        self._catalog.write(work)
        self._unpin(found.id)

    # -- pulling -------------------------------------------------------------------------

    def pull(
        self, ref: VersionLike, version: str | None = None, *, names: Iterable[str] | None = None
    ) -> dict[str, np.ndarray[Any, Any]]:
        """A version's tensors as NumPy arrays (all, or ``names``)."""
        found = self.version(ref, version)
        return self._store.read(found.snapshot_id, names)

    def pull_torch(
        self, ref: VersionLike, version: str | None = None, *, names: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """A version's tensors as a torch state dict (CPU tensors)."""
        found = self.version(ref, version)
        return self._store.read_torch(found.snapshot_id, names)

    def load_into(
        self, module: Any, ref: VersionLike, version: str | None = None, *, strict: bool = True
    ) -> Any:
        """Load a version's weights into a torch module; returns what ``load_state_dict`` does."""
        state = self.pull_torch(ref, version)
        return module.load_state_dict(state, strict=strict)

    def export(
        self,
        ref: VersionLike,
        path: str | os.PathLike[str],
        *,
        version: str | None = None,
        format: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Path:
        """Write a version out: ``safetensors``, ``torch``, ``npz`` or its model ``folder``.

        ``progress`` is called with counts of tensor bytes as they are written.
        """
        from weightbase.tensors.formats import export_path

        found = self.version(ref, version)
        return export_path(
            self._store, found.snapshot_id, Path(path), format=format, progress=progress
        )

    # -- aliases, stages, tags, metrics ---------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: str, *, reason: str | None = None
    ) -> ModelVersion:
        """Point ``alias`` at ``version`` of ``name`` (moving it if it is set)."""
        check_alias(alias)

        def work(session: Session) -> int:
            model = self._named.require(session, name, lock=True)
            row = self._resolve(session, model, version)
            self._set_alias_row(session, model.id, alias, row, reason)
            return row.id

        return self._version_by_id(self._catalog.write(work))

    def remove_alias(self, name: str, alias: str, *, reason: str | None = None) -> None:
        def work(session: Session) -> None:
            model = self._named.require(session, name, lock=True)
            old = self._remove_alias_row(session, model.id, alias)
            if old is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}", model=name, alias=alias)
            self._named.record(
                session,
                model.id,
                "alias.remove",
                before={"alias": alias, "version": old},
                reason=reason,
            )

        self._catalog.write(work)

    def rollback(
        self, name: str, *, to: str, alias: str = "production", reason: str | None = None
    ) -> ModelVersion:
        """Move ``alias`` back to version ``to``, recording why in the audit log."""
        check_alias(alias)

        def work(session: Session) -> int:
            model = self._named.require(session, name, lock=True)
            current = self._aliases_of_model(session, model.id).get(alias)
            if current is None:
                raise NotFound(
                    f"model {name!r} has no alias {alias!r} to roll back; set it with set_alias",
                    model=name,
                    alias=alias,
                )
            row = self._resolve(session, model, to)
            if row.version == current:
                raise ValidationError(f"{name}@{alias} already points at {current}")
            self._set_alias_row(session, model.id, alias, row, reason, action="alias.rollback")
            self._recorder.emit(
                session,
                "model_rolled_back",
                {"model": name, "alias": alias, "from": current, "to": row.version},
            )
            return row.id

        return self._version_by_id(self._catalog.write(work))

    def promote(
        self,
        ref: VersionLike,
        stage: str,
        *,
        version: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Move a version to ``stage`` (development, staging, production, deprecated, archived)."""
        check_stage(stage)
        found = self.version(ref, version)

        def work(session: Session) -> int:
            model = self._named.require(session, found.model, lock=True)
            row = session.get_one(ModelVersionRow, found.id)
            if row.deleted_at is not None:
                raise NotFound(f"{found.ref} was deleted")
            before = {"version": row.version, "stage": row.stage}
            row.stage = stage
            after = {"version": row.version, "stage": stage}
            self._named.record(
                session,
                model.id,
                "version.stage",
                before=before,
                after=after,
                reason=reason,
                event="model_stage_changed",
                payload={
                    "model": found.model,
                    "version": row.version,
                    "from": before["stage"],
                    "to": stage,
                },
            )
            return row.id

        return self._version_by_id(self._catalog.write(work))

    def tag(self, ref: VersionLike, *tags: str) -> None:
        """Tag a model (``"bert"``) or a version (``"bert@1.0.0"``)."""
        self._change_tags(ref, tags, add=True)

    def untag(self, ref: VersionLike, *tags: str) -> None:
        self._change_tags(ref, tags, add=False)

    def log_metrics(
        self,
        ref: VersionLike,
        metrics: Mapping[str, float],
        *,
        version: str | None = None,
        dataset: str | None = None,
        step: int | None = None,
    ) -> ModelVersion:
        """Attach measured metrics (``{"accuracy": 0.91}``) to a version."""
        values = _check_metrics(metrics)
        found = self.version(ref, version)

        def work(session: Session) -> None:
            for metric, value in values.items():
                session.add(
                    VersionMetricRow(
                        version_id=found.id, name=metric, value=value, dataset=dataset, step=step
                    )
                )
            self._named.record(
                session,
                found.model_id,
                "version.metrics",
                after={"version": found.version, "metrics": values, "dataset": dataset},
            )

        self._catalog.write(work)
        return self._version_by_id(found.id)

    # -- comparing, history, lineage --------------------------------------------------------

    def diff(
        self, a: VersionLike, b: VersionLike, *, model: str | None = None, values: bool = True
    ) -> SnapshotDiff:
        """What changed from version ``a`` to ``b``, tensor by tensor, and their metrics.

        ``a`` and ``b`` are ``name@ref`` (or records); with ``model``, plain refs
        of that model. Unchanged tensors are known from their digests alone;
        changed ones are read and compared unless ``values`` is false.
        """
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

    def history(self, name: str, *, limit: int = 1000) -> builtins.list[AuditEntry]:
        """Every change to a model, oldest first: versions, alias moves, stage changes…"""
        with self._catalog.session() as session:
            model = self._named.require(session, name)
            return self._recorder.audit.entries("model", model.id, limit=limit, session=session)

    def link(self, source: VersionLike, relation: str, target: VersionLike | Node) -> None:
        """Record ``source <relation> target`` (a version, or any lineage node)."""
        node = self.node(source)
        other = target if isinstance(target, Node) else self.node(target)
        self._lineage.add_edge(node, other, relation)

    def node(self, ref: VersionLike) -> Node:
        """The lineage node of a version."""
        return Node(_VERSION_NODE, str(self.version(ref).id))

    def lineage(
        self,
        ref: VersionLike,
        *,
        direction: Literal["ancestors", "descendants"] = "ancestors",
        depth: int | None = None,
    ) -> builtins.list[ReachedNode]:
        """Where a version came from (or what came from it), nearest first."""
        if direction not in ("ancestors", "descendants"):
            raise ValidationError(f"direction must be ancestors or descendants, not {direction!r}")
        node = self.node(ref)
        if direction == "ancestors":
            return self._lineage.ancestors(node, depth=depth)
        return self._lineage.descendants(node, depth=depth)

    def describe(self, nodes: Iterable[Node]) -> dict[Node, str]:
        """``name@version`` for each of ``nodes`` that is a model version (the others are left out).

        ``wb.describe`` names every kind of node.
        """
        ids = {int(n.id) for n in nodes if n.kind == _VERSION_NODE and n.id.isdigit()}
        if not ids:
            return {}
        query = (
            select(ModelVersionRow.id, ModelRow.name, ModelVersionRow.version)
            .join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
            .where(ModelVersionRow.id.in_(ids))
        )
        with self._catalog.session() as session:
            return {
                Node(_VERSION_NODE, str(row_id)): f"{model}@{number}"
                for row_id, model, number in session.execute(query)
            }

    # -- storing a source ------------------------------------------------------------------

    def _latest_snapshot(self, name: str) -> str | None:
        with self._catalog.session() as session:
            model = self._named.live(session, name)
            if model is None:
                return None
            rows = list(
                session.execute(
                    select(ModelVersionRow.version, ModelVersionRow.snapshot_id).where(
                        ModelVersionRow.model_id == model.id, ModelVersionRow.deleted_at.is_(None)
                    )
                )
            )
        newest = latest_version(version for version, _ in rows)
        return next((snap for version, snap in rows if version == newest), None)

    def _store_source(
        self,
        source: Any,
        publication: Publication,
        parent: str | None,
        codec: str | None,
        progress: Callable[[int], None] | None,
        stats: WriteStats | None,
    ) -> tuple[Snapshot, Mapping[str, Any] | None, Any]:
        """Write ``source`` to the store; returns the snapshot, a config and trainable names."""
        from weightbase.tensors.formats import import_path
        from weightbase.tensors.write import FileSource

        if isinstance(source, Snapshot):
            return publication.hold(self._store.snapshot(source.id)), None, None
        ref = publication.pending_ref()
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if not path.exists():
                raise ValidationError(f"{path} does not exist (expected a weights file or folder)")
            snapshot = import_path(
                self._store,
                path,
                ref=ref,
                parent=parent,
                codec=codec,
                progress=progress,
                stats=stats,
            )
            return snapshot, None, None
        if callable(getattr(source, "state_dict", None)) and callable(
            getattr(source, "named_parameters", None)
        ):
            config = _module_config(source)
            files = []
            if config is not None:
                text = json.dumps(config, indent=2, sort_keys=True, default=str).encode()
                files.append(FileSource("config.json", text))
            snapshot = self._store.write(
                source.state_dict(),
                ref=ref,
                parent=parent,
                files=files,
                metadata={"framework": "pytorch"},
                codec=codec,
                progress=progress,
                stats=stats,
            )
            return snapshot, config, trainable_parameter_names(source)
        if isinstance(source, Mapping):
            if not source:
                raise ValidationError("cannot push a model with no tensors")
            framework = "pytorch" if any(_is_torch(value) for value in source.values()) else "numpy"
            snapshot = self._store.write(
                source,
                ref=ref,
                parent=parent,
                metadata={"framework": framework},
                codec=codec,
                progress=progress,
                stats=stats,
            )
            return snapshot, None, None
        raise ValidationError(
            f"cannot push a {type(source).__name__}: expected a torch module, a state dict, "
            "a dict of NumPy arrays, a path to a .safetensors/torch file or model folder, "
            "or a Snapshot"
        )

    # -- rows ------------------------------------------------------------------------------

    def _insert_version(
        self,
        session: Session,
        model: ModelRow,
        number: str,
        snapshot: Snapshot,
        digest: str,
        analysis: ModelAnalysis,
        actor: str,
    ) -> ModelVersionRow:

        parsed = parse_version(number)
        arch = analysis.architecture
        row = ModelVersionRow(
            model_id=model.id,
            version=number,
            major=parsed.major,
            minor=parsed.minor,
            patch=parsed.patch,
            prerelease=parsed.prerelease or None,
            snapshot_id=snapshot.id,
            content_digest=digest,
            framework=analysis.framework,
            model_type=arch.model_type if arch else None,
            num_layers=arch.num_layers if arch else None,
            hidden_size=arch.hidden_size if arch else None,
            num_attention_heads=arch.num_attention_heads if arch else None,
            head_dim=arch.head_dim if arch else None,
            total_params=analysis.parameters,
            trainable_params=analysis.trainable_parameters,
            logical_bytes=analysis.logical_bytes,
            stored_bytes=analysis.stored_bytes,
            dtypes=dict(analysis.dtypes),
            analysis=analysis.to_dict(),
            created_at=utcnow(),
            created_by=actor,
        )
        session.add(row)
        session.flush()
        for layer in analysis.layers:
            session.add(
                ModelVersionLayerRow(
                    version_id=row.id,
                    stack=layer.stack,
                    layer_index=layer.index,
                    fused_qkv=layer.fused_qkv,
                    hidden_size=layer.hidden_size,
                    num_heads=layer.num_heads,
                    num_kv_heads=layer.num_kv_heads,
                    head_dim=layer.head_dim,
                    q_tensor=layer.query,
                    k_tensor=layer.key,
                    v_tensor=layer.value,
                    o_tensor=layer.output,
                )
            )
        return row

    def _resolve(self, session: Session, model: ModelRow, ref: str | None) -> ModelVersionRow:
        """The live version ``ref`` (a version, an alias or ``latest``) of ``model``."""
        live = and_(ModelVersionRow.model_id == model.id, ModelVersionRow.deleted_at.is_(None))
        if ref is None or ref == _LATEST:
            rows = list(
                session.execute(select(ModelVersionRow.version, ModelVersionRow.id).where(live))
            )
            newest = latest_version(version for version, _ in rows)
            if newest is None:
                raise NotFound(f"model {model.name!r} has no versions", model=model.name)
            wanted = next(row_id for version, row_id in rows if version == newest)
            return session.get_one(ModelVersionRow, wanted)
        if _is_version(ref):
            number = canonical_version(ref)
            row = session.scalars(
                select(ModelVersionRow).where(live, ModelVersionRow.version == number)
            ).first()
            if row is None:
                raise NotFound(
                    f"no version {model.name}@{number}", model=model.name, version=number
                )
            return row
        found = session.scalars(
            select(ModelVersionRow)
            .join(AliasRow, AliasRow.version_id == ModelVersionRow.id)
            .where(AliasRow.model_id == model.id, AliasRow.alias == ref)
        ).first()
        if found is None:
            raise NotFound(
                f"model {model.name!r} has no version or alias {ref!r}", model=model.name, ref=ref
            )
        return found

    def _aliases_of_model(self, session: Session, model_id: int) -> dict[str, str]:
        query = (
            select(AliasRow.alias, ModelVersionRow.version)
            .join(ModelVersionRow, ModelVersionRow.id == AliasRow.version_id)
            .where(AliasRow.model_id == model_id)
            .order_by(AliasRow.alias)
        )
        return {alias: version for alias, version in session.execute(query)}

    def _aliases_of_version(self, session: Session, version_id: int) -> builtins.list[str]:
        query = (
            select(AliasRow.alias).where(AliasRow.version_id == version_id).order_by(AliasRow.alias)
        )
        return list(session.scalars(query))

    def _set_alias_row(
        self,
        session: Session,
        model_id: int,
        alias: str,
        row: ModelVersionRow,
        reason: str | None,
        *,
        action: str = "alias.set",
    ) -> None:
        existing = session.scalars(
            select(AliasRow).where(AliasRow.model_id == model_id, AliasRow.alias == alias)
        ).first()
        before = None
        if existing is None:
            session.add(
                AliasRow(model_id=model_id, alias=alias, version_id=row.id, updated_at=utcnow())
            )
        else:
            if existing.version_id == row.id:
                return
            old = session.get_one(ModelVersionRow, existing.version_id)
            before = {"alias": alias, "version": old.version}
            existing.version_id = row.id
            existing.updated_at = utcnow()
        after = {"alias": alias, "version": row.version}
        self._named.record(
            session,
            model_id,
            action,
            before=before,
            after=after,
            reason=reason,
            event="model_alias_set",
            payload={"model_id": model_id, "alias": alias, "version": row.version},
        )

    def _remove_alias_row(self, session: Session, model_id: int, alias: str) -> str | None:
        existing = session.scalars(
            select(AliasRow).where(AliasRow.model_id == model_id, AliasRow.alias == alias)
        ).first()
        if existing is None:
            return None
        version = session.get_one(ModelVersionRow, existing.version_id).version
        session.delete(existing)
        return version

    def _change_tags(self, ref: VersionLike, tags: Sequence[str], *, add: bool) -> None:
        checked = [check_tag(tag) for tag in tags]
        if not checked:
            raise ValidationError("no tags given")
        is_version = isinstance(ref, ModelVersion) or split_ref(ref)[1] is not None
        found = self.version(ref) if is_version else None
        name = found.model if found is not None else str(ref)

        def work(session: Session) -> None:
            model = self._named.require(session, name, lock=True)
            kind, entity = ("model_version", found.id) if found is not None else ("model", model.id)
            changed = []
            for tag in checked:
                if add:
                    if add_tag(session, kind, entity, tag):
                        changed.append(tag)
                else:
                    row = session.scalars(
                        select(TagRow).where(
                            TagRow.entity_kind == kind,
                            TagRow.entity_id == entity,
                            TagRow.tag == tag,
                        )
                    ).first()
                    if row is not None:
                        session.delete(row)
                        changed.append(tag)
            if changed:
                target = {"tags": changed}
                if found is not None:
                    target["version"] = found.version  # type: ignore[assignment]
                action = "tag.add" if add else "tag.remove"
                self._named.record(
                    session,
                    model.id,
                    action,
                    before=None if add else target,
                    after=target if add else None,
                )

        self._catalog.write(work)

    # -- records ---------------------------------------------------------------------------

    def _model_by_id(self, model_id: int) -> Model:
        with self._catalog.session() as session:
            return self._models(session, [session.get_one(ModelRow, model_id)])[0]

    def _version_by_id(self, version_id: int) -> ModelVersion:
        with self._catalog.session() as session:
            row = session.get_one(ModelVersionRow, version_id)
            model = session.get_one(ModelRow, row.model_id)
            return self._versions(session, model, [row])[0]

    def _models(self, session: Session, rows: Sequence[ModelRow]) -> builtins.list[Model]:
        """Records for ``rows``, with tags, aliases and latest versions in three queries."""
        ids = [row.id for row in rows]
        if not ids:
            return []
        tags = tags_of(session, "model", ids)
        aliases: dict[int, dict[str, str]] = {}
        for model_id, alias, version in session.execute(
            select(AliasRow.model_id, AliasRow.alias, ModelVersionRow.version)
            .join(ModelVersionRow, ModelVersionRow.id == AliasRow.version_id)
            .where(AliasRow.model_id.in_(ids))
            .order_by(AliasRow.alias)
        ):
            aliases.setdefault(model_id, {})[alias] = version
        numbers: dict[int, builtins.list[str]] = {}
        for model_id, version in session.execute(
            select(ModelVersionRow.model_id, ModelVersionRow.version).where(
                ModelVersionRow.model_id.in_(ids), ModelVersionRow.deleted_at.is_(None)
            )
        ):
            numbers.setdefault(model_id, []).append(version)
        return [
            Model(
                id=row.id,
                name=row.name,
                description=row.description,
                licence=row.licence,
                model_card=row.model_card,
                framework=row.framework,
                owner=row.owner,
                created_at=row.created_at,
                updated_at=row.updated_at,
                tags=tuple(tags.get(row.id, ())),
                aliases=aliases.get(row.id, {}),
                latest_version=latest_version(numbers.get(row.id, ())),
                version_count=len(numbers.get(row.id, ())),
            )
            for row in rows
        ]

    def _versions(
        self, session: Session, model: ModelRow, rows: Sequence[ModelVersionRow]
    ) -> builtins.list[ModelVersion]:
        ids = [row.id for row in rows]
        if not ids:
            return []
        tags = tags_of(session, "model_version", ids)
        aliases: dict[int, builtins.list[str]] = {}
        for version_id, alias in session.execute(
            select(AliasRow.version_id, AliasRow.alias)
            .where(AliasRow.version_id.in_(ids))
            .order_by(AliasRow.alias)
        ):
            aliases.setdefault(version_id, []).append(alias)
        metrics: dict[int, dict[str, float]] = {}
        for version_id, metric, value in session.execute(
            select(VersionMetricRow.version_id, VersionMetricRow.name, VersionMetricRow.value)
            .where(VersionMetricRow.version_id.in_(ids))
            .order_by(VersionMetricRow.id)
        ):
            metrics.setdefault(version_id, {})[metric] = value  # the latest value wins
        return [
            ModelVersion(
                id=row.id,
                model=model.name,
                model_id=model.id,
                version=row.version,
                snapshot_id=row.snapshot_id,
                content_digest=row.content_digest,
                stage=row.stage,
                description=row.description,
                framework=row.framework,
                model_type=row.model_type,
                num_layers=row.num_layers,
                hidden_size=row.hidden_size,
                num_attention_heads=row.num_attention_heads,
                head_dim=row.head_dim,
                total_params=row.total_params,
                trainable_params=row.trainable_params,
                logical_bytes=row.logical_bytes,
                stored_bytes=row.stored_bytes,
                dtypes=row.dtypes or {},
                created_at=row.created_at,
                created_by=row.created_by,
                aliases=tuple(aliases.get(row.id, ())),
                tags=tuple(tags.get(row.id, ())),
                metrics=metrics.get(row.id, {}),
            )
            for row in rows
        ]


# -- helpers -------------------------------------------------------------------------------


def _check_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    values: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not _METRIC.match(name):
            raise ValidationError(
                f"invalid metric name {name!r}: letters, digits and _ . / - or space, "
                "at most 255 characters",
                metric=name,
            )
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ValidationError(
                f"metric {name!r} must be a number, not {type(value).__name__}", metric=name
            )
        number = float(value)
        if not np.isfinite(number):
            raise ValidationError(f"metric {name!r} is {number}; version metrics must be finite")
        values[name] = number
    return values


def _audited(field: str, value: str | None) -> Any:
    """What the audit log keeps of a field: a model card by its size and digest, not its text."""
    if field != "model_card" or value is None:
        return value
    digest = blake3.blake3(value.encode()).hexdigest()[:16]
    return {"characters": len(value), "blake3": digest}


def _is_torch(value: object) -> bool:
    return type(value).__module__.startswith("torch")


def _module_config(module: Any) -> dict[str, Any] | None:
    """A Hugging Face model's config as a dict (None for a plain module)."""
    config = getattr(module, "config", None)
    to_dict = getattr(config, "to_dict", None)
    if callable(to_dict):
        data = to_dict()
        if isinstance(data, dict):
            return data
    return None


def _replace(version: ModelVersion, **changes: Any) -> ModelVersion:
    from dataclasses import replace

    return replace(version, **changes)
