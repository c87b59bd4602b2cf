"""A live server on loopback that behaviour suites run against, as well as embedded.

One uvicorn server per test session, in a thread of the test process (so
coverage sees the server's code too). Each test that runs remotely opens its
own fresh embedded workspace, as the embedded run of the same test does, and
the server serves that one while the test runs: ``serving(workspace)``
swaps it in and gives back a ``RemoteWorkspace`` signed in with an admin's
token of it (as the embedded run, which no role narrows). So both runs of a
test start from the same empty state.

A suite opts in with ``remote_variants(...)`` in its conftest: its
``workspace`` fixture then runs each test embedded and remote, except tests
marked ``embedded_only`` (they look at what only a local workspace has: the
catalog's rows, the store's refs and gc, in-process event handlers).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

import weightbase
from weightbase.api import ServerOptions, create_app
from weightbase.api.actor import record_request_actors
from weightbase.config import default_actor
from weightbase.errors import Conflict
from weightbase.remote import RemoteWorkspace, connect
from weightbase.workspace import Workspace

__all__ = ["LiveServer", "behind", "serve_in_thread", "start_server"]

_SERVED: weakref.WeakKeyDictionary[Workspace, Workspace] = weakref.WeakKeyDictionary()


def behind(workspace: Workspace) -> Workspace:
    """The embedded workspace a test's workspace is: itself, or the one its server serves.

    Tests check what landed (catalog rows, store refs, audit entries) on it,
    whichever way the changes were made.
    """
    return _SERVED.get(workspace, workspace)


@dataclass
class LiveServer:
    """A running server whose workspace a test can swap for its own."""

    url: str
    app: FastAPI
    lock: threading.Lock

    @contextmanager
    def serving(self, workspace: Workspace, *, role: str = "admin") -> Iterator[RemoteWorkspace]:
        """Serve ``workspace`` for the duration; a remote workspace on it with a ``role`` token."""
        # the library acts with every right: its remote twin is an admin of the same name
        name = default_actor() if role == "admin" else f"remote-{role}"
        with contextlib.suppress(Conflict):  # served before in this test: the same user
            workspace.access.users.add(name, role=role)
        secret = workspace.access.tokens.create(name, name="tests").secret
        with self.lock:  # one test at a time owns the server
            before = (self.app.state.workspace, self.app.state.authenticator)
            record_request_actors(workspace)
            self.app.state.workspace = workspace
            self.app.state.authenticator = workspace.access
            remote = connect(self.url, token=secret)
            _SERVED[remote] = workspace
            try:
                yield remote
            finally:
                remote.close()
                self.app.state.workspace, self.app.state.authenticator = before


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free loopback port; its URL meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    running = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start in 30 s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=30)
        sock.close()


def start_server(home: str) -> Iterator[LiveServer]:
    """Start a server (on a placeholder workspace in ``home``) and stop it afterwards."""
    app = create_app(lambda: weightbase.open(home), ServerOptions(webhooks=False))
    with serve_in_thread(app) as url:
        yield LiveServer(url, app, threading.Lock())
