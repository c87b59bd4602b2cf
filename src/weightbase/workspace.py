"""``weightbase.open()``: one handle on a catalog, a tensor store and the services on them.

    with weightbase.open() as wb:          # $WEIGHTBASE_HOME, created on first use
        wb.events.on("model_version_created", print)
        wb.lineage.ancestors(Node("model_version", "7"))

Opening is cheap to import: SQLAlchemy, Alembic and the services load when a
workspace is first opened, not on ``import weightbase``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from weightbase.config import Settings

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.datasets.service import DatasetRegistry
    from weightbase.events import EventBus
    from weightbase.governance.access import Access
    from weightbase.governance.approvals import Approvals
    from weightbase.governance.audit import AuditLog
    from weightbase.governance.compliance import Compliance
    from weightbase.governance.ethics import Ethics
    from weightbase.governance.explain import Explanations
    from weightbase.governance.scan_results import Scans
    from weightbase.lineage import LineageService, Node
    from weightbase.monitoring.service import Monitoring
    from weightbase.registry.service import ModelRegistry
    from weightbase.serving.abtests import ABTests
    from weightbase.serving.fusion import Reactors
    from weightbase.serving.inference_log import InferenceLog
    from weightbase.serving.service import Deployments
    from weightbase.tensors import TensorStore
    from weightbase.tensors.maintenance import GcReport
    from weightbase.tracking.service import RunTracker
    from weightbase.versioning.publish import RecoveryReport
    from weightbase.webhooks import Webhooks

__all__ = ["Collected", "Workspace", "open"]


@dataclass(frozen=True, slots=True)
class Collected:
    """What :meth:`Workspace.gc` did: publishes finished or dropped, then the store's gc."""

    publishes: RecoveryReport
    store: GcReport


class Workspace:
    """A catalog and a tensor store, and one small service per domain on top of them.

    ``catalog``, ``store``, ``events``, ``audit``, ``lineage`` and the
    ``recorder`` every service writes its changes through exist from the start;
    domain services (``models``, ``datasets``, ``runs``…) are properties built
    on first use, so a workspace pays only for what it uses.
    """

    def __init__(self, home: Path, catalog: Catalog, store: TensorStore) -> None:
        from weightbase.changes import ChangeRecorder
        from weightbase.events import EventBus
        from weightbase.governance.audit import AuditLog
        from weightbase.lineage import LineageService

        self.home = home
        self.catalog = catalog
        self.store = store
        self.events: EventBus = EventBus(catalog)
        self.audit: AuditLog = AuditLog(catalog)
        self.recorder: ChangeRecorder = ChangeRecorder(self.audit, self.events)
        self.lineage: LineageService = LineageService(catalog, recorder=self.recorder)
        self._services_lock = threading.Lock()
        self._closed = False

    # -- domain services, built on first use -----------------------------------------

    @cached_property
    def models(self) -> ModelRegistry:
        """The model registry: versions, aliases, stages, diffs, rollback, lineage."""
        from weightbase.governance.approvals import production_guard
        from weightbase.registry.service import ModelRegistry

        return ModelRegistry(
            self.catalog,
            self.store,
            recorder=self.recorder,
            lineage=self.lineage,
            guard=production_guard,
        )

    @cached_property
    def datasets(self) -> DatasetRegistry:
        """Dataset versions with statistics, a quality score and reproducible splits."""
        from weightbase.datasets.service import DatasetRegistry

        return DatasetRegistry(
            self.catalog, self.store, recorder=self.recorder, lineage=self.lineage
        )

    @cached_property
    def runs(self) -> RunTracker:
        """Experiment tracking: runs, params, metrics, artifacts, comparison, convergence."""
        from weightbase.tracking.service import RunTracker

        return RunTracker(self.catalog, self.store, recorder=self.recorder, lineage=self.lineage)

    @cached_property
    def approvals(self) -> Approvals:
        """Approval policies per model, approval requests and decisions per version."""
        from weightbase.governance.approvals import Approvals

        return Approvals(self.catalog, recorder=self.recorder, models=self.models)

    @cached_property
    def compliance(self) -> Compliance:
        """Policies evaluated per model version into stored compliance reports."""
        from weightbase.governance.compliance import Compliance

        return Compliance(self.catalog, recorder=self.recorder, models=self.models)

    @cached_property
    def ethics(self) -> Ethics:
        """Ethics reviews: a reviewer's signed-off questionnaire on each model version."""
        from weightbase.governance.ethics import Ethics

        return Ethics(self.catalog, recorder=self.recorder, models=self.models)

    @cached_property
    def explanations(self) -> Explanations:
        """Feature attributions of tabular model versions (shap: ``weightbase[explain]``)."""
        from weightbase.governance.explain import Explanations

        return Explanations(self.catalog, recorder=self.recorder, models=self.models)

    @cached_property
    def scans(self) -> Scans:
        """The scans of each version's pickled files, stored by the push that stored them."""
        from weightbase.governance.scan_results import Scans

        return Scans(self.catalog, version_id=lambda ref: self.models.version(ref).id)

    @cached_property
    def webhooks(self) -> Webhooks:
        """Webhooks: event types POSTed to other systems, signed, retried and logged."""
        from weightbase.webhooks import Webhooks

        return Webhooks(self.catalog, recorder=self.recorder)

    @cached_property
    def deployments(self) -> Deployments:
        """Model versions deployed to environments: configuration, scale, status, history."""
        from weightbase.governance.approvals import production_guard
        from weightbase.serving.service import Deployments

        return Deployments(
            self.catalog, recorder=self.recorder, models=self.models, guard=production_guard
        )

    @cached_property
    def inference(self) -> InferenceLog:
        """What inference servers recorded: windows of metrics and sessions per model."""
        from weightbase.serving.inference_log import InferenceLog

        return InferenceLog(self.catalog, models=self.models)

    @cached_property
    def abtests(self) -> ABTests:
        """A/B tests between model versions: sticky assignment, outcomes, results, promote."""
        from weightbase.serving.abtests import ABTests

        return ABTests(self.catalog, recorder=self.recorder, models=self.models)

    @cached_property
    def monitoring(self) -> Monitoring:
        """Deployed models in production: sampled requests, late labels, alerts, health."""
        from weightbase.monitoring.reference import DriftAnalyzer
        from weightbase.monitoring.service import Monitoring

        return Monitoring(
            self.catalog,
            recorder=self.recorder,
            models=self.models,
            deployments=self.deployments,
            inference=self.inference,
            drift=DriftAnalyzer(self),
        )

    @cached_property
    def reactors(self) -> Reactors:
        """Fusion reactors: ensembles and cascades of served models, and their operations."""
        from weightbase.serving.fusion import Reactors
        from weightbase.serving.runnable import load_runnable

        return Reactors(
            self.catalog,
            self.store,
            recorder=self.recorder,
            models=self.models,
            load=lambda ref: load_runnable(self, ref),
        )

    @cached_property
    def access(self) -> Access:
        """Users, API tokens, model ownership, and who may do what."""
        from weightbase.governance.access import Access

        return Access(
            self.catalog, recorder=self.recorder, model_id=lambda name: self.models.get(name).id
        )

    # -- across domains --------------------------------------------------------------

    def describe(self, nodes: Iterable[Node]) -> dict[Node, str]:
        """A readable name per lineage node: ``name@version`` for model and dataset
        versions, ``run 12`` for a run, ``kind:id`` for anything else."""
        wanted = list(nodes)
        names = {node: str(node) for node in wanted}
        names.update({node: f"run {node.id}" for node in wanted if node.kind == "run"})
        names.update(self.models.describe(wanted))
        names.update(self.datasets.describe(wanted))
        return names

    # -- maintenance -----------------------------------------------------------------

    def gc(self, *, grace_seconds: float | None = None, dry_run: bool = False) -> Collected:
        """Finish or drop interrupted publishes, then collect what no ref reaches.

        A push or dataset registration killed after its catalog row committed
        but before its permanent ref was set is finished (its ref is set); one
        killed before the commit leaves content no one references, which the
        store's gc then removes. Both steps leave anything younger than
        ``grace_seconds`` (default: the store's, an hour) alone, so running
        writers are safe.
        """
        from weightbase.datasets.service import PINS as DATASET_PINS
        from weightbase.registry.service import PINS as MODEL_PINS
        from weightbase.tensors.maintenance import DEFAULT_GRACE_SECONDS
        from weightbase.versioning.publish import recover_pending

        grace = DEFAULT_GRACE_SECONDS if grace_seconds is None else grace_seconds
        recovered = recover_pending(
            self.catalog,
            self.store,
            [*MODEL_PINS, *DATASET_PINS],
            grace_seconds=grace,
            dry_run=dry_run,
        )
        return Collected(recovered, self.store.gc(grace_seconds=grace, dry_run=dry_run))

    # -- lifetime --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the store and the catalog's connections; closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self.store.close()
        finally:
            self.catalog.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace(catalog={self.catalog.url!r}, store={self.store.objects.url!r})"


