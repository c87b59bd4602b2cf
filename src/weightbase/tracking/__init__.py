"""Experiment tracking: experiments, runs, params, tags, metrics, system metrics and artifacts.

    with wb.runs.start(experiment="mnist", params={"lr": 3e-4}, tags=["baseline"]) as run:
        for step, loss in enumerate(losses):
            run.log({"train/loss": loss}, step=step)
    history = wb.runs.history(run.id, "train/loss")     # NumPy arrays, by step
    wb.runs.compare([run.id, other.id]).to_table()

:class:`RunTracker` is the service (``wb.runs``), its calls done by parts by
responsibility (experiments, lifecycle, params, artifacts, imports, search);
:class:`ActiveRun` is the handle a process logs through; :class:`MetricWriter`
the buffered background writer behind it. :func:`evaluate` computes final
metrics from predictions and :func:`analyze` checks a training curve for
convergence, plateaus and overfitting; :class:`RunEnvironment` is a run's
reproducibility record, and :func:`seed_everything` seeds what it records. See
docs/tracking.md.
"""

from weightbase.tracking.capture import seed_everything
from weightbase.tracking.convergence import ConvergenceReport, analyze
from weightbase.tracking.environment import EnvironmentDiff, RunEnvironment
from weightbase.tracking.evaluation import Evaluation, evaluate
from weightbase.tracking.records import (
    NAME_PATTERN,
    Artifact,
    Experiment,
    MetricFilter,
    MetricHistory,
    MetricSummary,
    ResourceUsage,
    Run,
    RunComparison,
    RunPage,
    RunStatus,
)
from weightbase.tracking.run import ActiveRun
from weightbase.tracking.service import RunTracker
from weightbase.tracking.writer import MetricWriter

__all__ = [
    "NAME_PATTERN",
    "ActiveRun",
    "Artifact",
    "ConvergenceReport",
    "EnvironmentDiff",
    "Evaluation",
    "Experiment",
    "MetricFilter",
    "MetricHistory",
    "MetricSummary",
    "MetricWriter",
    "ResourceUsage",
    "Run",
    "RunComparison",
    "RunEnvironment",
    "RunPage",
    "RunStatus",
    "RunTracker",
    "analyze",
    "evaluate",
    "seed_everything",
]
