"""``/api/v1/store``: the tensor store's content, for remote workspaces to push and pull weights.

Weights travel chunk by chunk, and only the chunks the server lacks:

1. ``POST /store/missing`` with the digests a snapshot references answers which
   of them the server does not hold (and marks those it holds as fresh, so a
   garbage collection running meanwhile keeps them);
2. ``PUT /store/chunks/{digest}`` uploads one chunk's frame (``POST
   /store/chunks`` several, in one body); the server checks that the bytes hash
   to the digest and that the frame parses before it stores them, atomically: a
   chunk is whole or absent;
3. ``POST /store/snapshots`` uploads the manifest, accepted only when every
   chunk it references (delta bases included) is stored; then a push commits
   it as a version (``POST /models/{name}/-/versions``).

A crash or a dropped connection anywhere before the commit leaves content no
ref reaches: nothing a reader sees, and the store's gc removes it after its
grace period. A retry asks again which chunks are missing and sends only those.

Reads (``GET /store/objects/{key}``) serve content-addressed objects only:
chunks, snapshot manifests and the dedup index, each named by a digest, never
refs or any path a request could choose; the client verifies every chunk
against its digest as it would from a local store. Nothing here reads a path
on the server's machine.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from weightbase.api.auth import access
from weightbase.api.common import API_PREFIX, workspace
from weightbase.errors import Conflict, IntegrityError, NotFound, ValidationError
from weightbase.tensors.chunks import chunk_digest, parse_header
from weightbase.tensors.codecs import Buffer
from weightbase.tensors.manifest import Snapshot, validate_name
from weightbase.tensors.read import chunk_key
from weightbase.workspace import Workspace

__all__ = ["MAX_BATCH_BYTES", "MAX_CHUNK_BYTES", "MAX_DIGESTS", "router"]

router = APIRouter(prefix=f"{API_PREFIX}/store", tags=["store"])

Wb = Annotated[Workspace, Depends(workspace)]

#: The largest chunk frame an upload may carry: a 64 MiB chunk and its header.
MAX_CHUNK_BYTES = (64 << 20) + 4096
#: The most digests one ``missing`` question may ask about.
MAX_DIGESTS = 200_000
#: The most dedup index keys one ``POST /store/index`` asks about.
MAX_INDEX_KEYS = 10_000
#: About the most bytes of index entries one answer carries.
MAX_INDEX_ANSWER_BYTES = 16 << 20
#: The largest batch of chunks one ``POST /store/chunks`` carries.
MAX_BATCH_BYTES = 48 << 20
#: The refs clients may list, set and delete: training checkpoints; versions' refs are the
#: registry's, set by commits.
CHECKPOINT_REFS = "checkpoints/"
#: The largest manifest a snapshot upload may carry.
MAX_MANIFEST_BYTES = 32 << 20

_DIGEST = re.compile(r"[0-9a-f]{64}")
# A batch record: the digest in hex, then the frame's length.
_RECORD_HEAD = 64 + 8
_INDEX_KEY = re.compile(r"index/([0-9a-f]{2})/\1[0-9a-f]{62}")
# Content-addressed keys only: a chunk, a manifest, an index entry (never a ref).
_READABLE = re.compile(
    r"(chunks/[0-9a-f]{2}/[0-9a-f]{64}|snapshots/[0-9a-f]{64}|index/[0-9a-f]{2}/[0-9a-f]{64})"
)


class DigestsBody(BaseModel):
    """Chunk digests (64 hex digits each)."""

    digests: list[str] = Field(max_length=MAX_DIGESTS)


class MissingDigests(BaseModel):
    """Which of the asked digests the server does not hold."""

    missing: list[str]


class StoredChunk(BaseModel):
    """A chunk the server holds now."""

    digest: str
    size: int
    created: bool


class StoredSnapshot(BaseModel):
    """A snapshot manifest the server holds now (no ref reaches it until a push commits it)."""

    id: str
    tensors: int
    files: int
    nbytes: int


@router.get(
    "/objects/{key:path}",
    dependencies=[Depends(access())],
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_object(key: str, wb: Wb) -> Response:
    """A content-addressed object's bytes: a chunk frame, a snapshot manifest, an index entry."""
    if not _READABLE.fullmatch(key):
        raise ValidationError(
            "only chunks/<aa>/<digest>, snapshots/<digest> and index/<aa>/<digest> can be read",
            key=key,
        )
    try:
        data = wb.store.objects.get(key)
    except NotFound:
        raise NotFound(f"no object {key} on this server", key=key) from None
    return Response(bytes(data), media_type="application/octet-stream")


