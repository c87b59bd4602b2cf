"""Servers for the remote run tests: one in a thread of the test process, one as a real process.

``threaded_server`` serves a fresh embedded workspace from a uvicorn thread (so
coverage sees the server), on either catalog backend. ``ServerProcess`` runs
``python -m weightbase server`` as a subprocess on a fixed port, so a test can
SIGKILL it in the middle of a run and start it again on the same port and home.
Both hand out an editor's token made beforehand through the embedded workspace.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.remote_support import serve_in_thread

import weightbase
from weightbase.api import ServerOptions, create_app
from weightbase.workspace import Workspace

__all__ = ["ServerProcess", "Served", "editor_token", "free_port", "threaded_server"]

EDITOR = "remote-runner"


def editor_token(workspace: Workspace, name: str = EDITOR) -> str:
    """A token of a new editor of ``workspace``."""
    workspace.access.users.add(name, role="editor")
    return workspace.access.tokens.create(name, name="remote runs").secret


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    """A running server: its URL, the embedded workspace it serves, and an editor's token."""

    url: str
    workspace: Workspace
    token: str


@contextmanager
def threaded_server(
    home: Path, catalog_url: str, *, max_body_bytes: int = 64 * 1024 * 1024
) -> Iterator[Served]:
    """Serve a fresh workspace in ``home`` on ``catalog_url`` from a thread, for the block."""
    workspace = weightbase.open(home, catalog_url=catalog_url)
    token = editor_token(workspace)
    options = ServerOptions(webhooks=False, max_body_bytes=max_body_bytes)
    app = create_app(lambda: weightbase.open(home, catalog_url=catalog_url), options)
    try:
        with serve_in_thread(app) as url:
            yield Served(url, workspace, token)
    finally:
        workspace.close()


class ServerProcess:
    """``python -m weightbase server`` on ``port``, serving the workspace in ``home``."""

    def __init__(self, home: Path, port: int, log: Path) -> None:
        self.home = home
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it answers ``/readyz``."""
        env = {**os.environ, "WEIGHTBASE_HOME": str(self.home)}
        for name in ("WEIGHTBASE_CATALOG_URL", "WEIGHTBASE_STORE_URL", "WEIGHTBASE_URL"):
            env.pop(name, None)
        command = [sys.executable, "-m", "weightbase", "server", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--no-webhooks", "--log-level", "warning"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=out)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server did not answer in {timeout} s")

    def kill(self) -> None:
        """SIGKILL the server: no shutdown, no flush, connections cut."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
