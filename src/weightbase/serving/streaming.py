"""Token-by-token generation for streamed completions: each new piece of text as soon as
the model has produced its token.

A streamed request runs on its own (not batched, not cached) in a worker thread; the
text matches what ``GeneratorRunnable.generate`` gives for the same prompt and
parameters: special tokens left out, ended at the end-of-text token, before the first
stop string (a piece that could begin one is held back until it cannot), or at
``max_tokens``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from weightbase.serving.kv_cache import cache_keyword, cache_of
from weightbase.serving.loading import require_torch
from weightbase.serving.runnable_outputs import GenerationParams

if TYPE_CHECKING:
    from weightbase.serving.kv_cache import PrefixCache

__all__ = ["StreamPiece", "stream_generation"]


@dataclass(frozen=True, slots=True)
class StreamPiece:
    """New text; the last piece has ``finish_reason`` and the count of tokens kept."""

    text: str
    finish_reason: str | None = None
    tokens: int = 0


class _Streamer:
    """transformers' streamer interface: generate hands it the prompt, then each token."""

    def __init__(self, on_token: Any) -> None:
        self._on_token = on_token
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # the first call carries the prompt's ids
            self._prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self._on_token(int(token))

    def end(self) -> None:
        pass


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many characters at the end of ``text`` could be the start of a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


async def stream_generation(
    runnable: Any,
    prompt: str,
    params: GenerationParams,
    *,
    executor: Any = None,
    prefix_cache: PrefixCache | None = None,
) -> AsyncGenerator[StreamPiece, None]:
    """The continuation of ``prompt`` by the text-generation ``runnable``, piece by piece,
    from the keys and values of a prefix it shares with a recent prompt where
    ``prefix_cache`` holds one."""
    torch = require_torch()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[StreamPiece | BaseException] = asyncio.Queue()
    stop_now = threading.Event()
    tokenizer, model = runnable.tokenizer, runnable.model
    eos = model.generation_config.eos_token_id
    ends = {eos} if isinstance(eos, int) else set(eos or ())
    kept: list[int] = []
    sent = [0]  # characters of the text already sent

    def decode() -> str:
        return str(tokenizer.decode(kept, skip_special_tokens=True))

    def emit(piece: StreamPiece) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, piece)

    def finish(reason: str, text: str) -> None:
        stop_now.set()
        emit(StreamPiece(text[sent[0] :], reason, len(kept)))

    def on_token(token: int) -> None:
        if stop_now.is_set():
            return
        if token in ends:
            finish("stop", decode())
            return
        kept.append(token)
        text = decode()
        cut = min((i for i in (text.find(s) for s in params.stop) if i >= 0), default=None)
        if cut is not None:
            # the tokens wholly before the stop string, as generate counts them
            while kept and len(str(tokenizer.decode(kept, skip_special_tokens=True))) > cut:
                kept.pop()
            finish("stop", text[:cut])
            return
        ready = len(text) - _held_back(text, params.stop)
        if ready > sent[0]:
            emit(StreamPiece(text[sent[0] : ready]))
            sent[0] = ready

    class _Stop:
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), stop_now.is_set(), dtype=torch.bool)

    def run() -> None:
        try:
            from transformers import StoppingCriteriaList

            ids = runnable.prompt_ids(prompt)
            input_ids = torch.tensor([ids], device=runnable.device)
            options = runnable.generation_options(params)
            if prefix_cache is not None:
                _, cache = prefix_cache.lookup(ids)
                if cache is not None:
                    options[cache_keyword(model)] = cache
            with torch.inference_mode():
                output = model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    pad_token_id=tokenizer.pad_token_id,
                    streamer=_Streamer(on_token),
                    stopping_criteria=StoppingCriteriaList([_Stop()]),
                    return_dict_in_generate=True,
                    **options,
                )
            if prefix_cache is not None:
                prefix_cache.store(ids, cache_of(output))
            if not stop_now.is_set():
                finish("length", decode())
        except BaseException as exc:  # handed to the request, which ends its stream
            stop_now.set()
            loop.call_soon_threadsafe(queue.put_nowait, exc)

    future = loop.run_in_executor(executor, run)
    try:
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if item.finish_reason is not None:
                break
    finally:
        stop_now.set()  # a client that went away stops the generation
        await asyncio.shield(future)
