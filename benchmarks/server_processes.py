"""The servers the server benchmark talks to, as subprocesses on free loopback ports.

``weightbase server`` on a fresh ``WEIGHTBASE_HOME`` (SQLite catalog, local store),
its tokens made beforehand through the embedded workspace; ``mlflow server`` on a
SQLite file with ``--serve-artifacts``. Both get one worker process and no access
log, are waited on until they answer, and are stopped when the benchmark ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "HOST",
    "MLFLOW_SQLITE_SETUP",
    "ServerProcess",
    "Tokens",
    "journal_mode",
    "mlflow_server",
    "open_home",
    "settle",
    "weightbase_server",
]

Log = Callable[[str], None]

HOST = "127.0.0.1"
#: Seconds a server may take to answer its readiness probe after starting.
START_TIMEOUT_S = 120.0
# settled: under 0.05 CPU seconds used in 2 s (5 polls 0.5 s apart)
_SETTLE_POLL_S = 0.5
_SETTLE_POLLS = 5
_SETTLE_CPU_S = 0.05

# Both servers store with the same durability. MLflow opens its SQLite file with the
# library defaults (rollback journal, synchronous=FULL); weightbase's catalog runs in WAL
# mode with synchronous=FULL. MLflow writes an artifact to a temporary file and renames
# it without fsync; weightbase fsyncs each chunk before the rename and the folders after,
# so that a push is durable when it is answered. This module, on the MLflow server's
# PYTHONPATH only, gives MLflow's connections weightbase's settings and its local artifact
# writes weightbase's fsyncs.
MLFLOW_SQLITE_SETUP = '''\
"""Benchmark settings for the MLflow server: weightbase's durability, no more, no less.

SQLite in WAL mode with synchronous=FULL; each artifact fsynced before it is renamed
into place, and its folder fsynced after.
"""

import os
import sqlite3

from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "connect")
def _weightbase_sqlite_settings(dbapi_connection, _record):
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()


_write = LocalArtifactRepository._write_to_destination_path
_publish = LocalArtifactRepository._publish_staged_artifact


def _fsynced_write(self, name, writer, artifact_path=None, finalize_temp_path=None):
    def write_and_sync(temp_file):
        writer(temp_file)
        temp_file.flush()
        os.fsync(temp_file.fileno())

    return _write(self, name, write_and_sync, artifact_path, finalize_temp_path)


def _fsynced_publish(self, temp_file_path, destination_file_path, *args, **kwargs):
    published = _publish(self, temp_file_path, destination_file_path, *args, **kwargs)
    folder = os.open(os.path.dirname(destination_file_path), os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return published


LocalArtifactRepository._write_to_destination_path = _fsynced_write
LocalArtifactRepository._publish_staged_artifact = _fsynced_publish
'''


@dataclass(frozen=True, slots=True)
class Tokens:
    """Secrets of the benchmark's users: an editor for the clients, an admin for the fuzzer."""

    editor: str
    admin: str


