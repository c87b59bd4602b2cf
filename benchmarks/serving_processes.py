"""The inference servers the serving benchmark talks to, as subprocesses on free loopback ports.

``weightbase serve`` on the benchmark's workspace (the repository root on its
``PYTHONPATH``, so that it imports the MLP's entry point from ``benchmarks``) and
``mlflow models serve`` on a local model folder; all of them started at once, waited
on until they answer, and stopped when the benchmark ends. A server marked optional
(one whose engine or option may not exist yet) that fails to start is reported with
the reason instead of failing the benchmark.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.server_processes import HOST, ServerProcess, free_port

__all__ = [
    "ROOT",
    "ServeSpec",
    "counter",
    "cpu_seconds",
    "mlflow_serve",
    "serve_help",
    "started",
    "weightbase_serve",
]

Log = Callable[[str], None]

ROOT = Path(__file__).resolve().parent.parent
#: Seconds a server may take to answer its readiness probe after starting.
START_TIMEOUT_S = 240.0


@dataclass(frozen=True, slots=True)
class ServeSpec:
    """A server to start: its command line, environment, readiness probe and log file."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    port: int
    probe: str
    log_path: Path
    optional: bool = False


def _environment(threads: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WEIGHTBASE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # the servers compute with as many threads as the in-process anchors
    env["OMP_NUM_THREADS"] = str(threads)
    env.update(extra or {})
    return env


def weightbase_serve(
    name: str,
    home: Path,
    refs: Sequence[str],
    options: Sequence[str],
    *,
    threads: int,
    optional: bool = False,
) -> ServeSpec:
    """``python -m weightbase serve REFS --host --port OPTIONS`` on the workspace ``home``."""
    port = free_port()
    argv = (sys.executable, "-m", "weightbase", "serve", *refs, "--host", HOST, "--port", str(port))
    argv += (*options, "--log-level", "warning")
    env = _environment(threads, {"WEIGHTBASE_HOME": str(home)})
    log_path = home.parent / f"{name.replace(' ', '-')}.log"
    return ServeSpec(name, argv, env, port, "/readyz", log_path, optional)


def mlflow_serve(model_dir: Path, *, threads: int) -> ServeSpec:
    """``mlflow models serve -m MODEL_DIR --env-manager local``, one uvicorn worker."""
    port = free_port()
    argv: tuple[str, ...] = (sys.executable, "-m", "mlflow", "models", "serve")
    argv += ("-m", str(model_dir), "--env-manager", "local", "--host", HOST, "--port", str(port))
    argv += ("--workers", "1")
    # its uvicorn reads UVICORN_* options from the environment: no access log, warnings
    # only, as weightbase serve runs with --log-level warning
    quiet = {"UVICORN_ACCESS_LOG": "false", "UVICORN_LOG_LEVEL": "warning"}
    env = _environment(threads, {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true", **quiet})
    log_path = model_dir.parent / "mlflow-serve.log"
    return ServeSpec("mlflow models serve", argv, env, port, "/ping", log_path)


@contextmanager
def started(specs: Sequence[ServeSpec], log: Log) -> Iterator[dict[str, ServerProcess | str]]:
    """Start every server at once, wait for each; yields name → server, or, for an optional
    one that did not start, name → ``"not run: <reason>"``. All are stopped at exit."""
    with ExitStack() as stack:
        launched: list[tuple[ServeSpec, ServerProcess]] = []
        begun = time.perf_counter()
        for spec in specs:
            with spec.log_path.open("wb") as output:
                process = subprocess.Popen(
                    list(spec.argv),
                    env=spec.env,
                    cwd=ROOT,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # a process group of its own, stopped as a whole
                )
            server = ServerProcess(spec.name, f"http://{HOST}:{spec.port}", process, spec.log_path)
            stack.callback(server.stop)
            launched.append((spec, server))
        out: dict[str, ServerProcess | str] = {}
        for spec, server in launched:
            failure = _wait_ready(server, spec.probe)
            if failure is None:
                log(f"  {spec.name} ready on {server.url} ({time.perf_counter() - begun:.1f} s)")
                out[spec.name] = server
            elif spec.optional:
                server.stop()
                log(f"  {spec.name} did not start: {failure}")
                out[spec.name] = f"not run: {failure}"
            else:
                raise RuntimeError(f"{spec.name} did not start: {failure}\n{server.log_tail()}")
        yield out


def _wait_ready(server: ServerProcess, probe: str) -> str | None:
    """None once the server answers ``probe`` with 200; else why it never will."""
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        while True:
            if server.process.poll() is not None:
                return (
                    f"`{_command(server)}` exited with {server.process.returncode}: "
                    + _last_error(server.log_tail(40))
                )
            try:
                if client.get(probe).status_code == 200:
                    return None
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                return f"no answer on {probe} in {START_TIMEOUT_S:.0f} s"
            time.sleep(0.2)


def _command(server: ServerProcess) -> str:
    argv = [str(part) for part in server.process.args]  # type: ignore[union-attr]
    words = argv[2:] if argv[1:2] == ["-m"] else argv
    return " ".join(word for word in words[:3])


def _last_error(tail: str) -> str:
    """The line of a log tail that says what went wrong (usage errors, exceptions)."""
    lines = [line.strip(" │╭╰─") for line in tail.splitlines()]
    lines = [line for line in lines if line.strip()]
    for line in reversed(lines):
        if re.search(r"(Error|error|No such option|Invalid value)", line):
            return line.strip()[:200]
    return (lines[-1].strip() if lines else "no output")[:200]


def serve_help() -> str:
    """What ``weightbase serve --help`` prints: which options this weightbase has."""
    done = subprocess.run(
        [sys.executable, "-m", "weightbase", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    return done.stdout + done.stderr


def counter(url: str, name: str, model: str) -> float | None:
    """A Prometheus counter of one model from the server's ``/metrics``; None where absent."""
    text = httpx.get(f"{url}/metrics", timeout=30.0).text
    pattern = re.compile(rf"^{re.escape(name)}\{{([^}}]*)\}}\s+(\S+)$")
    # a labelled counter has no sample before its first increment, only its # TYPE line
    found = 0.0 if f"# TYPE {name.removesuffix('_total')} counter" in text else None
    for line in text.splitlines():
        matched = pattern.match(line)
        if matched and f'model="{model}"' in matched[1]:
            found = (found or 0.0) + float(matched[2])
    return found


def cpu_seconds(server: ServerProcess) -> float:
    """CPU seconds (user + system) the server and its child processes have used so far;
    0 where there is no ``/proc``."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # the command name (field 2) is in parentheses and may hold spaces
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    tree = {server.process.pid}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(used.get(pid, 0.0) for pid in tree)
