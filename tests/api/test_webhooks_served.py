"""The server runs a webhook dispatcher: a change made through the API reaches a receiver."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.support import MODEL, Server

import weightbase
from weightbase.api import ServerOptions, create_app
from weightbase.webhooks import Dispatcher, verify_signature
from weightbase.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER


@pytest.fixture
def received() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A receiver on loopback that answers 200 to every POST: its URL and what it got."""
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # keep the test output quiet
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{receiver.server_address[1]}/hook", got
    finally:
        receiver.shutdown()
        receiver.server_close()
        thread.join()


def test_an_alias_set_through_the_api_is_delivered_signed(
    server: Server,
    editor: httpx.Client,
    received: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    assert isinstance(server.app.state.dispatcher, Dispatcher)
    url, got = received
    hook, secret = server.wb.webhooks.subscribe(url, ["model_alias_set"])
    try:
        moved = editor.put(f"/models/{MODEL}/-/aliases/hooked", json={"version": "0.1.0"})
        assert moved.status_code == 200, moved.text
        deadline = time.monotonic() + 20
        while [d.status for d in server.wb.webhooks.deliveries(hook.id)] != ["delivered"]:
            assert time.monotonic() < deadline, "not delivered within 20 s"
            time.sleep(0.1)
    finally:
        server.wb.webhooks.remove(hook.id)
        editor.delete(f"/models/{MODEL}/-/aliases/hooked")
    [(headers, body)] = got
    assert verify_signature(secret, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
    event = json.loads(body)["event"]
    assert event["type"] == "model_alias_set"
    assert event["payload"]["alias"] == "hooked"


def test_a_server_without_webhooks_runs_no_dispatcher(weightbase_home: Path) -> None:
    app = create_app(lambda: weightbase.open(weightbase_home), ServerOptions(webhooks=False))

    async def serve() -> object:
        async with app.router.lifespan_context(app):
            return app.state.dispatcher

    assert asyncio.run(serve()) is None
