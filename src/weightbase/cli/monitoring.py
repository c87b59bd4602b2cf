"""``weightbase monitor …``: deployed models in production (``wb.monitoring``).

``monitor samples TARGET`` lists sampled requests and ``monitor prune`` deletes old
ones; ``monitor label REQUEST_ID LABEL`` records a late label; ``monitor performance
TARGET`` scores labeled samples per window; ``monitor drift TARGET`` compares sampled
inputs with the training split lineage names; ``monitor check DEPLOYMENT`` evaluates alert
thresholds; ``monitor alerts`` lists alerts and ``monitor ack`` / ``monitor resolve``
move them; ``monitor health DEPLOYMENT`` scores a deployment and says what to do.
"""

from __future__ import annotations

import json as json_module
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.options import JsonOption
from weightbase.cli.render import table
from weightbase.errors import ValidationError

if TYPE_CHECKING:
    from weightbase.monitoring.records import Alert

__all__ = ["monitor_app"]

monitor_app = typer.Typer(
    help="Monitoring: sampled requests, late labels, performance, alerts and health.",
    no_args_is_help=True,
)

TargetArgument = Annotated[str, typer.Argument(help="A model, NAME@VERSION, or a deployment id.")]
DeploymentArgument = Annotated[
    str, typer.Argument(help="A deployment id, or a model name (with --env).")
]
EnvOption = Annotated[
    str | None, typer.Option("--env", help="The environment, when naming a model.")
]
AlertArgument = Annotated[str, typer.Argument(help="The alert's id.")]
AlertReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why; kept in the audit log.")
]
DriftOption = Annotated[
    float | None,
    typer.Option("--drift-share", help="Share of drifted features (0 to 1) to judge."),
]


def _time(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"--{name} must be an ISO 8601 time, not {text!r}") from None
    if found.tzinfo is None:
        raise ValidationError(f"--{name} must say its time zone (…Z or +00:00)")
    return found


def _label(text: str) -> Any:
    """A label as typed: JSON where it parses (7, 0.5, true), else the text itself."""
    try:
        return json_module.loads(text)
    except ValueError:
        return text