@router.post("/missing", dependencies=[Depends(access())])
def missing(body: DigestsBody, wb: Wb) -> MissingDigests:
    """The digests of ``body`` whose chunks the server lacks; the others are marked fresh."""
    for digest in body.digests:
        _check_digest(digest)
    objects = wb.store.objects
    lacking = []
    with objects.lock(exclusive=False):
        for digest in dict.fromkeys(body.digests):
            try:
                objects.touch(chunk_key(digest))
            except NotFound:
                lacking.append(digest)
    return MissingDigests(missing=lacking)


class IndexKeysBody(BaseModel):
    """Dedup index keys (``index/<aa>/<64 hex digits>``)."""

    keys: list[str] = Field(max_length=MAX_INDEX_KEYS)


class IndexEntries(BaseModel):
    """The dedup index entries the server holds among those asked: key to the entry's JSON."""

    entries: dict[str, str]


@router.post("/index", dependencies=[Depends(access())])
def index_entries(body: IndexKeysBody, wb: Wb) -> IndexEntries:
    """Several index entries in one round trip: a push looks up every large tensor's content
    at once (is it stored already, and as which chunks?). Keys the server lacks are left out,
    and so are those past ``MAX_INDEX_ANSWER_BYTES`` of answer: an index entry is a shortcut,
    and a missed one only costs the client the encoding it would have skipped."""
    for key in body.keys:
        if not _INDEX_KEY.fullmatch(key):
            raise ValidationError(f"{key!r} is not an index key (index/<aa>/<digest>)", key=key)
    found = wb.store.objects.get_many(dict.fromkeys(body.keys))
    entries = {}
    budget = MAX_INDEX_ANSWER_BYTES
    for key, data in found.items():
        budget -= len(data)
        if budget < 0:
            break
        try:
            entries[key] = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            continue  # a damaged entry is only a missed shortcut
    return IndexEntries(entries=entries)


