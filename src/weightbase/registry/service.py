"""``wb.models``: the model registry on the catalog and the tensor store.

    v1 = wb.models.push("bert-tiny", model)                  # 0.1.0
    v2 = wb.models.push("bert-tiny", tuned, bump="minor",    # 0.2.0, shares
                        fine_tuned_from=v1)                  #   every unchanged chunk
    wb.models.set_alias("bert-tiny", "production", v2.version)
    wb.models.diff("bert-tiny@0.1.0", "bert-tiny@production")
    wb.models.rollback("bert-tiny", to="0.1.0", reason="latency regression")

:class:`ModelRegistry` holds the public API and its defaults; each call is
done by one part, all sharing one :class:`~weightbase.registry.context.RegistryContext`:
:mod:`~weightbase.registry.push`, :mod:`~weightbase.registry.queries`,
:mod:`~weightbase.registry.aliases` (and stages), :mod:`~weightbase.registry.tags`,
:mod:`~weightbase.registry.metrics` and :mod:`~weightbase.registry.models`.
Every change is one catalog transaction that also writes its audit entries,
lineage edges and events: a model's history is its audit trail.

A version is named by ``name@ref`` (or ``name`` and ``ref`` apart), where
``ref`` is a semantic version, an alias (``production``) or ``latest``.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from weightbase.catalog.schema import ModelRow
from weightbase.errors import ValidationError
from weightbase.lineage import Node
from weightbase.registry import aliases as _aliases
from weightbase.registry import metrics as _metrics
from weightbase.registry import models as _models
from weightbase.registry import push as _push
from weightbase.registry import queries as _queries
from weightbase.registry import tags as _tags
from weightbase.registry.context import (
    ProductionGuard,
    RegistryContext,
    version_node,
    version_ref,
)
from weightbase.registry.diff import SnapshotDiff, diff_snapshots
from weightbase.registry.push import LINEAGE, PINS, DeltaParent
from weightbase.registry.queries import VersionLike
from weightbase.versioning.named import NamedEntities

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.governance.audit import AuditEntry
    from weightbase.lineage import LineageService, ReachedNode
    from weightbase.registry.analysis import ModelAnalysis
    from weightbase.registry.records import Model, ModelVersion, Page
    from weightbase.tensors import TensorStore, WriteStats
    from weightbase.versioning.semver import BumpPart

__all__ = ["PINS", "ModelRegistry", "VersionLike", "version_ref"]


class ModelRegistry:
    """Models and their versions, aliases, stages, tags, metrics, diffs and lineage.

    ``guard``, when given, is asked before any version enters the ``production``
    stage or alias, in that change's transaction, and may refuse it (the
    workspace passes the governance approval check).
    """

    def __init__(
        self,
        catalog: Catalog,
        store: TensorStore,
        *,
        recorder: ChangeRecorder,
        lineage: LineageService,
        guard: ProductionGuard | None = None,
    ) -> None:
        named = NamedEntities(ModelRow, "model", recorder=recorder)
        self._context = RegistryContext(catalog, store, recorder, lineage, named, guard)

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
        fields = {"description": description, "licence": licence, "model_card": model_card}
        return _models.create(self._context, name, fields, tags=tags, exist_ok=exist_ok)

    def get(self, name: str) -> Model:
        """The live model called ``name``."""
        return _queries.get(self._context, name)

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
        return _queries.list_models(
            self._context,
            name=name,
            tag=tag,
            alias=alias,
            framework=framework,
            architecture=architecture,
            limit=limit,
            after=after,
        )

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
        fields = {"description": description, "licence": licence, "model_card": model_card}
        return _models.update(self._context, name, fields, reason=reason)

    def delete(self, name: str, *, force: bool = False, reason: str | None = None) -> None:
        """Soft-delete a model (its name becomes free); refused while it has aliases.

        ``force`` removes its aliases first. The versions' weights are unpinned:
        the store's next gc frees the chunks no other snapshot uses.
        """
        _models.delete(self._context, name, force=force, reason=reason)

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
        tensors are stored as deltas where that pays, against ``delta_from``: by
        default (``LINEAGE``) the ``fine_tuned_from`` version, else the
        ``derived_from`` one, of whichever model, else ``name``'s latest; a
        version ref picks another, within a model or across models; None
        stores the weights whole.
        What storing the weights cost is added into ``stats``, when given.
        ``trainable`` names the trainable parameters of a ``Snapshot`` source (a
        module's own are read from it; other sources count every parameter).
        ``entry_point`` (``package.module:Name``) names the user's importable class that
        builds the version, with JSON ``init_args``, or a ``predict`` function; it is
        recorded with the weights and is part of the version's content (see
        :func:`weightbase.serving.runnable.load_runnable`).
        """
        from weightbase.serving.entry_points import parse_entry_point

        if init_args is not None and entry_point is None:
            raise ValidationError("init_args need an entry_point to be passed to")
        entry = parse_entry_point(entry_point, init_args) if entry_point is not None else None
        options = _push.PushOptions(
            version=version,
            bump=bump,
            description=description,
            tags=tuple(tags),
            metrics=metrics,
            stage=stage,
            aliases=tuple(aliases),
            config=config,
            derived_from=derived_from,
            fine_tuned_from=fine_tuned_from,
            codec=codec,
            create=create,
            progress=progress,
            stats=stats,
            trainable=tuple(trainable) if trainable is not None else None,
            delta_from=delta_from,
            entry_point=entry,
        )
        return _push.push(self._context, name, source, options)

    def version(self, ref: VersionLike, version: str | None = None) -> ModelVersion:
        """A version: ``version("bert@1.0.0")``, ``version("bert", "production")``, a record.

        Without a ref, ``latest``: the highest live version by SemVer precedence.
        """
        return _queries.find_version(self._context, ref, version)

    def versions(self, name: str, *, include_deleted: bool = False) -> builtins.list[ModelVersion]:
        """Every version of a model, oldest first by SemVer precedence."""
        return _queries.versions(self._context, name, include_deleted=include_deleted)

    def analysis(self, ref: VersionLike, version: str | None = None) -> ModelAnalysis:
        """What the push found in a version: parameters, dtypes, architecture and layers."""
        return _queries.analysis(self._context, self.version(ref, version))

    def delete_version(
        self, ref: VersionLike, version: str | None = None, *, reason: str | None = None
    ) -> None:
        """Soft-delete a version (its weights are unpinned); refused while an alias points at it."""
        _models.delete_version(self._context, ref, version, reason=reason)

    # -- pulling -------------------------------------------------------------------------

    def pull(
        self, ref: VersionLike, version: str | None = None, *, names: Iterable[str] | None = None
    ) -> Any:
        """A version's tensors as NumPy arrays (all, or ``names``).

        A version pushed from a training checkpoint comes back whole (without
        ``names``): the checkpoint's own nested object, with arrays for its tensors.
        """
        return self._pull(self.version(ref, version).snapshot_id, names, as_torch=False)

    def pull_torch(
        self, ref: VersionLike, version: str | None = None, *, names: Iterable[str] | None = None
    ) -> Any:
        """A version's tensors as a torch state dict (CPU tensors).

        A version pushed from a training checkpoint comes back whole (without
        ``names``): the object ``torch.load`` gave, with the same tensors bit for bit.
        """
        return self._pull(self.version(ref, version).snapshot_id, names, as_torch=True)

    def _pull(self, snapshot_id: str, names: Iterable[str] | None, *, as_torch: bool) -> Any:
        from weightbase.tensors.formats.torch import read_content

        return read_content(self._context.store, snapshot_id, names, as_torch=as_torch)

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
            self._context.store, found.snapshot_id, Path(path), format=format, progress=progress
        )

    # -- aliases, stages, tags, metrics ---------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: str, *, reason: str | None = None
    ) -> ModelVersion:
        """Point ``alias`` at ``version`` of ``name`` (moving it if it is set)."""
        return _aliases.set_alias(self._context, name, alias, version, reason=reason)

    def set_alias_in(
        self, session: Session, name: str, alias: str, version: str, *, reason: str | None = None
    ) -> None:
        """:meth:`set_alias` in the caller's transaction (another domain's change that must
        land with it, or not at all: an A/B test's promotion)."""
        _aliases.set_alias_in(self._context, session, name, alias, version, reason=reason)

    def remove_alias(self, name: str, alias: str, *, reason: str | None = None) -> None:
        """Remove ``alias`` of ``name``; ``NotFound`` if it is not set."""
        _aliases.remove_alias(self._context, name, alias, reason=reason)

    def rollback(
        self, name: str, *, to: str, alias: str = "production", reason: str | None = None
    ) -> ModelVersion:
        """Move ``alias`` back to version ``to``, recording why in the audit log."""
        return _aliases.rollback(self._context, name, to=to, alias=alias, reason=reason)

    def promote(
        self,
        ref: VersionLike,
        stage: str,
        *,
        version: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Move a version to ``stage`` (development, staging, production, deprecated, archived)."""
        return _aliases.promote(self._context, ref, version, stage, reason=reason)

    def tag(self, ref: VersionLike, *tags: str) -> None:
        """Tag a model (``"bert"``) or a version (``"bert@1.0.0"``)."""
        _tags.change_tags(self._context, ref, tags, add=True)

    def untag(self, ref: VersionLike, *tags: str) -> None:
        """Remove tags from a model (``"bert"``) or a version (``"bert@1.0.0"``)."""
        _tags.change_tags(self._context, ref, tags, add=False)

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
        return _metrics.log_metrics(
            self._context, ref, version, metrics, dataset=dataset, step=step
        )

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
            self._context.store,
            first.snapshot_id,
            second.snapshot_id,
            metrics_a=first.metrics,
            metrics_b=second.metrics,
            read_values=values,
        )

    def history(
        self, name: str, *, limit: int = 1000, since_id: int | None = None
    ) -> builtins.list[AuditEntry]:
        """Every change to a model, oldest first: versions, alias moves, stage changes…

        ``since_id`` pages on: the id of the last entry seen.
        """
        return _queries.history(self._context, name, limit=limit, since_id=since_id)

    def link(self, source: VersionLike, relation: str, target: VersionLike | Node) -> None:
        """Record ``source <relation> target`` (a version, or any lineage node)."""
        node = self.node(source)
        other = target if isinstance(target, Node) else self.node(target)
        self._context.lineage.add_edge(node, other, relation)

    def node(self, ref: VersionLike) -> Node:
        """The lineage node of a version."""
        return version_node(self.version(ref).id)

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
            return self._context.lineage.ancestors(node, depth=depth)
        return self._context.lineage.descendants(node, depth=depth)

    def describe(self, nodes: Iterable[Node]) -> dict[Node, str]:
        """``name@version`` for each of ``nodes`` that is a model version (the others are left out).

        ``wb.describe`` names every kind of node.
        """
        return _queries.describe(self._context, nodes)
