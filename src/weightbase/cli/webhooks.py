"""``weightbase webhooks …``: subscribe URLs to events and watch their deliveries.

``weightbase server`` delivers in the background; ``weightbase webhooks deliver``
does it from the shell (``--once`` for one round, as a cron job would).
"""

from __future__ import annotations

import threading
from typing import Annotated

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.options import JsonOption, ReasonOption
from weightbase.cli.render import table

__all__ = ["webhooks_app"]

webhooks_app = typer.Typer(
    help="Webhooks: POST events to other systems, signed and retried; their delivery log.",
    no_args_is_help=True,
)

WebhookIdArgument = Annotated[int, typer.Argument(help="The webhook's id (`webhooks list`).")]


@webhooks_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="Where to POST: an http(s) URL.")],
    events: Annotated[
        list[str],
        typer.Option(
            "--event", "-e", help="An event type to send (repeat it; '*' for every event)."
        ),
    ],
    description: Annotated[str | None, typer.Option(help="What the hook is for.")] = None,
    json: JsonOption = False,
) -> None:
    """Subscribe a URL to event types; prints the signing secret, once."""
    with open_workspace() as wb:
        hook, secret = wb.webhooks.subscribe(url, events, description=description)
    if json:
        emit_json({**hook.to_dict(), "secret": secret})
        return
    console.print(f"[bold green]webhook {hook.id}[/] → {escape(hook.url)}")
    console.print(f"  signing secret: [bold]{secret}[/]")
    console.print("  [yellow]store it now: it is not shown again[/]")


@webhooks_app.command("list")
def list_webhooks(json: JsonOption = False) -> None:
    """Every webhook and the event types it gets."""
    with open_workspace() as wb:
        hooks = wb.webhooks.list()
    if json:
        emit_json([hook.to_dict() for hook in hooks])
        return
    shown = table(["id", "url", "events", "created", "by"], right={"id"})
    for hook in hooks:
        shown.add_row(
            str(hook.id),
            escape(hook.url),
            escape(", ".join(hook.event_types)),
            hook.created_at.strftime("%Y-%m-%d %H:%M"),
            escape(hook.created_by or ""),
        )
    console.print(shown)


@webhooks_app.command("remove")
def remove(webhook: WebhookIdArgument, reason: ReasonOption = None) -> None:
    """Delete a webhook and its delivery log."""
    with open_workspace() as wb:
        wb.webhooks.remove(webhook, reason=reason)
    console.print(f"removed webhook {webhook}")


@webhooks_app.command("deliveries")
def deliveries(
    webhook: Annotated[int | None, typer.Argument(help="Only this webhook's.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only deliveries in this status: pending, delivered, failed.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    json: JsonOption = False,
) -> None:
    """The delivery log: each event sent, its attempts, last status and latency."""
    with open_workspace() as wb:
        found = wb.webhooks.deliveries(webhook, status=status, limit=limit)
    if json:
        emit_json([delivery.to_dict() for delivery in found])
        return
    shown = table(
        ["id", "webhook", "event", "status", "attempts", "last", "ms"],
        right={"id", "webhook", "attempts", "ms"},
    )
    for delivery in found:
        last = delivery.last_error or (str(delivery.last_status_code or ""))
        latency = "" if delivery.last_latency_ms is None else f"{delivery.last_latency_ms:.1f}"
        shown.add_row(
            str(delivery.id),
            str(delivery.webhook_id),
            escape(delivery.event_type),
            delivery.status,
            str(delivery.attempts),
            escape(last),
            latency,
        )
    console.print(shown)


@webhooks_app.command("deliver")
def deliver(
    once: Annotated[bool, typer.Option("--once", help="One round, then exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between rounds.")] = 1.0,
) -> None:
    """Send due deliveries: one round with --once, else until interrupted."""
    from weightbase.webhooks import Dispatcher

    with open_workspace() as wb, Dispatcher(wb.catalog) as dispatcher:
        if once:
            made = dispatcher.run_once()
            console.print(f"{made} delivery attempts")
            return
        console.print("delivering webhooks; Ctrl-C to stop")
        dispatcher.start(poll_interval_s=interval)
        try:
            threading.Event().wait()  # the dispatcher's thread works until Ctrl-C
        except KeyboardInterrupt:
            console.print("stopped")