def _alerts_table(found: list[Alert]) -> None:
    shown = table(["id", "model", "env", "rule", "status", "value", "threshold", "opened"])
    for item in found:
        shown.add_row(
            item.id,
            escape(item.model),
            item.environment,
            item.rule,
            item.status,
            f"{item.value:.4g}",
            f"{item.threshold:.4g}",
            item.opened.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(shown)


@monitor_app.command("samples")
def samples(
    target: TargetArgument,
    since: Annotated[str | None, typer.Option(help="From this ISO 8601 time.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this ISO 8601 time.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next page's cursor.")] = None,
    json: JsonOption = False,
) -> None:
    """Sampled requests of a model, version or deployment, oldest first."""
    with open_workspace() as wb:
        page = wb.monitoring.samples(
            target,
            since=_time(since, "since"),
            until=_time(until, "until"),
            limit=limit,
            cursor=cursor,
        )
    if json:
        emit_json(page.to_dict())
        return
    shown = table(["at", "request", "version", "latency ms", "error", "outputs", "label"])
    for item in page.items:
        shown.add_row(
            item.at.strftime("%Y-%m-%d %H:%M:%S"),
            escape(item.request_id),
            item.version,
            f"{item.latency_ms:.3g}",
            escape(item.error or ""),
            escape(json_module.dumps(item.outputs)[:60]),
            escape("" if item.label is None else str(item.label)),
        )
    console.print(shown)
    if page.next:
        console.print(f"more: --cursor {page.next}", highlight=False)


@monitor_app.command("prune")
def prune(
    before: Annotated[str, typer.Option(help="Delete samples taken before this ISO 8601 time.")],
    target: Annotated[
        str | None, typer.Option(help="Only a model, NAME@VERSION or deployment id.")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Delete old samples (and, without --target, old labels) to bound the table."""
    cutoff = _time(before, "before")
    assert cutoff is not None
    with open_workspace() as wb:
        deleted = wb.monitoring.prune(cutoff, target=target)
    if json:
        emit_json({"deleted": deleted})
        return
    console.print(f"{deleted} sample(s) deleted", highlight=False)


@monitor_app.command("label")
def label(
    request_id: Annotated[str, typer.Argument(help="The request's id.")],
    value: Annotated[str, typer.Argument(help="Its true label (a class or a number).")],
    json: JsonOption = False,
) -> None:
    """Record the true outcome of a request, arrived late."""
    with open_workspace() as wb:
        receipt = wb.monitoring.label(request_id, _label(value))
    if json:
        emit_json(receipt.to_dict())
        return
    met = "meets a sampled request" if receipt.matched else "meets no sampled request (yet)"
    console.print(f"label of {escape(request_id)} stored; it {met}", highlight=False)


@monitor_app.command("performance")
def performance(
    target: TargetArgument,
    window_s: Annotated[float, typer.Option(help="Window length in seconds.")] = 3600.0,
    kind: Annotated[str, typer.Option(help="auto, classification or regression.")] = "auto",
    threshold: Annotated[
        float | None, typer.Option(help="Drop that flags degradation (default: config's).")
    ] = None,
    min_labels: Annotated[int, typer.Option(help="Labels a window needs to be judged.")] = 10,
    json: JsonOption = False,
) -> None:
    """Accuracy (or MAE/RMSE) per window on labeled samples, vs the registered metric."""
    with open_workspace() as wb:
        found = wb.monitoring.performance(
            target, window_s=window_s, kind=kind, threshold=threshold, min_labels=min_labels
        )
    if json:
        emit_json(found.to_dict())
        return
    baseline = "none registered" if found.baseline is None else f"{found.baseline:.4g}"
    console.print(
        f"[bold]{escape(found.model)}@{escape(found.version)}[/] ({found.kind}): "
        f"{found.metric} registered {baseline}",
        highlight=False,
    )
    shown = table(["window start", "labels", found.metric, "drop", "degraded"])
    for window in found.windows:
        value = window.accuracy if found.metric == "accuracy" else window.mae
        if found.metric == "rmse":
            value = window.rmse
        shown.add_row(
            window.start.strftime("%Y-%m-%d %H:%M"),
            str(window.count),
            "" if value is None else f"{value:.4g}",
            "" if window.drop is None else f"{window.drop:+.4g}",
            "[red]yes[/]" if window.degraded else "no",
        )
    console.print(shown)


@monitor_app.command("drift")
def drift(
    target: TargetArgument,
    since: Annotated[
        str | None, typer.Option(help="The window's start (ISO 8601; default: all samples).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="The window's end (ISO 8601).")] = None,
    show: Annotated[int, typer.Option(help="Features shown, drifted first.")] = 15,
    json: JsonOption = False,
) -> None:
    """Drift of the sampled inputs (and predictions) against the training split that lineage
    names: per feature the statistic (Evidently's defaults), and the verdict."""
    with open_workspace() as wb:
        found = wb.monitoring.drift(
            target, since=_time(since, "since"), until=_time(until, "until")
        )
    if json:
        emit_json(found.to_dict())
        return
    verdict = "[red]dataset drift[/]" if found.dataset_drift else "[green]no dataset drift[/]"
    console.print(
        f"{escape(target)}: {len(found.drifted_columns)} of {len(found.columns)} features "
        f"drifted ({found.drifted_share:.0%}; dataset drift from {found.drift_share:.0%}): "
        f"{verdict}; {found.current_rows} sampled rows against {found.reference_rows}",
        highlight=False,
    )
    rows = sorted(found.columns, key=lambda column: not column.drifted)
    if found.prediction is not None:
        rows.insert(0, found.prediction)
    shown = table(["feature", "kind", "method", "score", "threshold", "drifted"])
    for column in rows[:show]:
        shown.add_row(
            escape(column.column),
            column.kind,
            column.method,
            f"{column.score:.4g}",
            f"{column.threshold:g}",
            "[red]yes[/]" if column.drifted else "no",
        )
    console.print(shown)


@monitor_app.command("check")
def check(
    deployment: DeploymentArgument,
    env: EnvOption = None,
    drift_share: DriftOption = None,
    json: JsonOption = False,
) -> None:
    """Evaluate the deployment's alert thresholds; open and resolve alerts."""
    with open_workspace() as wb:
        found = wb.monitoring.check(deployment, environment=env, drift=drift_share)
    if json:
        emit_json(found.to_dict())
        return
    for rule, threshold in found.thresholds.items():
        value = found.measured.get(rule)
        shown = "no data" if value is None else f"{value:.4g}"
        console.print(f"{rule}: {shown} (threshold {threshold:.4g})", highlight=False)
    for alert in found.opened:
        console.print(f"[red]opened[/] {alert.id}: {escape(alert.message)}", highlight=False)
    for alert in found.resolved:
        console.print(f"[green]resolved[/] {alert.id}: {alert.rule}", highlight=False)
    console.print(f"{len(found.open)} alert(s) unresolved", highlight=False)


@monitor_app.command("alerts")
def alerts(
    deployment: Annotated[
        str | None, typer.Option(help="Only this deployment (id, or model with --env).")
    ] = None,
    env: EnvOption = None,
    status: Annotated[str | None, typer.Option(help="open, acknowledged or resolved.")] = None,
    rule: Annotated[str | None, typer.Option(help="Only this rule.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    json: JsonOption = False,
) -> None:
    """Alerts, newest first."""
    with open_workspace() as wb:
        found = wb.monitoring.alerts(
            deployment=deployment, environment=env, status=status, rule=rule, limit=limit
        )
    if json:
        emit_json([item.to_dict() for item in found])
        return
    _alerts_table(found)


@monitor_app.command("ack")
def ack(alert: AlertArgument, reason: AlertReasonOption = None, json: JsonOption = False) -> None:
    """Acknowledge an open alert."""
    with open_workspace() as wb:
        found = wb.monitoring.acknowledge(alert, reason=reason)
    if json:
        emit_json(found.to_dict())
        return
    _alerts_table([found])


@monitor_app.command("resolve")
def resolve(
    alert: AlertArgument, reason: AlertReasonOption = None, json: JsonOption = False
) -> None:
    """Resolve an open or acknowledged alert."""
    with open_workspace() as wb:
        found = wb.monitoring.resolve(alert, reason=reason)
    if json:
        emit_json(found.to_dict())
        return
    _alerts_table([found])


@monitor_app.command("health")
def health(
    deployment: DeploymentArgument,
    env: EnvOption = None,
    drift_share: DriftOption = None,
    json: JsonOption = False,
) -> None:
    """The deployment's health score (0 to 100) and what to do."""
    with open_workspace() as wb:
        found = wb.monitoring.health(deployment, environment=env, drift=drift_share)
    if json:
        emit_json(found.to_dict())
        return
    console.print(
        f"[bold]{escape(found.model)}@{escape(found.version)}[/] in {found.environment}: "
        f"health {found.score:.0f}/100",
        highlight=False,
    )
    for name, points in found.penalties.items():
        if points:
            console.print(f"  -{points:.1f} {name}", highlight=False)
    advice: str = found.recommendation
    if found.rollback_to:
        advice = f"{advice} to {escape(found.model)}@{escape(found.rollback_to)}"
    console.print(f"recommendation: {advice}", highlight=False)
    for reason in found.reasons:
        console.print(f"  {escape(reason)}", highlight=False)
