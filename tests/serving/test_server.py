"""``weightbase serve`` on loopback, driven with httpx: health, readiness, metrics, the
Open Inference Protocol and its 404 and 422 answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
httpx = pytest.importorskip("httpx")

from tests.serving.test_server_models import running_server  # noqa: E402

from weightbase.serving.server_options import ServeOptions  # noqa: E402

REFS = ["encoder@latest", "writer@latest", "slow@latest"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Any]]:
    home = tmp_path_factory.mktemp("serve")
    with (
        running_server(home, REFS, ServeOptions()) as (url, engine),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client, engine


@pytest.fixture
def client(server: tuple[httpx.Client, Any]) -> httpx.Client:
    return server[0]


def _texts(*texts: str) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": list(texts)}
        ]
    }


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["models"]["encoder"]["ref"] == "encoder@latest"
    assert client.get("/v2/health/ready").json() == {"ready": True}


def test_model_metadata_names_its_task_inputs_and_outputs(client: httpx.Client) -> None:
    metadata = client.get("/v2/models/encoder").json()
    assert metadata["name"] == "encoder"
    assert metadata["task"] == "embeddings"
    assert metadata["state"] == "loaded"
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert metadata["outputs"][0]["name"] == "embedding"
    assert client.get("/v2/models/encoder/ready").json() == {"name": "encoder", "ready": True}


def test_oip_infer_embeds_texts(client: httpx.Client) -> None:
    response = client.post(
        "/v2/models/encoder/infer", json={"id": "r1", **_texts("the cat", "hello world")}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "r1"
    assert body["model_name"] == "encoder"
    [output] = body["outputs"]
    assert output["name"] == "embedding"
    assert output["datatype"] == "FP32"
    assert output["shape"] == [2, 32]
    vectors = np.asarray(output["data"]).reshape(2, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)


def test_oip_infer_generates_with_parameters(client: httpx.Client) -> None:
    request = {**_texts("the cat"), "parameters": {"max_tokens": 3}}
    [output] = client.post("/v2/models/writer/infer", json=request).json()["outputs"]
    assert output["name"] == "text_output"
    assert output["datatype"] == "BYTES"
    assert output["shape"] == [1]
    assert isinstance(output["data"][0], str)


def test_oip_infer_runs_a_predict_model_on_a_numeric_tensor(client: httpx.Client) -> None:
    request = {
        "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[0, 1], [0, 2.5]]}]
    }
    response = client.post("/v2/models/slow/infer", json=request)
    assert response.status_code == 200, response.text
    [output] = response.json()["outputs"]
    assert output["shape"] == [2]
    assert output["data"] == [1.0, 2.5]


def test_an_unknown_model_is_404_everywhere(client: httpx.Client) -> None:
    assert client.get("/v2/models/nope").status_code == 404
    assert client.get("/v2/models/nope/ready").status_code == 404
    response = client.post("/v2/models/nope/infer", json=_texts("a"))
    assert response.status_code == 404
    assert "nope" in response.json()["error"]
    response = client.post("/v1/embeddings", json={"model": "nope", "input": "a"})
    assert response.status_code == 404
    assert "nope" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("tensor", "named"),
    [
        ({"name": "text", "datatype": "BYTES", "data": ["a"]}, "inputs[0].shape"),
        ({"name": "text", "shape": [1], "data": ["a"]}, "inputs[0].datatype"),
        ({"name": "text", "shape": [1], "datatype": "BYTES"}, "inputs[0].data"),
        ({"shape": [1], "datatype": "BYTES", "data": ["a"]}, "inputs[0].name"),
        ({"name": "text", "shape": [3], "datatype": "BYTES", "data": ["a", "b"]}, "needs 3 values"),
        ({"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]}, "BYTES, not FP32"),
        ({"name": "text", "shape": [1], "datatype": "FLOAT9", "data": [1.0]}, "FLOAT9"),
        ({"name": "text", "shape": [-1], "datatype": "BYTES", "data": ["a"]}, "shape"),
        ({"name": "text", "shape": [1], "datatype": "BYTES", "data": [3]}, "must be strings"),
    ],
)
def test_a_bad_tensor_is_422_naming_what_is_wrong(
    client: httpx.Client, tensor: dict[str, Any], named: str
) -> None:
    response = client.post("/v2/models/encoder/infer", json={"inputs": [tensor]})
    assert response.status_code == 422, response.text
    assert named in response.json()["error"]


def test_missing_inputs_and_non_numbers_are_422(client: httpx.Client) -> None:
    response = client.post("/v2/models/encoder/infer", json={})
    assert response.status_code == 422
    assert "'inputs' is required" in response.json()["error"]
    response = client.post("/v2/models/encoder/infer", content=b"not json")
    assert response.status_code == 422
    assert "not JSON" in response.json()["error"]
    bad = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": ["a", "b"]}]}
    response = client.post("/v2/models/slow/infer", json=bad)
    assert response.status_code == 422
    assert "must be numbers" in response.json()["error"]


def _numbers(data: Any, shape: list[int], datatype: str = "FP32") -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": data}]}


def test_numbers_are_read_flat_or_nested_row_major(client: httpx.Client) -> None:
    flat = client.post("/v2/models/slow/infer", json=_numbers([0, 1, 2, 0, 4, 5], [2, 3]))
    nested = client.post("/v2/models/slow/infer", json=_numbers([[0, 1, 2], [0, 4, 5]], [2, 3]))
    assert flat.status_code == nested.status_code == 200, flat.text
    assert flat.json()["outputs"] == nested.json()["outputs"]
    assert flat.json()["outputs"][0]["data"] == [3.0, 9.0]


def test_the_ends_of_an_integer_type_are_kept(client: httpx.Client) -> None:
    # the slow model sleeps a row's first value: 0 first, then the ends of int64
    ends = [0, -(2**63), 2**63 - 1]
    response = client.post("/v2/models/slow/infer", json=_numbers([ends], [1, 3], "INT64"))
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [float(sum(ends))]


@pytest.mark.parametrize(
    ("data", "datatype", "named"),
    [
        ([[0, 1], [2]], "FP32", "must be numbers"),  # ragged rows
        ([0, None], "FP32", "must be numbers"),
        ([0, "1"], "FP32", "must be numbers"),
        ([0, {"a": 1}], "FP32", "must be numbers"),
        ([0, 300], "INT8", "outside -128..127"),
        ([0, -1], "UINT8", "outside 0..255"),
        ([0, 2**70], "INT64", "outside -9223372036854775808..9223372036854775807"),
        ([0, 2**63], "INT64", "outside"),
        ([0, 128.0], "INT8", "outside"),
        ([0, 1, 2], "FP32", "needs 2 values, data has 3"),
    ],
)
def test_numbers_that_do_not_fit_the_tensor_are_422(
    client: httpx.Client, data: list[Any], datatype: str, named: str
) -> None:
    response = client.post("/v2/models/slow/infer", json=_numbers(data, [1, 2], datatype))
    assert response.status_code == 422, response.text
    assert named in response.json()["error"]


def test_metrics_show_latency_batches_and_tokens_per_model(client: httpx.Client) -> None:
    client.post(
        "/v2/models/writer/infer", json={**_texts("hello"), "parameters": {"max_tokens": 2}}
    )
    text = client.get("/metrics").text
    assert (
        'weightbase_serve_request_seconds_count{endpoint="/v2/models/{name}/infer",model="writer",status="200"}'
        in text
    )
    assert 'weightbase_serve_batch_size_count{model="encoder"}' in text
    assert 'weightbase_serve_queue_seconds_count{model="writer"}' in text
    assert 'weightbase_serve_tokens_per_second_count{model="writer"}' in text
    assert 'weightbase_serve_cache_misses_total{model="writer"}' in text


def test_a_model_that_raises_is_a_500_saying_what_failed(client: httpx.Client) -> None:
    bad = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [-1, 0]}]}
    response = client.post("/v2/models/slow/infer", json=bad)
    assert response.status_code == 500
    assert "ValueError" in response.json()["error"]
    assert client.get("/healthz").status_code == 200


def test_the_server_metadata_names_weightbase_and_its_version(client: httpx.Client) -> None:
    import weightbase

    assert client.get("/v2").json() == {
        "name": "weightbase",
        "version": weightbase.__version__,
        "extensions": [],
    }
