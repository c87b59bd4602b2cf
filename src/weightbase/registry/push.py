"""Pushing a version: storing a source's weights, then publishing them as ``name@version``.

The weights go to the tensor store first, under a pending ref, sharing every
chunk already there and stored as deltas of the delta parent where that pays
(the version it is fine-tuned or derived from, else the model's latest; or
``delta_from``); then one catalog transaction finds a live version with the
same content or inserts a new one, with its tags, metrics, aliases, lineage
edges, history and events; last, a new version's snapshot is pinned by its own
ref (:mod:`weightbase.versioning.publish`). A crash leaves no version or a whole one.
Files a loader would unpickle are scanned before anything is written, and the clean
scan is kept with the version (:mod:`weightbase.governance.scan_results`).
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from sqlalchemy import select

from weightbase.catalog.rows import add_tag
from weightbase.catalog.schema import ModelRow, ModelVersionRow, utcnow
from weightbase.errors import Conflict, ValidationError
from weightbase.governance.scan_results import check_pickled, check_snapshot, store_scan
from weightbase.names import check_tag
from weightbase.registry.aliases import check_alias, check_stage, set_alias_row, set_stage
from weightbase.registry.analysis import analyse, trainable_parameter_names
from weightbase.registry.context import PRODUCTION, version_node, version_ref
from weightbase.registry.metrics import add_metrics, check_metrics
from weightbase.registry.models import check_model_name
from weightbase.registry.queries import VersionLike, find_version
from weightbase.registry.rows import insert_version, load_version
from weightbase.tensors.manifest import Snapshot
from weightbase.versioning.publish import (
    Pin,
    Publication,
    content_digest,
    next_number,
    publish_snapshot,
    same_content,
)
from weightbase.versioning.semver import BumpPart, latest_version

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.governance.scan_records import ScanReport
    from weightbase.registry.context import RegistryContext
    from weightbase.registry.records import ModelVersion
    from weightbase.serving.entry_points import EntryPoint
    from weightbase.tensors import TensorStore, WriteStats

__all__ = ["LINEAGE", "PINS", "DeltaParent", "PushOptions", "WriteArgs", "push", "write_source"]


class DeltaParent(enum.Enum):
    """The default ``delta_from`` of a push: the version its lineage names."""

    LINEAGE = "lineage"


#: Deltas against ``fine_tuned_from``, else ``derived_from``, else the model's latest version.
LINEAGE = DeltaParent.LINEAGE

#: Where model versions reference snapshots, for finishing interrupted publishes.
PINS = (
    Pin(
        ModelVersionRow.snapshot_id,
        ModelVersionRow.id,
        ModelVersionRow.deleted_at.is_(None),
        version_ref,
    ),
)


@dataclass(frozen=True, slots=True)
class PushOptions:
    """What a push names besides the model and its source (see ``ModelRegistry.push``)."""

    version: str | None
    bump: BumpPart
    description: str | None
    tags: tuple[str, ...]
    metrics: Mapping[str, float] | None
    stage: str | None
    aliases: tuple[str, ...]
    config: Mapping[str, Any] | None
    derived_from: VersionLike | None
    fine_tuned_from: VersionLike | None
    codec: str | None
    create: bool
    progress: Callable[[int], None] | None
    stats: WriteStats | None
    trainable: tuple[str, ...] | None = None
    delta_from: VersionLike | DeltaParent | None = LINEAGE
    entry_point: EntryPoint | None = None


def push(context: RegistryContext, name: str, source: Any, options: PushOptions) -> ModelVersion:
    """Store ``source`` and publish it as a version of ``name`` (or find it already is one)."""
    check_model_name(name)
    stage = check_stage(options.stage) if options.stage is not None else None
    alias_list = [check_alias(alias) for alias in options.aliases]
    tag_list = [check_tag(tag) for tag in options.tags]
    metric_values = check_metrics(options.metrics or {})
    explicit = context.models.check_new_version(
        context.catalog, ModelVersionRow, name, options.version, options.bump
    )
    if explicit is None and options.bump not in ("major", "minor", "patch"):
        raise ValidationError(f"cannot bump {options.bump!r}; choose one of major, minor, patch")
    links = {
        relation: find_version(context, ref)
        for relation, ref in (
            ("derived_from", options.derived_from),
            ("fine_tuned_from", options.fine_tuned_from),
        )
        if ref is not None
    }

    # Refused on findings before anything is stored; None when nothing there is pickled.
    scan = _scan(context, source)
    parent = _delta_parent(context, name, options.delta_from, links)
    with publish_snapshot(context.store, "models") as publication:
        snapshot, push_config, trainable = _store_source(
            context, source, publication, parent, options
        )
        analysis = analyse(
            snapshot, context.store, config=push_config or options.config, trainable=trainable
        )
        digest = content_digest(snapshot, described=_described(snapshot))
        actor = context.recorder.actor

        def work(session: Session) -> tuple[int, bool]:
            if options.create:
                model = context.models.live(session, name, lock=True)
                if model is None:
                    model = context.models.insert(session, name)
            else:
                model = context.models.require(session, name, lock=True)
            owner = ModelVersionRow.model_id == model.id
            row = same_content(session, ModelVersionRow, owner, digest)
            created = row is None
            if row is None:
                number = next_number(
                    session, ModelVersionRow, owner, explicit, options.bump, what=model.name
                )
                row = insert_version(session, model, number, snapshot, digest, analysis, actor)
                row.stage = stage or "development"
                if row.stage == PRODUCTION:
                    context.check_production(session, model.id, row)
                row.description = options.description
                if model.framework is None:
                    model.framework = analysis.framework
                context.models.record(
                    session,
                    model.id,
                    "version.create",
                    after={
                        "version": number,
                        "snapshot_id": snapshot.id,
                        "stage": row.stage,
                        "parameters": analysis.parameters,
                    },
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
                _apply_extras(
                    context, session, model, row, stage=stage, description=options.description
                )
            model.updated_at = utcnow()
            for tag in tag_list:
                add_tag(session, "model_version", row.id, tag)
            add_metrics(session, row.id, metric_values)
            node = version_node(row.id)
            for relation, other in links.items():
                context.recorder.link(session, node, version_node(other.id), relation)
            for alias in alias_list:
                set_alias_row(context, session, model.id, alias, row, None)
            if scan is not None:
                store_scan(session, row.id, scan)
            return row.id, created

        version_id, created = context.catalog.write(work, attempts=8)
        if created:  # an identical version keeps the snapshot it has
            publication.pin({version_ref(version_id): snapshot})
    result = load_version(context, version_id)
    return result if created else replace(result, created=False)


def _apply_extras(
    context: RegistryContext,
    session: Session,
    model: ModelRow,
    row: ModelVersionRow,
    *,
    stage: str | None,
    description: str | None,
) -> None:
    """An identical push still applies the stage and description it names."""
    if stage is not None and stage != row.stage:
        set_stage(context, session, model, row, stage)
    if description is not None and description != row.description:
        row.description = description


def _delta_parent(
    context: RegistryContext,
    name: str,
    delta_from: VersionLike | DeltaParent | None,
    links: Mapping[str, ModelVersion],
) -> str | None:
    """The snapshot a push stores deltas against: ``delta_from``'s, else its lineage's."""
    if delta_from is None:
        return None
    if not isinstance(delta_from, DeltaParent):
        return find_version(context, delta_from).snapshot_id
    # A fine-tune shares nearly every weight's high bytes with what it was tuned from,
    # whichever model that version belongs to; the model's own latest may be unrelated.
    lineage = links.get("fine_tuned_from") or links.get("derived_from")
    if lineage is not None:
        return lineage.snapshot_id
    return _latest_snapshot(context, name)


def _latest_snapshot(context: RegistryContext, name: str) -> str | None:
    """The snapshot of the latest live version of ``name``: the default delta parent."""
    with context.catalog.session() as session:
        model = context.models.live(session, name)
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


# -- storing a source ------------------------------------------------------------------


class WriteArgs(TypedDict):
    """How every kind of source is written: under a ref, against a parent."""

    ref: str
    parent: str | None
    codec: str | None
    progress: Callable[[int], None] | None
    stats: WriteStats | None


def _store_source(
    context: RegistryContext,
    source: Any,
    publication: Publication,
    parent: str | None,
    options: PushOptions,
) -> tuple[Snapshot, Mapping[str, Any] | None, Any]:
    """Write ``source`` under the publish's pending ref; the snapshot, a config, trainable names."""
    if isinstance(source, Snapshot):
        held = publication.hold(context.store.snapshot(source.id))
        _check_entry_point(held, options.entry_point)
        return held, None, set(options.trainable) if options.trainable is not None else None
    how: WriteArgs = {
        "ref": publication.pending_ref(),
        "parent": parent,
        "codec": options.codec,
        "progress": options.progress,
        "stats": options.stats,
    }
    return write_source(context.store, source, how, entry_point=options.entry_point)