def open(
    home: str | os.PathLike[str] | None = None,
    *,
    catalog_url: str | None = None,
    store_url: str | None = None,
    token: str | None = None,
) -> Workspace:
    """Open (creating on first use) the workspace in ``home``, or the server at a URL.

    ``home`` given as ``http://host:port`` (or, with no arguments at all,
    ``WEIGHTBASE_URL`` set) opens a remote workspace on that server, signed in
    with ``token`` (default ``WEIGHTBASE_TOKEN``): the same services over HTTP
    (:mod:`weightbase.remote`). Otherwise each location comes from, in order:
    the argument, the environment (``WEIGHTBASE_CATALOG_URL``,
    ``WEIGHTBASE_STORE_URL``), then ``home`` (``$WEIGHTBASE_HOME``, default
    ``~/.weightbase``): ``catalog.db`` and ``store/`` inside it.
    """
    url = _server_url(home, catalog_url, store_url)
    if url is not None:
        from weightbase.remote import connect

        return connect(url, token=token or os.environ.get("WEIGHTBASE_TOKEN") or None)
    from weightbase.catalog import Catalog
    from weightbase.tensors import TensorStore

    config = Settings.from_env(home)
    catalog = Catalog.open(catalog_url or config.catalog_url)
    try:
        store = TensorStore.open(store_url or config.store_url)
    except BaseException:
        catalog.close()
        raise
    return Workspace(config.home, catalog, store)


def _server_url(
    home: str | os.PathLike[str] | None, catalog_url: str | None, store_url: str | None
) -> str | None:
    if isinstance(home, str) and home.startswith(("http://", "https://")):
        if catalog_url or store_url:
            from weightbase.errors import ValidationError

            raise ValidationError("a server URL takes no catalog_url or store_url")
        return home
    if home is None and catalog_url is None and store_url is None:
        return os.environ.get("WEIGHTBASE_URL", "").strip() or None
    return None


if TYPE_CHECKING:
    from weightbase.tracking.run import ActiveRun
    from weightbase.training.ports import TrainingWorkspace

    def _trains(workspace: Workspace) -> TrainingWorkspace[ActiveRun]:
        return workspace  # mypy checks here that a workspace is all that training needs
