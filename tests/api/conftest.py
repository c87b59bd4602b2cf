"""One real uvicorn server for the API tests, on a free loopback port, on a fresh workspace.

The server runs in a thread of the test process (so coverage sees it) and is
driven over HTTP with httpx. Tokens are the workspace's own (``wb.access``):
a user per role, each with a token.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import uvicorn
from tests.api.support import DATASET, MODEL, OWNED, ROLES, Server

import weightbase
from weightbase.api import ServerOptions, create_app
from weightbase.datasets.loaders import from_numpy
from weightbase.workspace import Workspace


def _seed(wb: Workspace) -> None:
    rng = np.random.default_rng(0)
    weights = {
        "encoder.weight": rng.standard_normal((16, 8)).astype(np.float32),
        "encoder.bias": np.zeros(8, dtype=np.float32),
    }
    first = wb.models.push(MODEL, weights, metrics={"accuracy": 0.8}, tags=["base"])
    tuned = {**weights, "encoder.bias": np.full(8, 0.5, dtype=np.float32)}
    wb.models.push(MODEL, tuned, fine_tuned_from=first, metrics={"accuracy": 0.9})
    wb.models.set_alias(MODEL, "production", first.version)
    for index in range(3):
        wb.models.create(f"zoo/model-{index}")
    x = rng.standard_normal((60, 4))
    y = np.arange(60) % 3
    wb.datasets.register(DATASET, from_numpy(x, y), tags=["tabular"])
    wb.models.create(OWNED)


def _users(wb: Workspace) -> dict[str, str]:
    """A user per role, and a token of each: role → secret."""
    secrets = {}
    for role in ROLES:
        wb.access.users.add(f"{role}-user", role=role)
        secrets[role] = wb.access.tokens.create(f"{role}-user", name="tests").secret
    wb.access.set_owner(OWNED, "admin-user")
    return secrets


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("api") / "home"
    wb = weightbase.open(home)
    _seed(wb)
    tokens = _users(wb)
    app = create_app(lambda: weightbase.open(home), ServerOptions(max_body_bytes=1024 * 1024))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start in 30 s"
        time.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", app, tokens, wb, home)
    finally:
        running.should_exit = True
        thread.join(timeout=30)
        sock.close()
        wb.close()


def _client(server: Server, role: str | None) -> Iterator[httpx.Client]:
    headers = {} if role is None else {"Authorization": f"Bearer {server.tokens[role]}"}
    with httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
def editor(server: Server) -> Iterator[httpx.Client]:
    """A client with an editor's token, on ``/api/v1``."""
    yield from _client(server, "editor")


@pytest.fixture
def viewer(server: Server) -> Iterator[httpx.Client]:
    yield from _client(server, "viewer")


@pytest.fixture
def anonymous(server: Server) -> Iterator[httpx.Client]:
    yield from _client(server, None)


@pytest.fixture
def root(server: Server) -> Iterator[httpx.Client]:
    """A client without a token on the server's root (probes, metrics, docs)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def anonymous_read(server: Server) -> Iterator[None]:
    """The server lets requests without a token read, for one test."""
    before = server.app.state.options
    server.app.state.options = ServerOptions(anonymous_read=True)
    try:
        yield
    finally:
        server.app.state.options = before
