"""``weightbase serve --device cuda``: models built on the GPU answer the same requests
(skipped where torch sees no CUDA device)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
httpx = pytest.importorskip("httpx")

from tests.serving.test_server_models import running_server  # noqa: E402

from weightbase.serving.server_options import ServeOptions  # noqa: E402

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device"),
]


def test_models_are_served_from_the_gpu(tmp_path: Path) -> None:
    options = ServeOptions(device="cuda")
    with (
        running_server(tmp_path, ["encoder@latest", "writer@latest"], options) as (url, engine),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        body = {"model": "encoder", "input": ["hello world"], "encoding_format": "float"}
        response = client.post("/v1/embeddings", json=body)
        assert response.status_code == 200, response.text
        assert len(response.json()["data"][0]["embedding"]) == 32
        prompt = {"model": "writer", "prompt": "the cat", "max_tokens": 3}
        assert client.post("/v1/completions", json=prompt).status_code == 200
        runnable = engine.pool.models["encoder"].runnable
        assert runnable.device.startswith("cuda")
        assert engine.pool.models["encoder"].bytes > 0
