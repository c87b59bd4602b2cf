"""``weightbase serve`` of a remote workspace (``WEIGHTBASE_URL``): the models and their
weights come from a weightbase server, and are served the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
httpx = pytest.importorskip("httpx")

from tests.remote_support import serve_in_thread  # noqa: E402
from tests.serving.test_server_models import push_models  # noqa: E402

import weightbase  # noqa: E402
from weightbase.remote import RemoteWorkspace  # noqa: E402
from weightbase.serving.app import create_serve_app  # noqa: E402
from weightbase.serving.runnable import clear_runnables  # noqa: E402
from weightbase.serving.server_options import ServeOptions  # noqa: E402


def test_a_remote_workspaces_models_are_served(live_server: Any, tmp_path: Path) -> None:
    clear_runnables()
    with weightbase.open(tmp_path / "home") as embedded:
        push_models(embedded, tmp_path)
        with live_server.serving(embedded) as remote:
            assert isinstance(remote, RemoteWorkspace)
            app = create_serve_app(remote, ["encoder@latest", "broken@latest"], ServeOptions())
            with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
                body = {"model": "encoder", "input": "hello world", "encoding_format": "float"}
                response = client.post("/v1/embeddings", json=body)
                assert response.status_code == 200, response.text
                assert len(response.json()["data"][0]["embedding"]) == 32
                assert client.get("/v2/models/encoder").json()["state"] == "loaded"
                assert client.get("/v2/models/broken/ready").status_code == 503
                assert client.get("/readyz").json()["failed"] == ["broken"]
    clear_runnables()
