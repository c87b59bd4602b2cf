"""A live server on loopback for the remote datasets tests, and how they compare two workspaces.

One uvicorn server per module, in a thread of the test process (so coverage
sees the server's code too), started on a placeholder workspace; each test
swaps in its own fresh embedded workspace with ``serving`` and gets a
``RemoteWorkspace`` on it, signed in with an editor's token (``wb.access``).
The same calls on a second, unrelated embedded workspace give what the remote
ones must equal: the same records but for ids and times, the same snapshots,
the same arrays bit for bit.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI

import weightbase
from weightbase.api import ServerOptions, create_app
from weightbase.api.actor import record_request_actors
from weightbase.config import default_actor
from weightbase.datasets import DatasetContent, DatasetVersion
from weightbase.remote import RemoteWorkspace, connect
from weightbase.workspace import Workspace

__all__ = [
    "DatasetsServer",
    "assert_same_arrays",
    "assert_same_content",
    "assert_same_version",
    "start_server",
]

#: What differs between two workspaces holding the same data: ids and times.
_OWN_FIELDS = ("id", "dataset_id", "created_at")


@dataclass
class DatasetsServer:
    """A running server whose workspace a test swaps for its own."""

    url: str
    app: FastAPI
    lock: threading.Lock

    @contextmanager
    def serving(self, workspace: Workspace, *, role: str = "editor") -> Iterator[RemoteWorkspace]:
        """Serve ``workspace`` meanwhile; a remote workspace on it with a ``role`` token."""
        name = default_actor()  # the embedded run's actor, so created_by matches
        workspace.access.users.add(name, role=role)
        secret = workspace.access.tokens.create(name, name="tests").secret
        with self.lock:
            before = (self.app.state.workspace, self.app.state.authenticator)
            record_request_actors(workspace)
            self.app.state.workspace = workspace
            self.app.state.authenticator = workspace.access
            remote = connect(self.url, token=secret)
            try:
                yield remote
            finally:
                remote.close()
                self.app.state.workspace, self.app.state.authenticator = before


def start_server(home: Path) -> Iterator[DatasetsServer]:
    """Start a server on a placeholder workspace in ``home``; stop it afterwards."""
    app = create_app(lambda: weightbase.open(home), ServerOptions(webhooks=False))
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
        yield DatasetsServer(f"http://127.0.0.1:{port}", app, threading.Lock())
    finally:
        running.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _comparable(version: DatasetVersion) -> dict[str, Any]:
    data = version.to_dict()
    for name in _OWN_FIELDS:
        data.pop(name, None)
    data["splits_snapshot_id"] = version.splits_snapshot_id
    return data


def assert_same_version(remote: DatasetVersion, embedded: DatasetVersion) -> None:
    """The same version in two workspaces: every field but the ids and the creation time."""
    assert type(remote) is DatasetVersion
    assert _comparable(remote) == _comparable(embedded)
    assert remote.statistics == embedded.statistics
    assert remote.quality == embedded.quality
    assert remote.split_spec == embedded.split_spec
    assert remote.preprocessing == embedded.preprocessing


def assert_same_arrays(first: Mapping[str, Any], second: Mapping[str, Any]) -> None:
    """The same arrays under the same names, bit for bit (dtype, shape and bytes)."""
    assert sorted(first) == sorted(second)
    for name, array in first.items():
        other = second[name]
        assert (array.dtype, array.shape) == (other.dtype, other.shape), name
        assert np.ascontiguousarray(array).tobytes() == np.ascontiguousarray(other).tobytes(), name


def assert_same_content(remote: DatasetContent, embedded: DatasetContent) -> None:
    """The same dataset content: layout and arrays."""
    assert remote.metadata == embedded.metadata
    assert_same_arrays(remote.arrays, embedded.arrays)