@router.put(
    "/chunks/{digest}",
    dependencies=[Depends(access())],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def put_chunk(digest: str, request: Request, wb: Wb) -> StoredChunk:
    """Store one chunk frame, verified: its bytes must hash to ``digest`` and parse as a frame."""
    _check_digest(digest)
    frame = await _read_body(request, MAX_CHUNK_BYTES, what="chunk")
    return await run_in_threadpool(_store_chunk, wb, digest, frame)


class StoredChunks(BaseModel):
    """What a batch upload stored: chunks in it, and how many were new."""

    chunks: int
    created: int
    bytes: int


@router.post(
    "/chunks",
    dependencies=[Depends(access())],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def put_chunks(request: Request, wb: Wb) -> StoredChunks:
    """Store several chunk frames, each verified as ``PUT /chunks/{digest}`` verifies one.

    The body is a run of records, each the chunk's digest (64 ASCII hex digits), its
    frame's length (8 bytes, big-endian) and the frame. Each chunk is stored whole or
    not at all; a bad record refuses the request (422), and the chunks before it that
    were stored stay, unreferenced until a manifest names them.
    """
    body = await _read_body(request, MAX_BATCH_BYTES, what="batch of chunks")
    return await run_in_threadpool(_store_batch, wb, body)


@router.post(
    "/snapshots",
    status_code=201,
    dependencies=[Depends(access())],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def put_snapshot(request: Request, wb: Wb) -> StoredSnapshot:
    """Store a snapshot manifest once every chunk it references is stored (409 names those not)."""
    data = await _read_body(request, MAX_MANIFEST_BYTES, what="manifest")
    return await run_in_threadpool(_store_snapshot, wb, data)


class RefBody(BaseModel):
    """The snapshot a ref points at."""

    snapshot: str


class Refs(BaseModel):
    """Refs by name, each with the snapshot id it points at."""

    refs: dict[str, str]


@router.get("/refs", dependencies=[Depends(access())])
def list_refs(wb: Wb, prefix: str = "checkpoints/") -> Refs:
    """Training checkpoint refs whose names start with ``prefix`` (under ``checkpoints/``)."""
    _check_ref(prefix, what="prefix")
    return Refs(refs=wb.store.refs(prefix))


@router.put("/refs/{name:path}", dependencies=[Depends(access())])
def set_ref(name: str, body: RefBody, wb: Wb) -> Refs:
    """Point a checkpoint ref at a stored snapshot: the commit of a checkpoint written remotely."""
    _check_ref(name, what="ref")
    wb.store.set_ref(name, _check_digest(body.snapshot))
    return Refs(refs={name: body.snapshot})


@router.delete("/refs/{name:path}", status_code=204, dependencies=[Depends(access())])
def delete_ref(name: str, wb: Wb) -> Response:
    """Drop a checkpoint ref (its chunks go at the next gc unless something else holds them)."""
    _check_ref(name, what="ref")
    wb.store.delete_ref(name)
    return Response(status_code=204)


def _check_ref(name: str, *, what: str) -> None:
    if not name.startswith(CHECKPOINT_REFS):
        raise ValidationError(
            f"only checkpoint refs ({CHECKPOINT_REFS}…) can be reached over HTTP, not {name!r}",
            ref=name,
        )
    validate_name(name.rstrip("/"), what=what)


def _check_digest(digest: str) -> str:
    if not _DIGEST.fullmatch(digest):
        raise ValidationError(f"{digest!r} is not a chunk digest (64 lower-case hex digits)")
    return digest


async def _read_body(request: Request, limit: int, *, what: str) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise ValidationError(f"a {what} is at most {limit} bytes", limit=limit)
    parts = []
    received = 0
    async for part in request.stream():
        received += len(part)
        if received > limit:
            raise ValidationError(f"a {what} is at most {limit} bytes", limit=limit)
        parts.append(part)
    return b"".join(parts)


def _store_chunk(wb: Workspace, digest: str, frame: Buffer, *, sync: bool = True) -> StoredChunk:
    actual = chunk_digest(frame)
    if actual != digest:
        raise ValidationError(
            f"the uploaded bytes hash to {actual}, not {digest}: refused",
            digest=digest,
            actual=actual,
        )
    try:
        parse_header(frame)
    except (IntegrityError, ValueError) as exc:
        raise ValidationError(
            f"chunk {digest} is not a valid frame: {exc}", digest=digest
        ) from None
    objects = wb.store.objects
    key = chunk_key(digest)
    with objects.lock(exclusive=False):
        try:
            objects.touch(key)
            created = False
        except NotFound:
            objects.put(key, frame)
            created = True
    if sync:  # a batch syncs once, before it answers
        objects.sync()
    return StoredChunk(digest=digest, size=len(frame), created=created)


def _store_batch(wb: Workspace, body: bytes) -> StoredChunks:
    view = memoryview(body)
    offset = count = created = 0
    while offset < len(view):
        if len(view) - offset < _RECORD_HEAD:
            raise ValidationError(f"the batch ends inside a record header at byte {offset}")
        digest = bytes(view[offset : offset + 64]).decode("ascii", errors="replace")
        _check_digest(digest)
        size = int.from_bytes(view[offset + 64 : offset + _RECORD_HEAD], "big")
        start = offset + _RECORD_HEAD
        if size > MAX_CHUNK_BYTES or start + size > len(view):
            raise ValidationError(f"chunk {digest} says {size} bytes, past the batch's end")
        # a view, not a copy: the frame is hashed and written straight from the body
        stored = _store_chunk(wb, digest, view[start : start + size], sync=False)
        count += 1
        created += int(stored.created)
        offset = start + size
    wb.store.objects.sync()  # every name stored is durable before the answer says so
    return StoredChunks(chunks=count, created=created, bytes=len(body))


def _store_snapshot(wb: Workspace, data: bytes) -> StoredSnapshot:
    try:
        snapshot = Snapshot.from_json(data)
    except (IntegrityError, ValueError, LookupError, TypeError, AttributeError) as exc:
        raise ValidationError(f"not a snapshot manifest: {exc}") from None
    for name in snapshot.tensors:
        validate_name(name)
    for name in snapshot.files:
        validate_name(name, what="file")
    for digest in snapshot.chunk_digests():
        _check_digest(digest)
    if snapshot.parent is not None:
        _check_digest(snapshot.parent)
    objects = wb.store.objects
    with objects.lock(exclusive=False):
        lacking = []
        for digest in sorted(snapshot.chunk_digests()):
            try:
                objects.touch(chunk_key(digest))
            except NotFound:
                lacking.append(digest)
        if lacking:
            raise Conflict(
                f"{len(lacking)} chunks this manifest references are not on the server; "
                "upload them first",
                missing=lacking[:100],
            )
        if snapshot.parent is not None and not objects.exists(f"snapshots/{snapshot.parent}"):
            raise Conflict(
                f"this manifest's parent {snapshot.parent} is not on the server",
                parent=snapshot.parent,
            )
        objects.put(f"snapshots/{snapshot.id}", snapshot.to_json())
        objects.sync()
    return StoredSnapshot(
        id=snapshot.id,
        tensors=len(snapshot.tensors),
        files=len(snapshot.files),
        nbytes=snapshot.nbytes,
    )
