"""The OpenAI-compatible endpoints: ``/v1/models``, ``/v1/embeddings``, ``/v1/completions``
and ``/v1/chat/completions`` (streamed as server-sent events with ``stream: true``).

A chat's prompt is built with the tokenizer's chat template where it has one, else as
``role: content`` lines followed by ``assistant:``. Unlike OpenAI, ``temperature``
defaults to 0 (greedy, repeatable, cacheable). A streamed
answer is sent token by token as it is generated (not batched, not cached).
"""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from weightbase.errors import ValidationError
from weightbase.serving.app import read_body
from weightbase.serving.engine import InferenceEngine
from weightbase.serving.runnable_outputs import GenerationParams
from weightbase.serving.streaming import StreamPiece

__all__ = ["chat_prompt", "embeddings_answer", "model_name", "router"]

router = APIRouter(prefix="/v1")

_ROLES = ("system", "user", "assistant", "tool", "developer")


def _engine(request: Request) -> InferenceEngine:
    engine: InferenceEngine = request.app.state.engine
    return engine


def _model(request: Request, body: dict[str, Any], endpoint: str) -> str:
    """The served model answering ``body``'s ``model`` (for an A/B test, the unit's variant,
    whose headers go on the answer); ``NotFound``: 404."""
    user = body.get("user")
    unit = request.headers.get("x-weightbase-unit") or (
        user if isinstance(user, str) and user else None
    )
    served, route = _engine(request).resolve(model_name(body), unit)
    request.state.model, request.state.endpoint = served, endpoint
    request.state.route_headers = {} if route is None else route.headers()
    return served


def _texts(body: dict[str, Any], field: str) -> list[str]:
    value = body.get(field)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return list(value)
    raise ValidationError(
        f"'{field}' is required: a string or a non-empty list of strings", field=field
    )


@router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "weightbase", "ref": model.ref}
        for name, model in _engine(request).pool.models.items()
    ]
    return {"object": "list", "data": data}