@dataclass(frozen=True, slots=True)
class ServerProcess:
    """A server started by the benchmark: its base URL, process and log file."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        """Ask the server to stop (SIGINT, as Ctrl-C), then kill what lingers.

        The signals go to the server's process group, which it leads: ``mlflow
        server`` runs uvicorn and a job runner as child processes.
        """
        if self.process.poll() is None:
            self._signal_group(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait(timeout=10)
        self._signal_group(signal.SIGKILL)  # children that outlived their parent

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group is gone
            os.killpg(self.process.pid, signum)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def open_home(home: Path) -> Any:
    """The embedded workspace in ``home`` (its SQLite catalog and local store, whatever
    ``WEIGHTBASE_*`` the environment sets), as the server started on it opens it."""
    import weightbase

    return weightbase.open(
        home, catalog_url=f"sqlite:///{home / 'catalog.db'}", store_url=str(home / "store")
    )


def make_tokens(home: Path) -> Tokens:
    """Users and tokens in the workspace at ``home``, through the embedded API."""
    with open_home(home) as wb:
        secrets = {}
        for role in ("editor", "admin"):
            wb.access.users.add(f"bench-{role}", role=role)
            secrets[role] = wb.access.tokens.create(f"bench-{role}", name="benchmark").secret
    return Tokens(editor=secrets["editor"], admin=secrets["admin"])


@contextmanager
def weightbase_server(home: Path, log: Log) -> Iterator[tuple[ServerProcess, Tokens]]:
    """``python -m weightbase server`` on ``home`` (made and given tokens first), until exit."""
    home.mkdir(parents=True, exist_ok=True)
    tokens = make_tokens(home)
    env = {key: value for key, value in os.environ.items() if not key.startswith("WEIGHTBASE_")}
    env["WEIGHTBASE_HOME"] = str(home)  # catalog.db and store/ inside it, as open_home
    port = free_port()
    argv = [sys.executable, "-m", "weightbase", "server", "--host", HOST, "--port", str(port)]
    argv += ["--workers", "1", "--log-level", "warning"]
    with _started("weightbase server", argv, env, port, "/readyz", home / "server.log", log) as s:
        yield s, tokens


@contextmanager
def mlflow_server(folder: Path, log: Log) -> Iterator[ServerProcess]:
    """``mlflow server --serve-artifacts`` on a SQLite file in ``folder``, until exit."""
    folder.mkdir(parents=True, exist_ok=True)
    setup = folder / "setup"
    setup.mkdir(exist_ok=True)
    (setup / "sitecustomize.py").write_text(MLFLOW_SQLITE_SETUP)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(setup), env.get("PYTHONPATH")]))
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        (folder / "artifacts").as_uri(),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--uvicorn-opts",
        "--log-level warning",
    ]
    with _started("mlflow server", argv, env, port, "/health", folder / "server.log", log) as s:
        yield s


def settle(servers: Iterable[ServerProcess], log: Log, *, timeout: float = 60.0) -> None:
    """Wait until the servers (and their child processes) stop using CPU.

    A server answers its readiness probe before it is done starting: MLflow's
    keeps importing and starts a job runner for seconds afterwards, which on a
    small machine would be charged to whatever is timed next. Linux only
    (``/proc``); elsewhere this returns at once.
    """
    pids = [server.process.pid for server in servers]
    if not Path("/proc/self/stat").exists():
        return
    started = time.monotonic()
    window: list[float] = [_tree_cpu_seconds(pids)]
    while time.monotonic() - started < timeout:
        time.sleep(_SETTLE_POLL_S)
        window.append(_tree_cpu_seconds(pids))
        window = window[-_SETTLE_POLLS:]
        if len(window) == _SETTLE_POLLS and window[-1] - window[0] < _SETTLE_CPU_S:
            log(f"  servers idle after {time.monotonic() - started:.1f} s")
            return
    log(f"  servers still busy after {timeout:.0f} s; measuring anyway")


def _tree_cpu_seconds(roots: list[int]) -> float:
    """CPU seconds (user + system) used so far by ``roots`` and all their descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # the command name (field 2) is in parentheses and may hold spaces
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks
    wanted = set(roots)
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in wanted} - wanted
        wanted |= more
        grew = bool(more)
    return sum(used.get(pid, 0.0) for pid in wanted)


def journal_mode(database: Path) -> str:
    """The journal mode a SQLite file is in (``wal`` once a WAL connection has opened it)."""
    connection = sqlite3.connect(database)
    try:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        connection.close()


@contextmanager
def _started(
    name: str,
    argv: list[str],
    env: dict[str, str],
    port: int,
    probe: str,
    log_path: Path,
    log: Log,
) -> Iterator[ServerProcess]:
    started = time.perf_counter()
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            argv,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a process group of its own, stopped as a whole
        )
    server = ServerProcess(name, f"http://{HOST}:{port}", process, log_path)
    try:
        _wait_ready(server, probe)
        log(f"  {name} ready on {server.url} in {time.perf_counter() - started:.1f} s")
        yield server
    finally:
        server.stop()


def _wait_ready(server: ServerProcess, probe: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"{server.name} exited with {server.process.returncode} while starting:\n"
                    + server.log_tail()
                )
            try:
                if client.get(probe).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{server.name} did not answer {probe} in {START_TIMEOUT_S:.0f} s:\n"
                    + server.log_tail()
                )
            time.sleep(0.2)
