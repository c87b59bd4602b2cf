"""``weightbase serve``: its options reach the server, which answers on loopback; bad
options are refused before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from tests.remote_support import serve_in_thread  # noqa: E402
from tests.serving.test_server_models import push_models  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import weightbase  # noqa: E402
from weightbase.cli import app  # noqa: E402
from weightbase.cli.exit_codes import ExitCode  # noqa: E402
from weightbase.serving.runnable import clear_runnables  # noqa: E402


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    with weightbase.open(home) as wb:
        push_models(wb, tmp_path)
    monkeypatch.setenv("WEIGHTBASE_HOME", str(home))
    monkeypatch.delenv("WEIGHTBASE_URL", raising=False)
    clear_runnables()
    return home


def test_serve_runs_the_models_with_its_options(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def run(served: Any, *, host: str, port: int, log_level: str) -> None:
        seen.update(host=host, port=port, log_level=log_level)
        engine = served.state.engine
        seen["options"] = engine.options
        with serve_in_thread(served) as url, httpx.Client(base_url=url) as client:
            body = {"model": "encoder", "input": ["hello world"], "encoding_format": "float"}
            seen["embeddings"] = client.post("/v1/embeddings", json=body).json()
            seen["models"] = client.get("/v1/models").json()

    monkeypatch.setattr(uvicorn, "run", run)
    args = ["serve", "encoder@latest", "writer@latest", "--host", "0.0.0.0", "--port", "9001"]
    args += ["--memory-budget", "1GiB", "--batch-size", "4", "--max-wait-ms", "2"]
    args += ["--max-concurrency", "3", "--timeout", "7.5", "--log-level", "warning"]
    args += ["--kv-prefix-cache", "5", "--metrics-interval", "0.5", "--environment", "staging"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (seen["host"], seen["port"], seen["log_level"]) == ("0.0.0.0", 9001, "warning")
    options = seen["options"]
    assert options.memory_budget == 2**30
    assert (options.batch_size, options.max_wait_ms) == (4, 2.0)
    assert (options.max_concurrency, options.timeout_s) == (3, 7.5)
    assert (options.kv_prefix_cache, options.metrics_interval_s) == (5, 0.5)
    assert options.environment == "staging"
    assert len(seen["embeddings"]["data"][0]["embedding"]) == 32
    assert [model["id"] for model in seen["models"]["data"]] == ["encoder", "writer"]
    clear_runnables()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["encoder@latest", "--memory-budget", "lots"], "not a size"),
        (["encoder@latest", "encoder@latest"], "given twice"),
        (["encoder@latest", "--environment", "moon"], "environment must be one of"),
    ],
)
def test_bad_options_are_refused_before_serving(
    home: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the server started"))
    result = CliRunner().invoke(app, ["serve", *args])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert message in result.output
