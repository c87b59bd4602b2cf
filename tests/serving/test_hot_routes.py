"""The inference routes answered without the web framework: a body sent in pieces, a
client that leaves, what else goes on to the app, and non-finite outputs.

Driven through the ASGI interface itself, where these cases can be sent exactly; the
same routes on a real server are in ``test_server.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")
torch = pytest.importorskip("torch")

from tests.serving.test_server_models import SLOW  # noqa: E402

import weightbase  # noqa: E402
from weightbase.serving.app import create_serve_app  # noqa: E402
from weightbase.serving.server_options import ServeOptions  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app and the one event loop its requests run on (its batchers belong to it)."""
    loop = asyncio.new_event_loop()
    with weightbase.open(tmp_path_factory.mktemp("hot") / "home") as wb:
        wb.models.push("slow", {"w": torch.zeros(1)}, entry_point=SLOW)
        served = create_serve_app(wb, ["slow@latest"], ServeOptions(cache_bytes=0))
        served.state.loop = loop
        yield served
        loop.run_until_complete(served.state.engine.close())
    loop.close()


def _call(
    app: Any, method: str, path: str, pieces: list[bytes], *, disconnect: bool = False
) -> list[dict[str, Any]]:
    """Send a request whose body comes in ``pieces`` (or a disconnect before any)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": piece, "more_body": index < len(pieces) - 1}
        for index, piece in enumerate(pieces)
    ]
    if disconnect:
        messages = [{"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(60)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app.state.loop.run_until_complete(app(scope, receive, send))
    return sent


def _answer(sent: list[dict[str, Any]]) -> tuple[int, Any]:
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def _rows(data: Any, shape: list[int]) -> bytes:
    tensor = {"name": "x", "shape": shape, "datatype": "FP32", "data": data}
    return json.dumps({"inputs": [tensor], "id": "r1"}).encode()


def test_a_body_sent_in_pieces_is_read_whole(app: Any) -> None:
    body = _rows([[0, 1, 2], [0, 4, 5]], [2, 3])
    whole = _answer(_call(app, "POST", "/v2/models/slow/infer", [body]))
    pieces = _answer(_call(app, "POST", "/v2/models/slow/infer", [body[:7], body[7:30], body[30:]]))
    assert whole == pieces
    status, answer = whole
    assert status == 200
    assert answer["outputs"][0]["data"] == [3.0, 9.0]
    assert answer["id"] == "r1"


def test_a_client_that_leaves_before_its_body_gets_nothing(app: Any) -> None:
    assert _call(app, "POST", "/v2/models/slow/infer", [], disconnect=True) == []


def test_other_methods_and_paths_go_on_to_the_app(app: Any) -> None:
    status, answer = _answer(_call(app, "GET", "/v2/models/slow/infer", [b""]))
    assert (status, answer) == (404, {"detail": "Not Found"})  # the framework's answer
    status, _ = _answer(_call(app, "POST", "/v2/models/slow/extra/infer", [_rows([0], [1])]))
    assert status == 404
    status, answer = _answer(_call(app, "GET", "/v2/models/slow", [b""]))
    assert (status, answer["name"]) == (200, "slow")


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_a_non_finite_output_is_null_not_a_failed_request(app: Any) -> None:
    # the slow model answers each row's sum: past float32's largest, infinity
    status, answer = _answer(
        _call(app, "POST", "/v2/models/slow/infer", [_rows([0, 3e38, 3e38], [1, 3])])
    )
    assert status == 200
    assert answer["outputs"][0]["data"] == [None]


def test_errors_keep_the_bodies_of_their_protocol(app: Any) -> None:
    status, answer = _answer(_call(app, "POST", "/v2/models/nope/infer", [_rows([0], [1])]))
    assert (status, "nope" in answer["error"]) == (404, True)
    status, answer = _answer(_call(app, "POST", "/v1/embeddings", [b"[1, 2]"]))
    assert status == 422
    assert answer["error"]["type"] == "invalid_request_error"
    assert "JSON object" in answer["error"]["message"]
    status, answer = _answer(_call(app, "POST", "/v1/embeddings", [b'{"input": "a"}']))
    assert (status, answer["error"]["code"]) == (422, 422)
    assert "'model' is required" in answer["error"]["message"]
