"""Webhooks against a real receiver on loopback: signed deliveries, retries, the log."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from weightbase.errors import NotFound, ValidationError
from weightbase.webhooks import Dispatcher, verify_signature
from weightbase.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from weightbase.workspace import Workspace


@dataclass
class Receiver:
    """An HTTP server on loopback that answers with the statuses it is given, then 200."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((dict(self.headers.items()), body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def dispatcher(workspace: Workspace) -> Iterator[Dispatcher]:
    with Dispatcher(workspace.catalog, base_delay_s=0.05, settle_s=0, timeout_s=5) as made:
        yield made


def _until_settled(workspace: Workspace, dispatcher: Dispatcher, rounds: int = 200) -> None:
    """Run rounds until no delivery is pending (retries wait out their backoff between)."""
    for _ in range(rounds):
        dispatcher.run_once()
        if not workspace.webhooks.deliveries(status="pending"):
            return
        time.sleep(0.02)
    raise AssertionError("deliveries still pending")


def _weights() -> dict[str, np.ndarray]:
    return {"w": np.arange(12, dtype=np.float32).reshape(3, 4)}


def test_a_subscription_gets_signed_events_of_its_types(
    workspace: Workspace, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    workspace.models.push("before", _weights())  # older than the subscription: not sent
    hook, secret = workspace.webhooks.subscribe(receiver.url, ["model_version_created"])
    version = workspace.models.push("bert", _weights())
    workspace.models.set_alias("bert", "production", version.version)  # another type

    _until_settled(workspace, dispatcher)
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert headers["X-Weightbase-Event"] == "model_version_created"
    assert verify_signature(secret, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
    assert not verify_signature(
        "another secret!!", body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    )
    event = json.loads(body)["event"]
    assert event["type"] == "model_version_created"
    assert event["payload"]["model"] == "bert"
    assert event["payload"]["version"] == version.version

    (delivery,) = workspace.webhooks.deliveries(hook.id)
    assert delivery.status == "delivered"
    assert delivery.attempts == 1
    assert delivery.last_status_code == 200
    assert delivery.last_latency_ms is not None
    assert delivery.last_latency_ms > 0


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(
    workspace: Workspace, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    receiver.statuses = [500, 503]
    hook, _ = workspace.webhooks.subscribe(receiver.url, ["*"])
    workspace.models.create("retried")

    dispatcher.run_once()
    (first,) = workspace.webhooks.deliveries(hook.id)
    assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 500)
    assert first.last_error == "HTTP 500"
    dispatcher.run_once()  # the backoff has not run out: nothing is sent
    assert len(receiver.received) == 1

    _until_settled(workspace, dispatcher)
    (done,) = workspace.webhooks.deliveries(hook.id)
    assert (done.status, done.attempts, done.last_status_code) == ("delivered", 3, 200)
    assert done.last_error is None
    assert done.delivered_at is not None
    bodies = {body for _, body in receiver.received}
    assert len(receiver.received) == 3
    assert len(bodies) == 1  # every attempt sends the same event


def test_a_delivery_is_given_up_after_its_attempts(
    workspace: Workspace, dispatcher: Dispatcher
) -> None:
    hook, _ = workspace.webhooks.subscribe("http://127.0.0.1:9/refused", ["model_created"])
    workspace.models.create("nobody-listens")
    dispatcher.max_attempts = 2
    _until_settled(workspace, dispatcher)
    (failed,) = workspace.webhooks.deliveries(hook.id, status="failed")
    assert failed.attempts == 2
    assert failed.last_status_code is None
    assert failed.last_error is not None
    assert "Connect" in failed.last_error


def test_two_dispatchers_deliver_each_event_once(
    workspace: Workspace, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    workspace.webhooks.subscribe(receiver.url, ["model_created"])
    for name in ("a", "b", "c"):
        workspace.models.create(name)
    with Dispatcher(workspace.catalog, settle_s=0) as other:
        threads = [threading.Thread(target=d.run_once) for d in (dispatcher, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _until_settled(workspace, other)
    names = sorted(json.loads(body)["event"]["payload"]["model"] for _, body in receiver.received)
    assert names == ["a", "b", "c"]


def test_the_background_thread_delivers(workspace: Workspace, receiver: Receiver) -> None:
    workspace.webhooks.subscribe(receiver.url, ["model_created"])
    workspace.models.create("background")
    dispatcher = Dispatcher(workspace.catalog, settle_s=0)
    dispatcher.start(poll_interval_s=0.02)
    with pytest.raises(ValidationError, match="already running"):
        dispatcher.start()
    try:
        for _ in range(250):
            if receiver.received:
                break
            time.sleep(0.02)
    finally:
        dispatcher.stop()
    assert len(receiver.received) == 1


def test_subscriptions_are_checked_listed_removed_and_audited(
    workspace: Workspace, receiver: Receiver
) -> None:
    for url in ("ftp://example.org/x", "not a url", "http:///path"):
        with pytest.raises(ValidationError, match="http"):
            workspace.webhooks.subscribe(url, ["*"])
    with pytest.raises(ValidationError, match="at least one"):
        workspace.webhooks.subscribe(receiver.url, [])
    with pytest.raises(ValidationError, match="invalid event type"):
        workspace.webhooks.subscribe(receiver.url, ["Model Created"])
    with pytest.raises(ValidationError, match="16 to 128"):
        workspace.webhooks.subscribe(receiver.url, ["*"], secret="short")

    hook, secret = workspace.webhooks.subscribe(
        receiver.url, "model_created", description="ci", secret="s" * 20
    )
    assert secret == "s" * 20
    assert hook.event_types == ("model_created",)
    assert hook.wants("model_created")
    assert not hook.wants("model_deleted")
    assert [h.to_dict() for h in workspace.webhooks.list()] == [hook.to_dict()]
    audit = workspace.audit.entries("webhook")
    assert [entry.action for entry in audit] == ["webhook.create"]
    assert secret not in json.dumps([entry.to_dict() for entry in audit])

    workspace.webhooks.remove(hook.id, reason="moved")
    assert workspace.webhooks.list() == []
    with pytest.raises(NotFound):
        workspace.webhooks.get(hook.id)
    with pytest.raises(NotFound):
        workspace.webhooks.deliveries(hook.id)
    with pytest.raises(ValidationError, match="status"):
        workspace.webhooks.deliveries(status="lost")
    with pytest.raises(ValidationError, match="limit"):
        workspace.webhooks.deliveries(limit=0)


def test_signatures_expire_and_bind_the_body() -> None:
    body = b'{"event": 1}'
    signature = sign("k" * 32, body, 1_000)
    assert verify_signature("k" * 32, body, "1000", signature, now=1_100)
    assert not verify_signature("k" * 32, body, "1000", signature, now=2_000)  # too old
    assert not verify_signature("k" * 32, body + b" ", "1000", signature, now=1_100)
    assert not verify_signature("k" * 32, body, "yesterday", signature)


def test_dispatcher_settings_are_checked(workspace: Workspace) -> None:
    with pytest.raises(ValidationError, match="max_attempts"):
        Dispatcher(workspace.catalog, max_attempts=0)
    with pytest.raises(ValidationError, match="negative"):
        Dispatcher(workspace.catalog, lease_s=-1)
    with Dispatcher(workspace.catalog, base_delay_s=2, max_delay_s=5) as dispatcher:
        assert [dispatcher.backoff(n) for n in (1, 2, 3, 4)] == [2, 4, 5, 5]


def test_the_webhooks_commands(
    workspace: Workspace, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from weightbase.cli import app

    url = workspace.catalog.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("WEIGHTBASE_CATALOG_URL", url)
    monkeypatch.setenv("WEIGHTBASE_HOME", str(workspace.home))
    runner = CliRunner()

    added = runner.invoke(app, ["webhooks", "add", receiver.url, "-e", "model_created", "--json"])
    assert added.exit_code == 0, added.output
    hook = json.loads(added.stdout)
    assert len(hook["secret"]) >= 32
    shown = runner.invoke(app, ["webhooks", "add", receiver.url, "-e", "*"])
    assert "not shown again" in shown.stdout
    assert runner.invoke(app, ["webhooks", "add", "ftp://x", "-e", "*"]).exit_code == 2

    workspace.models.create("from-the-shell")
    time.sleep(2.1)  # events younger than the dispatcher's settle time wait a round
    delivered = runner.invoke(app, ["webhooks", "deliver", "--once"])
    assert delivered.exit_code == 0, delivered.output
    assert "2 delivery attempts" in delivered.stdout  # one per subscription
    assert len(receiver.received) == 2
    listed = json.loads(runner.invoke(app, ["webhooks", "list", "--json"]).stdout)
    assert [item["id"] for item in listed] == [hook["id"], hook["id"] + 1]
    assert "model_created" in runner.invoke(app, ["webhooks", "list"]).stdout
    log = runner.invoke(app, ["webhooks", "deliveries", str(hook["id"]), "--json"])
    assert [entry["event_type"] for entry in json.loads(log.stdout)] == ["model_created"]
    assert "model_created" in runner.invoke(app, ["webhooks", "deliveries"]).stdout
    assert runner.invoke(app, ["webhooks", "remove", str(hook["id"])]).exit_code == 0
    assert runner.invoke(app, ["webhooks", "remove", str(hook["id"])]).exit_code == 3
