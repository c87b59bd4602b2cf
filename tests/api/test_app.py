"""The app around the routers: the one error body, request ids, limits, probes, metrics, OpenAPI."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from sqlalchemy import exc as sa_exc
from tests.api.support import MODEL, Server, assert_error

import weightbase.api
from weightbase.api.app import _factory, _readiness
from weightbase.config import Settings
from weightbase.errors import IntegrityError, MissingExtraError, NotFound, StorageError

_FAILURES: dict[str, BaseException] = {
    "bug": RuntimeError("secret internals /etc/passwd"),
    "integrity": IntegrityError("chunk abc does not match its digest", digest="abc"),
    "storage": StorageError("the bucket did not answer"),
    "driver": sa_exc.OperationalError("SELECT 1", {}, Exception("database is locked")),
    "extra": MissingExtraError("needs torch", extra="torch"),
    "context": NotFound("no such thing", things={"a", "b"}, where=object()),
}


@pytest.fixture(scope="module")
def failing(server: Server) -> Iterator[None]:
    """A route that raises what the test names (left out of the OpenAPI document)."""

    def fail(kind: str) -> None:
        raise _FAILURES[kind]

    server.app.add_api_route("/api/v1/test-failure/{kind}", fail, include_in_schema=False)
    yield
    server.app.router.routes[:] = [
        route for route in server.app.router.routes if getattr(route, "endpoint", None) is not fail
    ]


@pytest.mark.usefixtures("failing")
@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        ("bug", 500, "internal_error"),
        ("integrity", 500, "integrity_error"),
        ("storage", 503, "unavailable"),
        ("driver", 503, "unavailable"),
        ("extra", 501, "not_available"),
    ],
)
def test_failures_map_to_one_body_without_tracebacks(
    editor: httpx.Client, kind: str, status: int, error_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = editor.get(f"/test-failure/{kind}")
    error = assert_error(response, status, error_type)
    assert "secret internals" not in response.text
    if kind == "bug":
        assert error["request_id"] in error["message"]
        logged = [record for record in caplog.records if error["request_id"] in record.getMessage()]
        assert logged
        assert logged[0].exc_info is not None
    if kind == "driver":
        assert "locked" not in response.text


@pytest.mark.usefixtures("failing")
def test_context_values_become_plain_json(editor: httpx.Client) -> None:
    error = assert_error(editor.get("/test-failure/context"), 404, "not_found")
    assert sorted(error["context"]["things"]) == ["a", "b"]
    assert error["context"]["where"].startswith("<object")


def test_unknown_routes_and_methods_use_the_body(editor: httpx.Client, root: httpx.Client) -> None:
    assert_error(root.get("/nowhere"), 404, "not_found")
    assert_error(editor.put(f"/models/{MODEL}"), 405, "method_not_allowed")


def test_malformed_json_is_400(editor: httpx.Client) -> None:
    response = editor.post(
        "/runs", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "bad_request")


def test_request_ids_are_echoed_or_made(root: httpx.Client) -> None:
    given = root.get("/healthz", headers={"X-Request-ID": "trace-123:abc"})
    assert given.headers["x-request-id"] == "trace-123:abc"
    made = root.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    unsafe = root.get("/healthz", headers={"X-Request-ID": "x" * 200})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])
    error = root.get("/nowhere", headers={"X-Request-ID": "mine"})
    assert error.json()["error"]["request_id"] == "mine"


def test_bodies_over_the_limit_are_413(editor: httpx.Client) -> None:
    big = b"[" + b"0," * 600_000 + b"0]"
    declared = editor.post("/runs", content=big, headers={"Content-Type": "application/json"})
    assert_error(declared, 413, "too_large")

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 100_000

    streamed = editor.post("/runs", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(streamed, 413, "too_large")


def test_probes(root: httpx.Client) -> None:
    assert root.get("/healthz").json() == {"status": "ok"}
    ready = root.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"catalog": "ok", "store": "ok"}}


class _Broken:
    def session(self) -> Any:
        raise StorageError("the catalog is down")

    def exists(self, key: str) -> bool:
        raise OSError("the disk is gone")


def test_readyz_is_503_when_a_part_does_not_answer(server: Server, root: httpx.Client) -> None:
    broken = SimpleNamespace(catalog=_Broken(), store=SimpleNamespace(objects=_Broken()))
    assert _readiness(broken) == {  # type: ignore[arg-type]
        "catalog": "unavailable: StorageError",
        "store": "unavailable: OSError",
    }
    opened = server.app.state.workspace
    server.app.state.workspace = broken
    try:
        error = assert_error(root.get("/readyz"), 503, "unavailable")
    finally:
        server.app.state.workspace = opened
    assert error["context"]["checks"]["catalog"].startswith("unavailable")


def _count(text: str, route: str, status: str) -> float:
    pattern = (
        r'^weightbase_http_requests_total\{method="GET",route="'
        + re.escape(route)
        + r'",status="'
        + status
        + r'"\} ([0-9.e+]+)$'
    )
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_requests_by_route_template_and_status(
    editor: httpx.Client, root: httpx.Client
) -> None:
    route = "/api/v1/models/{model}"
    before = root.get("/metrics").text
    editor.get(f"/models/{MODEL}")
    editor.get("/models/zoo/model-1")
    editor.get("/models/org/missing")
    root.get("/not/a/route")
    after = root.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    assert _count(after.text, route, "200") == _count(before, route, "200") + 2
    assert _count(after.text, route, "404") == _count(before, route, "404") + 1
    assert _count(after.text, "<unmatched>", "404") >= 1
    assert "weightbase_http_request_duration_seconds_bucket" in after.text


def test_openapi_lists_every_route(server: Server, root: httpx.Client) -> None:
    document = root.get("/api/v1/openapi.json").json()
    listed = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    every = [*server.app.router.routes]
    # every module of weightbase.api with a router: a new router is checked without listing it
    package = weightbase.api
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            every += router.routes
    routes = {
        (re.sub(r":[a-z_]+\}", "}", route.path), method)
        for route in every
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods
    }
    assert listed == routes
    assert ("/api/v1/runs/{run_id}/metrics", "POST") in listed
    assert len([path for path in listed if path[0].startswith("/api/v1/")]) >= 30
    assert "ErrorBody" in document["components"]["schemas"]
    assert root.get("/api/v1/docs").status_code == 200


def test_an_app_on_settings_opens_that_workspace(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path / "home")
    opened = _factory(settings)()
    try:
        assert opened.catalog.url == settings.catalog_url
    finally:
        opened.close()


def test_model_names_build_paths_back(server: Server) -> None:
    path = server.app.url_path_for("get_model", model="org/sub/name")
    assert path == "/api/v1/models/org/sub/name"


def test_values_the_catalog_cannot_hold_are_422_not_500(admin: httpx.Client) -> None:
    big = "9" * 25  # past any 64-bit integer column
    for method, path, params in [
        ("GET", "/audit", {"since_id": big}),
        ("GET", "/events", {"since_id": big}),
        ("GET", f"/runs/{big}", {}),
        ("GET", f"/runs/{big}/metrics", {}),
        ("DELETE", f"/webhooks/{big}", {}),
        ("GET", f"/approvals/{big}", {}),
    ]:
        response = admin.request(method, path, params=params)
        assert_error(response, 422, "validation_error")
    with_nul = admin.get("/audit", params={"actor": "a\x00b"})
    assert with_nul.status_code in (200, 422), with_nul.text  # SQLite stores NUL; PostgreSQL not
