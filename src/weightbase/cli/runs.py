"""``weightbase runs …``: experiment runs from the shell, thin over ``wb.runs``.

List, show and compare runs, print a metric's history, export a run to
TensorBoard and import runs from an MLflow tracking store.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.options import JsonOption
from weightbase.cli.render import table
from weightbase.errors import ValidationError

if TYPE_CHECKING:
    from weightbase.tracking import Run
    from weightbase.tracking.environment import RunEnvironment

__all__ = ["runs_app"]

runs_app = typer.Typer(
    help="Experiment runs: list, show, compare, metric histories, TensorBoard and MLflow.",
    no_args_is_help=True,
)

RunIdArgument = Annotated[int, typer.Argument(help="The run's id (`weightbase runs list`).")]

# Points of a history printed as a table (JSON has them all).
_DEFAULT_TAIL = 20


def _duration(run: Run) -> str:
    seconds = run.duration_seconds
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _value(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if math.isfinite(value) else str(value)


@runs_app.command("list")
def list_runs(
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", help="Only runs of this experiment.")
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            help="Only runs with this status: running, paused, completed, failed, cancelled "
            "(repeatable).",
        ),
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="Only runs with this tag (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many runs.")] = 50,
    json: JsonOption = False,
) -> None:
    """Runs, newest first, with their status, duration and metrics."""
    with open_workspace() as wb:
        page = wb.runs.search(experiment=experiment, status=status, tags=tags or (), limit=limit)
    if json:
        emit_json(
            {
                "runs": [run.to_dict() for run in page.runs],
                "more": page.next_page_token is not None,
            }
        )
        return
    if not page.runs:
        console.print("no runs")
        return
    runs = table(
        ("id", "experiment", "name", "status", "started", "duration", "metrics"), plain=True
    )
    for run in page.runs:
        runs.add_row(
            str(run.id),
            escape(run.experiment),
            escape(run.name or ""),
            run.status.value,
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            _duration(run),
            str(len(run.metrics)),
        )
    console.print(runs)
    if page.next_page_token is not None:
        console.print(f"[dim]more runs: raise --limit (now {limit})[/]")


@runs_app.command("show")
def show(run_id: RunIdArgument, json: JsonOption = False) -> None:
    """A run: status, times, params, tags, metrics, and what it was started with.

    The reproducibility record is summed up (commit, python, host, hardware,
    seeds, number of packages); --json has all of it under "environment".
    """
    with open_workspace() as wb:
        run = wb.runs.get(run_id)
        environment = wb.runs.environment(run_id)
    if json:
        emit_json(
            {**run.to_dict(), "environment": None if environment is None else environment.to_dict()}
        )
        return
    name = f" ({escape(run.name)})" if run.name else ""
    console.print(f"[bold]run {run.id}[/]{name} in {escape(run.experiment)}: {run.status.value}")
    if run.status_reason:
        console.print(f"  reason: {escape(run.status_reason)}")
    ended = run.ended_at.isoformat() if run.ended_at else "—"
    console.print(f"  started {run.started_at.isoformat()}, ended {ended} {_duration(run)}")
    if run.tags:
        console.print(f"  tags: {escape(', '.join(run.tags))}")
    if run.params:
        params = table(("param", "value"), title="params", plain=True)
        for key, value in run.params.items():
            params.add_row(escape(key), escape(str(value)))
        console.print(params)
    if run.metrics:
        metrics = table(
            ("metric", "last", "step", "min", "max", "points", "non-finite"),
            title="metrics",
            plain=True,
        )
        for summary in run.metrics.values():
            metrics.add_row(
                escape(summary.name),
                _value(summary.last),
                str(summary.last_step),
                _value(summary.minimum),
                _value(summary.maximum),
                str(summary.count),
                str(summary.nonfinite),
            )
        console.print(metrics)
    _print_environment(environment)


def _print_environment(environment: RunEnvironment | None) -> None:
    """The reproducibility record in a few lines."""
    if environment is None:
        console.print("  environment: not recorded")
        return
    lines = []
    if environment.captured:
        git = environment.git
        lines += [
            ("git", git.summary if git is not None else "unknown"),
            ("python", f"{environment.python_version} ({environment.python_implementation})"),
            ("host", f"{environment.hostname} ({environment.platform or environment.os})"),
            ("hardware", environment.hardware.summary if environment.hardware else "unknown"),
            ("command", " ".join(environment.argv)),
            ("packages", f"{len(environment.packages)} installed (--json lists them)"),
        ]
    else:
        lines.append(("captured", "no (capture_environment=False)"))
    seeds = ", ".join(f"{name}={seed}" for name, seed in environment.seeds.items())
    lines.append(("seeds", seeds or "none set through weightbase"))
    console.print("[bold]environment[/]")
    for label, text in lines:
        console.print(f"  {label}: {escape(text)}", soft_wrap=True)


@runs_app.command("compare")
def compare(
    run_ids: Annotated[list[int], typer.Argument(help="Two or more run ids.")],
    only_differences: Annotated[
        bool, typer.Option("--only-differences", help="Only the params whose values differ.")
    ] = False,
    include_system: Annotated[
        bool, typer.Option("--system", help="Include system/… metrics.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Runs side by side: their params, each metric's latest value, and environment differences.

    Each run's environment is compared with the first run's: changed, added and
    removed packages, a different commit, python, host, hardware or seeds.
    """
    if len(run_ids) < 2:
        raise ValidationError("compare needs at least two run ids")
    with open_workspace() as wb:
        comparison = wb.runs.compare(run_ids, include_system=include_system)
        first = run_ids[0]
        environments = [
            (other, wb.runs.compare_environments(first, other)) for other in run_ids[1:]
        ]
    if json:
        differences = [
            {"run_ids": [first, other], **diff.to_dict()} for other, diff in environments
        ]
        emit_json({**comparison.to_dict(), "environment": differences})
        return
    rows = comparison.to_table(only_differences=only_differences)
    compared = table(rows[0], plain=True)
    for row in rows[1:]:
        compared.add_row(*(escape(cell) for cell in row))
    console.print(compared)
    for other, diff in environments:
        if diff.same:
            console.print(f"environment of run {other}: the same as run {first}'s")
            continue
        console.print(f"[bold]environment of run {other}, against run {first}[/]")
        for line in diff.lines():
            console.print(f"  {escape(line)}", soft_wrap=True)


