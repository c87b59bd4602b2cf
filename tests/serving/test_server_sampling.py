"""``weightbase serve --sample-rate``: answered requests are offered to the monitoring
sample by request id, written after the server stops at the latest, and a late label sent
with the id the answer carried joins its sample."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from tests.remote_support import serve_in_thread  # noqa: E402

import weightbase  # noqa: E402
from weightbase.sample_models import DIGITS_MLP, DigitsMLP  # noqa: E402
from weightbase.serving.app import create_serve_app  # noqa: E402
from weightbase.serving.runnable import clear_runnables  # noqa: E402
from weightbase.serving.server_options import ServeOptions  # noqa: E402
from weightbase.workspace import Workspace  # noqa: E402


@pytest.fixture
def wb(tmp_path: Any) -> Iterator[Workspace]:
    clear_runnables()
    with weightbase.open(tmp_path / "home") as workspace:
        torch.manual_seed(0)
        workspace.models.push("digits", DigitsMLP(hidden=16).eval(), entry_point=DIGITS_MLP,
                              init_args={"hidden": 16})  # fmt: skip
        yield workspace
    clear_runnables()


def _body(index: int, request_id: str | None) -> dict[str, Any]:
    row = np.random.default_rng(index).random(64).round(3).tolist()
    body: dict[str, Any] = {
        "inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32", "data": row}]
    }
    if request_id is not None:
        body["id"] = request_id
    return body


def _serve(wb: Workspace, rate: float, requests: list[dict[str, Any]]) -> list[httpx.Response]:
    app = create_serve_app(wb, ["digits@latest"], ServeOptions(sample_rate=rate, cache_bytes=0))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        return [client.post("/v2/models/digits/infer", json=body) for body in requests]


def test_every_request_is_kept_at_rate_one_with_its_inputs_and_outputs(wb: Workspace) -> None:
    answers = _serve(wb, 1.0, [_body(k, f"req-{k}") for k in range(8)])
    # rate 1 keeps all: each answer names its own id
    assert [a.headers["X-Weightbase-Request-Id"] for a in answers] == [f"req-{k}" for k in range(8)]
    page = wb.monitoring.samples("digits@0.1.0")
    kept = {sample.request_id: sample for sample in page.items}
    assert set(kept) == {f"req-{k}" for k in range(8)}
    sample = kept["req-3"]
    assert sample.inputs == _body(3, None)["inputs"]
    assert sample.outputs == answers[3].json()["outputs"]
    assert sample.latency_ms > 0
    assert sample.error is None


def test_a_share_is_kept_by_request_id_and_a_late_label_joins_it(wb: Workspace) -> None:
    answers = _serve(wb, 0.5, [_body(k, None) for k in range(40)])
    # the server named each request; an answer names its id where it was kept
    ids = [a.headers.get("X-Weightbase-Request-Id") for a in answers]
    named = {i for i in ids if i is not None}
    assert all(zlib.crc32(i.encode()) < int(0.5 * 2**32) for i in named)
    kept = {s.request_id for s in wb.monitoring.samples("digits@0.1.0").items}
    assert kept == named
    assert 5 < len(kept) < 35
    labelled = sorted(kept)[0]
    wb.monitoring.label(labelled, 7)
    found = [s for s in wb.monitoring.samples("digits@0.1.0").items if s.request_id == labelled]
    assert found[0].label == 7


def test_a_failed_request_is_sampled_with_its_error_and_rate_zero_keeps_nothing(
    wb: Workspace,
) -> None:
    bad = _body(0, "bad-1")
    bad["inputs"][0]["data"] = ["x"] * 64
    answers = _serve(wb, 1.0, [_body(1, "warm-1"), bad])  # the first loads the model
    assert answers[1].status_code == 422
    assert answers[1].headers["X-Weightbase-Request-Id"] == "bad-1"
    [failed] = [s for s in wb.monitoring.samples("digits").items if s.request_id == "bad-1"]
    assert failed.error is not None
    assert "must be numbers" in failed.error
    answers = _serve(wb, 0.0, [_body(2, "quiet-1")])
    assert "X-Weightbase-Request-Id" not in answers[0].headers
    assert "quiet-1" not in {s.request_id for s in wb.monitoring.samples("digits").items}