def write_source(
    store: TensorStore, source: Any, how: WriteArgs, *, entry_point: EntryPoint | None = None
) -> tuple[Snapshot, Mapping[str, Any] | None, Any]:
    """Write any source a push takes to ``store``; the snapshot, a config and trainable names.

    A remote workspace writes through this too, into its staging store. ``entry_point``
    is recorded in the snapshot's metadata, where a remote push's server finds it too.
    """
    from weightbase.tensors.formats import import_path
    from weightbase.tensors.write import FileSource

    entry = _entry_metadata(entry_point)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise ValidationError(f"{path} does not exist (expected a weights file or folder)")
        return import_path(store, path, metadata=entry or None, **how), None, None
    if callable(getattr(source, "state_dict", None)) and callable(
        getattr(source, "named_parameters", None)
    ):
        config = _module_config(source)
        files = []
        if config is not None:
            text = json.dumps(config, indent=2, sort_keys=True, default=str).encode()
            files.append(FileSource("config.json", text))
        metadata = {"framework": "pytorch", **entry}
        snapshot = store.write(source.state_dict(), files=files, metadata=metadata, **how)
        return snapshot, config, trainable_parameter_names(source)
    if isinstance(source, Mapping):
        if not source:
            raise ValidationError("cannot push a model with no tensors")
        framework = "pytorch" if any(_is_torch(value) for value in source.values()) else "numpy"
        metadata = {"framework": framework, **entry}
        return store.write(source, metadata=metadata, **how), None, None
    raise ValidationError(
        f"cannot push a {type(source).__name__}: expected a torch module, a state dict, "
        "a dict of NumPy arrays, a path to a .safetensors/torch file or model folder, "
        "or a Snapshot"
    )


def _entry_metadata(entry_point: EntryPoint | None) -> dict[str, str]:
    from weightbase.serving.entry_points import METADATA_KEY

    return {METADATA_KEY: entry_point.to_metadata()} if entry_point is not None else {}


def _described(snapshot: Snapshot) -> dict[str, Any] | None:
    """The entry point is part of a version's content: the same weights built by other
    code are another version."""
    from weightbase.serving.entry_points import entry_point_of

    entry_point = entry_point_of(snapshot)
    return {"entry_point": entry_point.to_dict()} if entry_point is not None else None


def _check_entry_point(snapshot: Snapshot, entry_point: EntryPoint | None) -> None:
    from weightbase.serving.entry_points import check_recorded

    check_recorded(snapshot, entry_point)


def _scan(context: RegistryContext, source: Any) -> ScanReport | None:
    """The scan of what a loader of ``source`` would unpickle; refused on findings."""
    if _is_existing_path(source):
        return check_pickled(source)
    if isinstance(source, Snapshot):
        return check_snapshot(context.store, context.store.snapshot(source.id))
    return None


def _is_existing_path(source: Any) -> bool:
    return isinstance(source, str | os.PathLike) and Path(source).exists()


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
