"""``weightbase serve abtest:NAME`` on loopback: each request goes to its unit's variant,
the answer names it, outcomes sent back with that unit land on the same variant, and a
reweight or a stop reaches the server."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from tests.remote_support import serve_in_thread  # noqa: E402
from tests.serving.test_server_models import _folder  # noqa: E402
from tests.tiny_models import tiny_bert_config  # noqa: E402

import weightbase  # noqa: E402
from weightbase.errors import NotFound  # noqa: E402
from weightbase.sample_models import DIGITS_MLP, DigitsMLP  # noqa: E402
from weightbase.serving.app import create_serve_app  # noqa: E402
from weightbase.serving.runnable import clear_runnables  # noqa: E402
from weightbase.serving.server_options import ServeOptions  # noqa: E402
from weightbase.workspace import Workspace  # noqa: E402

REFRESH_S = 0.2


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Workspace]]:
    """Two digits MLPs and two tiny encoders, each pair under a running A/B test."""
    tmp = tmp_path_factory.mktemp("ab-serve")
    clear_runnables()
    with weightbase.open(tmp / "home") as wb:
        for seed in (0, 1):
            torch.manual_seed(seed)
            wb.models.push("digits", DigitsMLP(hidden=16).eval(), entry_point=DIGITS_MLP,
                           init_args={"hidden": 16})  # fmt: skip
            encoder = transformers.BertModel(tiny_bert_config()).eval()
            wb.models.push("encoder", _folder(tmp, encoder, f"encoder-{seed}"))
        wb.abtests.create("digits-v2", variants=["digits@0.1.0", "digits@0.2.0"], metric="ok")
        wb.abtests.create("encoder-v2", variants=["encoder@0.1.0", "encoder@0.2.0"])
        options = ServeOptions(ab_refresh_s=REFRESH_S, cache_bytes=0)
        app = create_serve_app(wb, ["abtest:digits-v2", "abtest:encoder-v2"], options)
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield client, wb
    clear_runnables()


def _rows(count: int = 1) -> dict[str, Any]:
    data = np.random.default_rng(count).random((count, 64)).round(3).tolist()
    return {"inputs": [{"name": "x", "shape": [count, 64], "datatype": "FP32", "data": data}]}


def _infer(client: httpx.Client, unit: str | None = None) -> httpx.Response:
    headers = {} if unit is None else {"X-Weightbase-Unit": unit}
    response = client.post("/v2/models/digits-v2/infer", json=_rows(), headers=headers)
    assert response.status_code == 200, response.text
    return response


def test_each_unit_gets_its_assigned_variant_and_the_answer_names_it(
    served: tuple[httpx.Client, Workspace],
) -> None:
    client, wb = served
    seen: Counter[str] = Counter()
    for index in range(120):
        unit = f"user-{index}"
        response = _infer(client, unit)
        variant = response.headers["X-Weightbase-Variant"]
        assert variant == wb.abtests.assign("digits-v2", unit)
        assert response.headers["X-Weightbase-AB-Test"] == "digits-v2"
        assert response.headers["X-Weightbase-Unit"] == unit
        # the version that answered is the variant's
        assert response.json()["model_version"] == variant.split("@")[1]
        seen[variant] += 1
    assert set(seen) == {"digits@0.1.0", "digits@0.2.0"}
    assert min(seen.values()) >= 35  # 50/50 weights: far from all one way
    again = [_infer(client, f"user-{k}").headers["X-Weightbase-Variant"] for k in range(10)]
    assert again == [wb.abtests.assign("digits-v2", f"user-{k}") for k in range(10)]


def test_variants_answer_with_their_own_weights(served: tuple[httpx.Client, Workspace]) -> None:
    client, wb = served
    units = {wb.abtests.assign("digits-v2", f"u{k}"): f"u{k}" for k in range(40)}
    answers = {variant: _infer(client, unit).json()["outputs"][0]["data"]
               for variant, unit in units.items()}  # fmt: skip
    assert len(answers) == 2
    assert answers["digits@0.1.0"] != answers["digits@0.2.0"]


def test_a_request_without_a_unit_is_its_own_unit(served: tuple[httpx.Client, Workspace]) -> None:
    client, wb = served
    units = set()
    for _ in range(10):
        response = _infer(client)
        unit = response.headers["X-Weightbase-Unit"]
        assert response.headers["X-Weightbase-Variant"] == wb.abtests.assign("digits-v2", unit)
        units.add(unit)
    assert len(units) == 10


def test_outcomes_sent_back_with_the_unit_land_on_the_variant_that_answered(
    served: tuple[httpx.Client, Workspace],
) -> None:
    client, wb = served
    answered: Counter[str] = Counter()
    outcomes = []
    for index in range(60):
        unit = f"visitor-{index}"
        variant = _infer(client, unit).headers["X-Weightbase-Variant"]
        answered[variant] += 1
        outcomes.append((unit, "ok", float(index % 2)))
    wb.abtests.record("digits-v2", outcomes)
    results = wb.abtests.results("digits-v2")
    counts = {stats.name: stats.count for stats in results.results.variants}
    assert counts == dict(answered)


def test_the_openai_endpoint_routes_by_user(served: tuple[httpx.Client, Workspace]) -> None:
    client, wb = served
    for index in range(12):
        user = f"reader-{index}"
        body = {"model": "encoder-v2", "input": ["the cat sat"], "user": user}
        response = client.post("/v1/embeddings", json=body)
        assert response.status_code == 200, response.text
        assert response.headers["X-Weightbase-Variant"] == wb.abtests.assign("encoder-v2", user)
        assert response.headers["X-Weightbase-Unit"] == user
    # the header wins over the body's user
    body = {"model": "encoder-v2", "input": "a", "user": "reader-0"}
    response = client.post("/v1/embeddings", json=body, headers={"X-Weightbase-Unit": "h-1"})
    assert response.headers["X-Weightbase-Unit"] == "h-1"


def test_an_unknown_test_or_model_is_404(served: tuple[httpx.Client, Workspace]) -> None:
    client, wb = served
    response = client.post("/v2/models/nope-v2/infer", json=_rows())
    assert response.status_code == 404
    assert "X-Weightbase-Variant" not in response.headers
    with pytest.raises(NotFound):
        create_serve_app(wb, ["abtest:never-created"], ServeOptions())


def _shares(client: httpx.Client, units: int) -> Counter[str]:
    return Counter(
        _infer(client, f"share-{k}").headers["X-Weightbase-Variant"] for k in range(units)
    )


def _eventually(check: Any, seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(REFRESH_S)


def test_a_reweight_and_a_stop_reach_the_server(served: tuple[httpx.Client, Workspace]) -> None:
    client, wb = served
    before = {f"share-{k}": wb.abtests.assign("digits-v2", f"share-{k}") for k in range(60)}
    wb.abtests.reweight("digits-v2", [1, 9])
    after = {unit: wb.abtests.assign("digits-v2", unit) for unit in before}
    assert _eventually(lambda: _shares(client, 60) == Counter(after.values()))
    # sticky: units that could keep their variant did
    moved = [unit for unit in before if before[unit] != after[unit]]
    assert all(before[unit] == "digits@0.1.0" for unit in moved)
    wb.abtests.stop("digits-v2", decision="ship", winner="digits@0.2.0", reason="better")
    assert _eventually(lambda: _shares(client, 20) == Counter({"digits@0.2.0": 20}))