@runs_app.command("history")
def history(
    run_id: RunIdArgument,
    metric: Annotated[str, typer.Argument(help="The metric's name, such as train/loss.")],
    tail: Annotated[
        int,
        typer.Option("--tail", help="Print the last N points (0: all); --json prints all."),
    ] = _DEFAULT_TAIL,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", help="The dataset the metric was measured on, if logged with one."
        ),
    ] = None,
    include_superseded: Annotated[
        bool,
        typer.Option(
            "--include-superseded",
            help="Also the points a resumed run's failed attempt logged past its checkpoint.",
        ),
    ] = False,
    json: JsonOption = False,
) -> None:
    """Every point of one metric of a run: step, epoch, time and value."""
    if tail < 0:
        raise ValidationError(f"--tail must be 0 or more, not {tail}")
    with open_workspace() as wb:
        found = wb.runs.history(
            run_id, metric, dataset=dataset, include_superseded=include_superseded
        )
    if json:
        emit_json(found.to_dict())
        return
    count = len(found)
    start = 0 if tail == 0 else max(0, count - tail)
    columns: tuple[str, ...] = ("step", "epoch", "time", "value")
    if include_superseded:
        columns += ("superseded",)
    points = table(columns, right=columns, plain=True)
    for index in range(start, count):
        epoch = float(found.epochs[index])
        row = [
            str(int(found.steps[index])),
            "" if math.isnan(epoch) else f"{epoch:g}",
            f"{float(found.times[index]):.3f}",
            _value(float(found.values[index])),
        ]
        if include_superseded:
            row.append("yes" if found.superseded[index] else "")
        points.add_row(*row)
    shown = "all" if start == 0 else f"the last {count - start}"
    console.print(f"{escape(metric)} of run {run_id}: {count} points, {shown} shown")
    console.print(points)


@runs_app.command("export-tensorboard")
def export_tensorboard(
    run_id: RunIdArgument,
    logdir: Annotated[Path, typer.Argument(help="TensorBoard's log folder.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace events exported before.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Write a run's metrics and params as TensorBoard events under LOGDIR/run-<id>/."""
    from weightbase.tracking.tensorboard import export_tensorboard as export

    with open_workspace() as wb:
        folder = export(wb.runs, run_id, logdir, overwrite=overwrite)
    if json:
        emit_json({"run_id": run_id, "folder": str(folder)})
        return
    console.print(f"[bold green]exported[/] run {run_id} to {escape(str(folder))}")
    console.print(f"  tensorboard --logdir {escape(str(logdir))}")


@runs_app.command("import-mlflow")
def import_mlflow(
    tracking_uri: Annotated[
        str,
        typer.Argument(
            help="The MLflow store to read, which must exist: sqlite:///path/mlflow.db, "
            "file:///path/mlruns (or the folder's path), or http(s)://an MLflow server."
        ),
    ],
    experiments: Annotated[
        list[str] | None,
        typer.Option("--experiment", "-e", help="Import only this experiment (repeatable)."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Import experiments and runs from MLflow; runs imported before are skipped."""
    from weightbase.tracking.mlflow_import import import_mlflow as run_import

    # MLflow logs its database set-up at INFO on stderr; this command's errors are one line
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    with open_workspace() as wb:
        report = run_import(wb, tracking_uri, experiments=experiments)
    if json:
        emit_json(report.to_dict())
        return
    console.print(
        f"[bold green]imported[/] {len(report.imported)} run(s), {report.points:,} metric "
        f"points from {len(report.experiments)} experiment(s); "
        f"{len(report.existing)} imported before, skipped"
    )
    for mlflow_id, run_id in report.imported:
        console.print(f"  {escape(mlflow_id)} → run {run_id}")
    for line in report.dropped:
        console.print(f"  [yellow]not carried over:[/] {escape(line)}")


# `runs analyze` lives in its own module; registered here so it sits in this group.
from weightbase.cli.runs_analyze import register as _register_analyze  # noqa: E402

_register_analyze(runs_app)
