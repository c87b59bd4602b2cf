"""What every router shares: the workspace dependency, pages, names in paths, ETags.

Model and dataset names contain ``/`` (``org/name``), so a name takes as many
path segments as it has, and what follows it comes after a ``/-/`` separator
(GitLab's convention): ``/models/org/bert/-/versions/1.0.0``. A name part
starts with a letter or digit, so ``-`` never is one and the split is never
ambiguous. The ``entity_name`` path convertor matches exactly the name rule.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, Field
from starlette.convertors import Convertor, register_url_convertor

from weightbase.workspace import Workspace

__all__ = [
    "API_PREFIX",
    "MAX_LIMIT",
    "EntityName",
    "Page",
    "etag_of",
    "not_modified",
    "page",
    "page_by_id",
    "page_by_position",
    "workspace",
]

#: Where every route of the API lives (in each router's own prefix, so that a
#: route's template, the label of its metrics, is its whole path).
API_PREFIX = "/api/v1"

#: The most items one page of any listing holds.
MAX_LIMIT = 500


class EntityName(Convertor[str]):
    """A model or dataset name in a path: ``/``-separated parts, each starting alphanumeric."""

    regex = r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("entity_name", EntityName())


async def workspace(request: Request) -> Workspace:
    """The workspace the app serves (opened when the app starts).

    ``async``, so FastAPI hands it over in the event loop, not via a worker thread.
    """
    found: Workspace = request.app.state.workspace
    return found


class Page(BaseModel):
    """One page of a listing; pass ``next`` back as the listing's cursor (null: the last page)."""

    items: list[dict[str, Any]]
    next: str | None = Field(
        description="the cursor of the next page (``after``, or ``since_id`` for logs)"
    )


def page(items: Iterable[Any], next_cursor: str | int | None) -> Page:
    """A page of records (each with ``to_dict``)."""
    return Page(
        items=[item.to_dict() for item in items],
        next=None if next_cursor is None else str(next_cursor),
    )


def page_by_id(items: Sequence[Any], limit: int, after: int | None) -> Page:
    """A page of a short listing held whole, ordered by ``id``: those after id ``after``.

    For per-entity listings that are small (a version's reports, the subscriptions);
    long ones page in the catalog's query.
    """
    rest = [item for item in items if after is None or item.id > after]
    chunk = rest[:limit]
    return page(chunk, chunk[-1].id if len(rest) > limit else None)


def page_by_position(items: Sequence[Any], limit: int, after: int | None) -> Page:
    """A page of an append-only listing held whole: the ``limit`` items after position ``after``."""
    start = after or 0
    chunk = items[start : start + limit]
    return page(chunk, start + limit if start + limit < len(items) else None)


def etag_of(data: Mapping[str, Any]) -> str:
    """A strong ETag of a record's data: any field that changes changes it."""
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return '"' + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] + '"'


def not_modified(request: Request, etag: str) -> Response | None:
    """A 304 when the request's ``If-None-Match`` names ``etag`` (or ``*``), else None."""
    header = request.headers.get("if-none-match")
    if header is None:
        return None
    tags = {part.strip().removeprefix("W/") for part in header.split(",")}
    if "*" in tags or etag in tags:
        return Response(status_code=304, headers={"ETag": etag})
    return None