async def embeddings_answer(
    engine: InferenceEngine, name: str, body: dict[str, Any]
) -> dict[str, Any]:
    """The answer of ``POST /v1/embeddings`` with ``body`` for the model served as ``name``
    (served by :mod:`weightbase.serving.hot_routes`, without the web framework)."""
    texts = _texts(body, "input")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise ValidationError(
            "'encoding_format' must be 'float' or 'base64'", field="encoding_format"
        )
    answer = await engine.infer(name, "embed", texts)
    data = []
    for index, output in enumerate(answer.outputs):
        embedding: Any = output["embedding"]
        if encoding == "base64":  # what the openai client asks for by default
            embedding = base64.b64encode(np.asarray(embedding, dtype="<f4").tobytes()).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    # counted as the model read them, in the batch: no second tokenization here
    tokens = sum(output["tokens"] for output in answer.outputs)
    return {
        "object": "list",
        "data": data,
        "model": name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def model_name(body: dict[str, Any]) -> str:
    """The request's ``model``: a non-empty string, else a ``ValidationError``."""
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise ValidationError("'model' is required: the name of a served model", field="model")
    return name


@router.post("/completions", response_model=None)
async def completions(request: Request) -> Any:
    body = await read_body(request)
    name = _model(request, body, "/v1/completions")
    prompts = _texts(body, "prompt")
    return await _complete(request, name, prompts, body, chat=False)


@router.post("/chat/completions", response_model=None)
async def chat_completions(request: Request) -> Any:
    body = await read_body(request)
    name = _model(request, body, "/v1/chat/completions")
    messages = _messages(body.get("messages"))
    _, runnable = await _engine(request).runnable(name)
    prompt = chat_prompt(getattr(runnable, "tokenizer", None), messages)
    return await _complete(request, name, [prompt], body, chat=True)


def chat_prompt(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    """The prompt of a chat: the tokenizer's chat template, else ``role: content`` lines."""
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return str(
            tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=True
            )
        )
    lines = [f"{message['role']}: {message['content']}" for message in messages]
    return "\n".join([*lines, "assistant:"])


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ValidationError("'messages' is required: a non-empty list", field="messages")
    out = []
    for index, message in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise ValidationError(f"'{where}' must be an object", field=where)
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES:
            raise ValidationError(
                f"'{where}.role' must be one of {', '.join(_ROLES)}", field=f"{where}.role"
            )
        if isinstance(content, list):  # content parts: the text ones, joined
            parts = [p.get("text") for p in content if isinstance(p, dict)]
            content = "".join(p for p in parts if isinstance(p, str))
        if not isinstance(content, str):
            raise ValidationError(f"'{where}.content' must be a string", field=f"{where}.content")
        out.append({"role": role, "content": content})
    return out


def _params(body: dict[str, Any]) -> GenerationParams:
    def number(field: str, kind: type, default: Any) -> Any:
        value = body.get(field, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"'{field}' must be a number", field=field)
        if not math.isfinite(value):
            raise ValidationError(f"'{field}' must be a finite number", field=field)
        if kind is int and value != int(value):
            raise ValidationError(f"'{field}' must be an integer", field=field)
        return kind(value)

    if body.get("n", 1) not in (1, None):
        raise ValidationError("'n' must be 1: one choice per prompt", field="n")
    stop = body.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    if not isinstance(stop, list | tuple) or not all(isinstance(s, str) for s in stop):
        raise ValidationError("'stop' must be a string or a list of strings", field="stop")
    tokens_field = "max_tokens"
    if body.get("max_completion_tokens") is not None:  # the newer name wins
        tokens_field = "max_completion_tokens"
    try:
        return GenerationParams(
            temperature=number("temperature", float, 0.0),
            top_k=number("top_k", int, None),
            top_p=number("top_p", float, None),
            max_tokens=number(tokens_field, int, 16),
            stop=tuple(stop),
            seed=number("seed", int, None),
        )
    except ValidationError as exc:
        raise ValidationError(str(exc), field="sampling") from None


async def _complete(
    request: Request, name: str, prompts: list[str], body: dict[str, Any], *, chat: bool
) -> Any:
    engine = _engine(request)
    params = _params(body)
    ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if body.get("stream", False) is True:
        pieces = await engine.stream(name, prompts, params)
        events = _stream(ident, created, name, pieces, chat=chat)
        headers = {"Cache-Control": "no-cache", **request.state.route_headers}
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    answer = await engine.infer(name, "generate", prompts, params)
    prompt_tokens = _count_tokens(engine, name, prompts)
    completion_tokens = sum(int(output["tokens"]) for output in answer.outputs)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    choices: list[dict[str, Any]] = []
    for index, output in enumerate(answer.outputs):
        choice: dict[str, Any] = {"index": index, "finish_reason": output["finish_reason"]}
        if chat:
            choice["message"] = {"role": "assistant", "content": output["text"]}
        else:
            choice.update(text=output["text"], logprobs=None)
        choices.append(choice)
    payload = {
        "id": ident,
        "object": "chat.completion" if chat else "text_completion",
        "created": created,
        "model": name,
        "choices": choices,
        "usage": usage,
    }
    headers = {"X-Weightbase-Cache": _hit(answer.cached), **request.state.route_headers}
    return JSONResponse(payload, headers=headers)


async def _stream(
    ident: str,
    created: int,
    name: str,
    pieces: AsyncGenerator[tuple[int, StreamPiece], None],
    *,
    chat: bool,
) -> AsyncIterator[str]:
    """Server-sent events: each piece of text as it is generated, each prompt's finish,
    then [DONE]."""
    kind = "chat.completion.chunk" if chat else "text_completion"

    def event(index: int, piece: str | None, finish: str | None) -> str:
        choice: dict[str, Any] = {"index": index, "finish_reason": finish}
        if chat:
            delta: dict[str, Any] = {} if piece is None else {"content": piece}
            if piece == "":
                delta["role"] = "assistant"
            choice["delta"] = delta
        else:
            choice.update(text=piece or "", logprobs=None)
        chunk = {"id": ident, "object": kind, "created": created, "model": name}
        chunk["choices"] = [choice]
        return f"data: {json.dumps(chunk)}\n\n"

    started: set[int] = set()
    try:
        async for index, piece in pieces:
            if chat and index not in started:
                started.add(index)
                yield event(index, "", None)
            if piece.text:
                yield event(index, piece.text, None)
            if piece.finish_reason is not None:
                yield event(index, None, piece.finish_reason)
    finally:
        await pieces.aclose()
    yield "data: [DONE]\n\n"


def _hit(cached: bool) -> str:
    return "hit" if cached else "miss"


def _count_tokens(engine: InferenceEngine, name: str, texts: list[str]) -> int:
    state = engine.pool.state(name)
    tokenizer = getattr(state.runnable, "tokenizer", None)
    if tokenizer is None:
        return 0
    return sum(len(ids) for ids in tokenizer(texts)["input_ids"])
