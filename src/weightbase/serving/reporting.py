"""What a running inference server tells its workspace: inference metrics and sessions
every interval, and the status of the deployments it serves.

With ``ServeOptions.environment``, each served model whose deployment in that
environment is the version served is reported ``running`` when the server starts,
``failed`` when the model cannot be loaded (``running`` again once it loads), and
``pending`` when the server stops (no server runs it then). A served version that is
not the deployment's is left alone, with a warning. Every ``metrics_interval_s`` the
windows and sessions of :class:`~weightbase.serving.telemetry.Telemetry` are written
through ``wb.inference``; a write that fails is logged and its window dropped, so a
catalog outage never stops the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from weightbase.errors import NotFound, WeightbaseError
from weightbase.serving.pool import REACTOR_PREFIX

if TYPE_CHECKING:
    from weightbase.serving.engine import InferenceEngine

__all__ = ["Reporter"]

log = logging.getLogger("weightbase.serve")


class Reporter:
    """Writes ``engine``'s telemetry to ``wb`` and reports its deployments' status."""

    def __init__(self, wb: Any, engine: InferenceEngine) -> None:
        self._wb = wb
        self._engine = engine
        self._options = engine.options
        self._task: asyncio.Task[None] | None = None
        self._reported: dict[str, str] = {}
        self.written = 0  # windows written so far
        # a workspace that keeps no records (a bare one in tests) is not reported to
        self._records = hasattr(wb, "inference") and hasattr(wb, "deployments")

    async def start(self) -> None:
        """Find the deployments served, report them running, start the interval."""
        if not self._records:
            return
        if self._options.environment is not None:
            await asyncio.to_thread(self._find_deployments)
            self._engine.load_listeners.append(self._loaded)
            for name in self._engine.deployments:
                await asyncio.to_thread(self._report, name, "running", "an inference server")
        if self._options.metrics_interval_s > 0:
            self._task = asyncio.create_task(self._every_interval())

    async def stop(self) -> None:
        """Write the last window and report the deployments no longer served."""
        if not self._records:
            return
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            await self.flush()
        for name in self._engine.deployments:
            await asyncio.to_thread(self._report, name, "pending", "the inference server stopped")

    async def flush(self) -> int:
        """Write the windows and sessions counted since the last flush; how many windows."""
        memory = {name: model.bytes for name, model in self._engine.pool.models.items()}
        windows, sessions = self._engine.telemetry.drain(memory)
        if not windows and not sessions:
            return 0
        try:
            await asyncio.to_thread(self._wb.inference.record, windows, sessions)
        except (WeightbaseError, OSError) as exc:
            log.warning("inference metrics not recorded: %s", exc)
            return 0
        self.written += len(windows)
        return len(windows)

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self._options.metrics_interval_s)
            await self.flush()

    def _find_deployments(self) -> None:
        environment = self._options.environment
        for name, model in self._engine.pool.models.items():
            if model.ref.startswith(REACTOR_PREFIX):
                continue  # a reactor is no deployment: its members report their own
            model_name = model.ref.split("@", 1)[0]
            try:
                deployment = self._wb.deployments.status(model_name, environment=environment)
                served = self._wb.models.version(model.ref)
            except NotFound:
                continue
            if deployment.version != served.version:
                log.warning(
                    "%s in %s is deployed at version %s; this server serves %s and does not "
                    "report it",
                    model_name,
                    environment,
                    deployment.version,
                    served.version,
                )
                continue
            self._engine.deployments[name] = (deployment.id, deployment.environment)

    def _loaded(self, name: str, outcome: str) -> None:
        """From the load's worker thread: a served deployment's model loaded or failed."""
        if name in self._engine.deployments:
            status = "running" if outcome == "loaded" else "failed"
            error = self._engine.pool.models[name].error
            self._report(name, status, f"failed to load: {error}" if error else "loaded")

    def _report(self, name: str, status: str, reason: str) -> None:
        if self._reported.get(name) == status:
            return
        model = self._engine.pool.models[name].ref.split("@", 1)[0]
        try:
            self._wb.deployments.set_status(
                model, status, environment=self._options.environment, reason=reason
            )
        except (WeightbaseError, OSError) as exc:
            log.warning("status of %s not reported: %s", model, exc)
            return
        self._reported[name] = status
