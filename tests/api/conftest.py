"""Real uvicorn servers for the API tests, on free loopback ports, on fresh workspaces.

One server per catalog backend (SQLite, then PostgreSQL on 127.0.0.1:5432 in a
schema of its own), so every API test runs on both. The server runs in a thread
of the test process (so coverage sees it) and is
driven over HTTP with httpx. Tokens are the workspace's own (``wb.access``):
a user per role, each with a token.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
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


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server_catalog_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The catalog the server runs on, for the session: a SQLite file or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('api-sqlite') / 'catalog.db'}"
        return
    from sqlalchemy.engine import make_url

    server_url, admin = request.getfixturevalue("postgres_admin")
    schema = f"wbapi_{uuid.uuid4().hex[:16]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        admin.execute("SET lock_timeout = '10s'")
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session")
def server(server_catalog_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server on a fresh workspace, once per catalog backend."""
    home = tmp_path_factory.mktemp("api") / "home"
    wb = weightbase.open(home, catalog_url=server_catalog_url)
    _seed(wb)
    tokens = _users(wb)
    app = create_app(
        lambda: weightbase.open(home, catalog_url=server_catalog_url),
        ServerOptions(max_body_bytes=1024 * 1024),
    )
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
def admin(server: Server) -> Iterator[httpx.Client]:
    """A client with an admin's token, on ``/api/v1``."""
    yield from _client(server, "admin")


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
