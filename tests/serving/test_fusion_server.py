"""``weightbase serve reactor:NAME`` on loopback: a reactor answers the Open Inference
Protocol as ``/v2/models/NAME`` beside its members, and logs what each batch did."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from scipy.special import softmax  # noqa: E402
from tests.remote_support import serve_in_thread  # noqa: E402

import weightbase  # noqa: E402
from weightbase.sample_models import DIGITS_MLP, DigitsMLP  # noqa: E402
from weightbase.serving.app import create_serve_app  # noqa: E402
from weightbase.serving.fusion.runnable import ReactorRunnable  # noqa: E402
from weightbase.serving.pool import served_names  # noqa: E402
from weightbase.serving.runnable import clear_runnables  # noqa: E402
from weightbase.serving.server_options import ServeOptions  # noqa: E402
from weightbase.workspace import Workspace  # noqa: E402

SIZES = {"small": 8, "large": 32}


def _module(name: str) -> Any:
    torch.manual_seed(len(name))
    return DigitsMLP(hidden=SIZES[name]).eval()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[httpx.Client, Any, Workspace]]:
    clear_runnables()
    with weightbase.open(tmp_path_factory.mktemp("reactors")) as wb:
        for name, hidden in SIZES.items():
            wb.models.push(
                name, _module(name), entry_point=DIGITS_MLP, init_args={"hidden": hidden}
            )
        wb.reactors.create(
            "digits", members=[{"ref": "small@0.1.0", "weight": 1}, {"ref": "large@0.1.0"}]
        )
        # with an environment, as a deployment runs it: a reactor is no deployment to report
        options = ServeOptions(environment="development")
        app = create_serve_app(wb, ["reactor:digits", "small@0.1.0"], options)
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield client, app.state.engine, wb
    clear_runnables()


def _rows(rows: np.ndarray) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "input", "shape": list(rows.shape), "datatype": "FP32", "data": rows.tolist()}
        ]
    }


def _probs(name: str, rows: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return np.asarray(softmax(_module(name)(torch.as_tensor(rows)).numpy(), axis=1))


def test_a_reactor_ref_is_served_as_its_name() -> None:
    assert served_names(["reactor:digits", "small@1.0.0"]) == {
        "digits": "reactor:digits",
        "small": "small@1.0.0",
    }


def test_the_reactor_answers_oip_infer_with_the_fused_probabilities(
    server: tuple[httpx.Client, Any, Workspace],
) -> None:
    client, engine, wb = server
    rows = np.random.default_rng(0).random((6, 64)).astype(np.float32)
    answer = client.post("/v2/models/digits/infer", json=_rows(rows))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_name"] == "digits"
    (output,) = body["outputs"]
    assert output["shape"] == [6, 10]
    expected = (_probs("small", rows) + _probs("large", rows)) / 2
    found = np.asarray(output["data"], dtype=np.float64).reshape(6, 10)
    np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-6)
    # the member served beside it answers its own logits, not the reactor's cached answer
    member = client.post("/v2/models/small/infer", json=_rows(rows)).json()
    with torch.inference_mode():
        logits = _module("small")(torch.as_tensor(rows)).numpy()
    small = np.asarray(member["outputs"][0]["data"], dtype=np.float64).reshape(6, 10)
    np.testing.assert_allclose(small, logits, rtol=1e-5, atol=1e-6)
    state = engine.pool.state("digits")
    assert isinstance(state.runnable, ReactorRunnable)
    state.runnable.log.flush()
    operations = wb.reactors.operations("digits")
    assert sum(op.batch_size for op in operations) == 6
    assert {ref for op in operations for ref in op.members} == {"small@0.1.0", "large@0.1.0"}


def test_a_member_that_fails_is_a_500_naming_the_reactor_and_the_reactor_stays_up(
    server: tuple[httpx.Client, Any, Workspace],
) -> None:
    client = server[0]
    bad = client.post("/v2/models/digits/infer", json=_rows(np.zeros((2, 5), np.float32)))
    assert bad.status_code == 500
    assert "model digits failed" in bad.json()["error"]
    assert client.get("/v2/models/digits/ready").json()["ready"] is True
