"""``weightbase server``: its options, the app each worker builds, and a real process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from weightbase.api._extras import require_server_extra
from weightbase.api.app import create_app_from_env
from weightbase.cli import app
from weightbase.errors import MissingExtraError


def test_server_passes_its_options_to_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIGHTBASE_SERVER_ANONYMOUS_READ", "0")
    monkeypatch.setenv("WEIGHTBASE_SERVER_WEBHOOKS", "1")
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **options: calls.append((target, options)))
    result = CliRunner().invoke(
        app, ["server", "--port", "9123", "--workers", "3", "--anonymous-read", "--no-webhooks"]
    )
    assert result.exit_code == 0, result.output
    [(target, options)] = calls
    assert target == "weightbase.api.app:create_app_from_env"
    assert options == {
        "factory": True,
        "host": "127.0.0.1",
        "port": 9123,
        "workers": 3,
        "log_level": "info",
    }
    assert os.environ["WEIGHTBASE_SERVER_ANONYMOUS_READ"] == "1"
    assert os.environ["WEIGHTBASE_SERVER_WEBHOOKS"] == "0"
    assert CliRunner().invoke(app, ["server"]).exit_code == 0
    assert os.environ["WEIGHTBASE_SERVER_WEBHOOKS"] == "1"


def test_server_refuses_bad_options() -> None:
    result = CliRunner().invoke(app, ["server", "--workers", "0"])
    assert result.exit_code == 2


def test_the_app_of_each_worker_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, weightbase_home: Path
) -> None:
    monkeypatch.setenv("WEIGHTBASE_SERVER_ANONYMOUS_READ", "1")
    assert create_app_from_env().state.options.anonymous_read is True
    monkeypatch.setenv("WEIGHTBASE_SERVER_ANONYMOUS_READ", "0")
    assert create_app_from_env().state.options.anonymous_read is False
    monkeypatch.delenv("WEIGHTBASE_SERVER_WEBHOOKS", raising=False)
    assert create_app_from_env().state.options.webhooks is True
    monkeypatch.setenv("WEIGHTBASE_SERVER_WEBHOOKS", "0")
    assert create_app_from_env().state.options.webhooks is False


def test_a_missing_extra_names_weightbase_server() -> None:
    with pytest.raises(MissingExtraError, match=r"weightbase\[server\]") as raised:
        require_server_extra(("weightbase_no_such_module",))
    assert raised.value.extra == "server"


def test_the_core_imports_without_the_server_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['fastapi'] = None\n"
        "import weightbase, weightbase.cli\n"
        "try:\n"
        "    import weightbase.api\n"
        "except weightbase.MissingExtraError as exc:\n"
        "    print(exc.extra)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_real_server_process_serves_the_workspace(weightbase_home: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "weightbase", "server", "--port", str(port), "--anonymous-read"],
        env={**os.environ, "WEIGHTBASE_HOME": str(weightbase_home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start in 60 s"
            time.sleep(0.1)
        assert httpx.get(f"{url}/readyz").json()["status"] == "ready"
        assert httpx.get(f"{url}/api/v1/models").json() == {"items": [], "next": None}
        refused = httpx.post(f"{url}/api/v1/runs", json={})
        assert refused.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr:
            process.stderr.close()
