"""``weightbase.open("http://host:8080", token=...)``: a workspace served by ``weightbase server``.

    with weightbase.open("http://127.0.0.1:8080", token=os.environ["WEIGHTBASE_TOKEN"]) as wb:
        wb.models.push("bert", model)          # only the chunks the server lacks travel
        wb.models.pull("bert@production")      # every chunk verified against its digest

The services have the embedded workspace's methods and return its records, so
code (and training) written against one runs against the other. What only a
workspace on the server's own machine can do (its catalog, its store's
maintenance) raises :class:`~weightbase.errors.NotSupported` naming the way to
do it instead.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, NoReturn

from weightbase.errors import NotSupported
from weightbase.remote.http import Connection, RetryPolicy
from weightbase.workspace import Workspace

if TYPE_CHECKING:
    from collections.abc import Iterable

    from weightbase.datasets.service import DatasetRegistry
    from weightbase.governance.access import Access
    from weightbase.governance.approvals import Approvals
    from weightbase.governance.compliance import Compliance
    from weightbase.governance.ethics import Ethics
    from weightbase.governance.explain import Explanations
    from weightbase.governance.scan_results import Scans
    from weightbase.lineage import LineageService, Node
    from weightbase.monitoring.service import Monitoring
    from weightbase.registry.service import ModelRegistry
    from weightbase.remote.store import RemoteStore
    from weightbase.serving.abtests import ABTests
    from weightbase.serving.fusion import Reactors
    from weightbase.serving.inference_log import InferenceLog
    from weightbase.serving.service import Deployments
    from weightbase.tracking.service import RunTracker
    from weightbase.webhooks import Webhooks
    from weightbase.workspace import Collected

_LOCAL_MEMBERS = frozenset({"catalog", "events", "audit", "recorder", "home"})

__all__ = ["RemoteWorkspace", "connect"]


class RemoteWorkspace(Workspace):
    """The services of a workspace, over a weightbase server's REST API.

    A ``Workspace`` to its callers: the same services with the same methods
    (each overridden, none inherited); the members that are a local catalog's
    raise ``NotSupported``.
    """

    def __init__(self, connection: Connection) -> None:  # no catalog or store of its own
        self.connection = connection
        self.url = connection.url
        self._closed = False

    @cached_property
    def store(self) -> RemoteStore:  # type: ignore[override]
        """The server's tensor store: verified reads, checkpoint writes under ``checkpoints/``."""
        from weightbase.remote.store import RemoteStore

        return RemoteStore(self.connection)

    @cached_property
    def models(self) -> ModelRegistry:
        """The model registry on the server (the methods of ``ModelRegistry``)."""
        from weightbase.remote.models import RemoteModels

        return RemoteModels(self.connection, self.store)

    @cached_property
    def datasets(self) -> DatasetRegistry:
        """Dataset versions on the server (the methods of ``DatasetRegistry``)."""
        from weightbase.remote.datasets import RemoteDatasets

        return RemoteDatasets(self.connection, self.store)

    @cached_property
    def runs(self) -> RunTracker:
        """Experiment tracking on the server (the methods of ``RunTracker``)."""
        from weightbase.remote.runs import RemoteRuns

        return RemoteRuns(self.connection, self.store)

    @cached_property
    def lineage(self) -> LineageService:  # type: ignore[override]
        """The lineage graph on the server (the methods of ``LineageService``)."""
        from weightbase.remote.lineage import RemoteLineage

        return RemoteLineage(self.connection)

    @cached_property
    def deployments(self) -> Deployments:
        """Deployments on the server (the methods of ``Deployments``)."""
        from weightbase.remote.deployments import RemoteDeployments

        return RemoteDeployments(self.connection)

    @cached_property
    def inference(self) -> InferenceLog:
        """Inference metrics and sessions on the server (the methods of ``InferenceLog``)."""
        from weightbase.remote.inference import RemoteInference

        return RemoteInference(self.connection)

    @cached_property
    def abtests(self) -> ABTests:
        """A/B tests on the server (the methods of ``ABTests``)."""
        from weightbase.remote.abtests import RemoteABTests

        return RemoteABTests(self.connection)

    @cached_property
    def monitoring(self) -> Monitoring:
        """Monitoring on the server (the methods of ``Monitoring``)."""
        from weightbase.remote.monitoring import RemoteMonitoring

        return RemoteMonitoring(self.connection)

    @cached_property
    def reactors(self) -> Reactors:
        """Fusion reactors on the server (the methods of ``Reactors``)."""
        from weightbase.remote.fusion import RemoteReactors

        return RemoteReactors(self.connection)

    def describe(self, nodes: Iterable[Node]) -> dict[Node, str]:
        """The server's readable name per node: ``name@version``, ``run 12``, else ``kind:id``."""
        from weightbase.remote.lineage import describe

        return describe(self.connection, list(nodes))

    # -- what needs the server's own machine ---------------------------------------------

    def __getattr__(self, name: str) -> NoReturn:
        # Workspace.__init__'s members (catalog, events, audit, recorder, home) are
        # never set here; reaching one is reaching for the server's machine.
        if name in _LOCAL_MEMBERS:
            _local_only(name, "use the services (wb.models, wb.runs, …) or run on the server")
        raise AttributeError(name)

    @cached_property
    def approvals(self) -> Approvals:
        _local_only("approvals", "use the server's /api/v1/approvals routes")

    @cached_property
    def compliance(self) -> Compliance:
        _local_only("compliance", "use the server's /api/v1 compliance routes")

    @cached_property
    def ethics(self) -> Ethics:
        _local_only("ethics reviews", "use the server's /api/v1 review routes")

    @cached_property
    def explanations(self) -> Explanations:
        _local_only("explanations", "use the server's /api/v1 review routes")

    @cached_property
    def scans(self) -> Scans:
        _local_only("scan results", "pushes from a remote workspace scan files before sending")

    @cached_property
    def webhooks(self) -> Webhooks:
        _local_only("webhooks", "an admin manages them through /api/v1/webhooks")

    @cached_property
    def access(self) -> Access:
        _local_only("users and tokens", "an admin manages them through /api/v1/users")

    def gc(self, *, grace_seconds: float | None = None, dry_run: bool = False) -> Collected:
        _local_only("garbage collection", "run `weightbase store gc` on the server")

    # -- lifetime --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Send what open run handles hold, then close the connection; twice does nothing."""
        if not self._closed:
            self._closed = True
            try:
                runs = self.__dict__.get("runs")
                if runs is not None:
                    runs.close_handles()
            finally:
                self.connection.close()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteWorkspace({self.url!r})"

    def __enter__(self) -> RemoteWorkspace:
        return self


def _local_only(what: str, instead: str) -> NoReturn:
    raise NotSupported(f"a remote workspace cannot reach {what}; {instead}")


def connect(
    url: str, *, token: str | None = None, timeout: float = 60.0, retry: RetryPolicy | None = None
) -> RemoteWorkspace:
    """A workspace over the server at ``url`` (``http://host:port``), signed in with ``token``."""
    return RemoteWorkspace(Connection(url, token=token, timeout=timeout, retry=retry))
