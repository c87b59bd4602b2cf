"""What the API tests share: the seeded names, the tokens, and the check of the error body."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from weightbase.workspace import Workspace

MODEL = "org/bert-tiny"
DATASET = "org/digits"
OWNED = "org/owned"
ROLES = ("viewer", "editor", "approver", "admin")


@dataclass
class Server:
    """The running server: its URL, its app, a token per role, and a handle on its workspace."""

    url: str
    app: FastAPI
    tokens: dict[str, str]
    wb: Workspace
    home: Path


def assert_error(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    """The one error body, with this status and type, and no traceback; its ``error``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"type", "message", "request_id", "context"}
    assert error["type"] == error_type, error
    assert error["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return dict(error)
