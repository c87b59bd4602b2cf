"""The inference server's core, free of HTTP: admit a request, answer it from the cache
or a batch of its model, record the metrics.

Each model admits ``max_concurrency`` requests in flight (more are refused, 429) and
each request waits at most ``timeout_s`` (then 504). Requests are batched per model,
operation and generation parameters, since only those can share a forward pass.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from weightbase.errors import (
    InferenceError,
    InferenceTimeoutError,
    ServerBusyError,
    ValidationError,
    WeightbaseError,
)
from weightbase.serving.ab_routing import ABRoutes, Route
from weightbase.serving.batching import Batcher, BatchStats
from weightbase.serving.cache import ResponseCache, cache_key
from weightbase.serving.kv_cache import PrefixCache
from weightbase.serving.metrics import ServerMetrics
from weightbase.serving.pool import ModelPool, ModelState
from weightbase.serving.runnable_outputs import GenerationParams
from weightbase.serving.telemetry import ServedVersion, Telemetry

if TYPE_CHECKING:
    from weightbase.monitoring.recorder import SampleRecorder
    from weightbase.serving.runnable import Runnable, Workspace
    from weightbase.serving.server_options import ServeOptions
    from weightbase.serving.streaming import StreamPiece

__all__ = [
    "OPERATIONS",
    "Answer",
    "InferenceEngine",
]

#: What a request asks of a model, and the task that can answer it.
OPERATIONS = {
    "embed": "embeddings",
    "classify": "text-classification",
    "tag": "token-classification",
    "generate": "text-generation",
    "predict": None,  # every runnable predicts
}


# batchers kept before the idle ones are dropped
_MAX_BATCHERS = 64


class Answer:
    """A request's outputs (JSON-able, one per input), whether the cache gave them, and the
    model's state."""

    __slots__ = ("cached", "model", "outputs")

    def __init__(self, outputs: list[Any], cached: bool, model: ModelState) -> None:
        self.outputs = outputs
        self.cached = cached
        self.model = model


def _jsonable(output: Any) -> Any:
    if hasattr(output, "to_dict"):
        return output.to_dict()
    if hasattr(output, "tolist"):
        return output.tolist()
    return output


class InferenceEngine:
    """The served models with their batchers, response cache and metrics."""

    def __init__(self, wb: Workspace, refs: Sequence[str], options: ServeOptions) -> None:
        self.options = options
        self.metrics = ServerMetrics()
        self.cache = ResponseCache(options.cache_bytes, options.cache_ttl_s)
        #: called with (name, "loaded" or "failed") after each load, in the load's thread
        self.load_listeners: list[Callable[[str, str], None]] = []
        #: the A/B tests served (``abtest:NAME``): a request for one goes to a variant
        self.ab_routes = ABRoutes(wb, refs, refresh_s=options.ab_refresh_s)
        self.pool = ModelPool(
            wb,
            self.ab_routes.model_refs(refs),
            memory_budget=options.memory_budget,
            device=options.device,
            retry_load_s=options.retry_load_s,
            on_load=self._on_load,
            on_evict=lambda name: self.metrics.evictions.labels(name).inc(),
        )
        # forward passes run here, off the event loop; one per model at a time
        self._executor = ThreadPoolExecutor(
            max_workers=max(2, len(self.pool.models)), thread_name_prefix="weightbase-serve"
        )
        self._batchers: dict[tuple[str, str, str], Batcher] = {}
        self._in_flight: dict[str, int] = {}
        self._prefix_caches: dict[str, PrefixCache] = {}
        self.telemetry = Telemetry()
        #: each served name's deployment (id, environment), where it serves one
        self.deployments: dict[str, tuple[str, str]] = {}
        #: the monitoring sample of requests (``sample_rate`` > 0), set by the app
        self.samples: SampleRecorder | None = None
        self._sample_targets: dict[str, str] = {}

    def _on_load(self, name: str, outcome: str) -> None:
        self._sample_targets.pop(name, None)
        self.metrics.loads.labels(name, outcome).inc()
        for listener in self.load_listeners:
            listener(name, outcome)

    def resolve(self, name: str, unit: str | None = None) -> tuple[str, Route | None]:
        """The served model that answers a request for ``name``: itself, or for an A/B
        test the variant ``unit`` is assigned to (with the route); ``NotFound`` else."""
        route = self.ab_routes.route(name, unit)
        if route is None:
            return self.pool.state(name).name, None
        return self.pool.state(route.ref).name, route

    def sample_target(self, name: str) -> str | None:
        """What a sample of ``name``'s requests is filed under: its deployment where it
        serves one, else its ``model@version`` (``None`` before it has loaded)."""
        found = self._sample_targets.get(name)
        if found is not None:
            return found
        deployment = self.deployments.get(name)
        if deployment is not None:
            found = deployment[0]
        else:
            runnable = self.pool.state(name).runnable
            version = getattr(runnable, "version", None)
            if version is None:
                return None
            found = f"{version.model}@{version.version}"
        self._sample_targets[name] = found  # until the model loads again
        return found

    async def close(self) -> None:
        for batcher in self._batchers.values():
            await batcher.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def infer(
        self,
        name: str,
        operation: str,
        inputs: list[Any],
        params: GenerationParams | None = None,
    ) -> Answer:
        """``operation`` of the model served as ``name`` on ``inputs``, batched and cached."""
        model = self._admit(name)
        try:
            # a deadline on this task, not a task of its own as asyncio.wait_for would make
            async with asyncio.timeout(self.options.timeout_s):
                return await self._answer(model.name, operation, inputs, params)
        except TimeoutError:
            self.metrics.rejected.labels(model.name, "timeout").inc()
            raise InferenceTimeoutError(
                f"model {model.name} did not answer within {self.options.timeout_s:g} s",
                model=model.name,
            ) from None
        finally:
            self._in_flight[model.name] -= 1

    def _admit(self, name: str) -> ModelState:
        """Count a request in flight for ``name``; ``ServerBusyError`` past ``max_concurrency``."""
        model = self.pool.state(name)
        in_flight = self._in_flight.get(model.name, 0)
        if in_flight >= self.options.max_concurrency:
            self.metrics.rejected.labels(model.name, "busy").inc()
            raise ServerBusyError(
                f"model {model.name} has {in_flight} requests in flight; try again shortly",
                model=model.name,
            )
        self._in_flight[model.name] = in_flight + 1
        return model

    async def stream(
        self, name: str, prompts: list[str], params: GenerationParams
    ) -> AsyncGenerator[tuple[int, StreamPiece], None]:
        """Each prompt's continuation as it is generated: ``(prompt index, piece)``.

        Admitted and timed out as ``infer`` is, until the first piece (then the answer
        has begun); not batched, not cached. The caller iterates it to its end or closes it.
        """
        model = self._admit(name)
        try:
            _, runnable = await asyncio.wait_for(self.pool.get(name), self.options.timeout_s)
            _check_operation(model, runnable, "generate")
            self._served(model, runnable)
            pieces = self._pieces(model.name, runnable, prompts, params)
            first = await asyncio.wait_for(anext(pieces), self.options.timeout_s)
        except TimeoutError:
            self._in_flight[model.name] -= 1
            self.metrics.rejected.labels(model.name, "timeout").inc()
            raise InferenceTimeoutError(
                f"model {model.name} did not answer within {self.options.timeout_s:g} s",
                model=model.name,
            ) from None
        except BaseException:
            self._in_flight[model.name] -= 1
            raise

        async def rest() -> AsyncGenerator[tuple[int, StreamPiece], None]:
            try:
                yield first
                async for piece in pieces:
                    yield piece
            finally:
                await pieces.aclose()
                self._in_flight[model.name] -= 1

        return rest()

    async def _pieces(
        self, name: str, runnable: Runnable, prompts: list[str], params: GenerationParams
    ) -> AsyncGenerator[tuple[int, StreamPiece], None]:
        from weightbase.serving.streaming import stream_generation

        prefix_cache = self.prefix_cache(name)
        for index, prompt in enumerate(prompts):
            started = time.perf_counter()
            generation = stream_generation(
                runnable, prompt, params, executor=self._executor, prefix_cache=prefix_cache
            )
            try:
                async for piece in generation:
                    if piece.finish_reason is not None:
                        self.record_tokens(name, piece.tokens, time.perf_counter() - started)
                        self.telemetry.operation(name, "generate", params, piece.tokens)
                    yield index, piece
            finally:
                await generation.aclose()

    async def runnable(self, name: str) -> tuple[ModelState, Runnable]:
        """The model served as ``name``, loaded."""
        return await self.pool.get(name)

    async def _answer(
        self, name: str, operation: str, inputs: list[Any], params: GenerationParams | None
    ) -> Answer:
        model, runnable = await self.pool.get(name)
        _check_operation(model, runnable, operation)
        self._served(model, runnable)
        params_key = json.dumps(params.to_dict(), sort_keys=True) if params is not None else ""
        # sampling without a seed gives a new text each time: nothing to keep
        cacheable = self.options.cache_bytes > 0 and not (
            params is not None and params.sampling and params.seed is None
        )
        key = ""
        if cacheable:
            try:
                key = cache_key(runnable.version.snapshot_id, operation, inputs, params_key)
            except (TypeError, ValueError):
                cacheable = False  # inputs that are not JSON (never from HTTP)
        if cacheable:
            found, value = self.cache.get(key)
            self.telemetry.cache(model.name, found)
            if found:
                self.metrics.cache_hits.labels(model.name).inc()
                self.telemetry.operation(model.name, operation, params)
                return Answer(list(value), True, model)
            self.metrics.cache_misses.labels(model.name).inc()
        batcher = self._batcher(model.name, operation, params, params_key)
        try:
            answered = await batcher.submit([(runnable, item) for item in inputs])
        except WeightbaseError:
            raise
        except Exception as exc:  # the model's own code: every request of its batch is told
            raise InferenceError(
                f"model {model.name} failed: {type(exc).__name__}: {exc}", model=model.name
            ) from exc
        outputs = [_jsonable(output) for output in answered]
        if cacheable:
            self.cache.put(key, outputs)
        tokens = sum(output["tokens"] for output in outputs) if operation == "generate" else 0
        self.telemetry.operation(model.name, operation, params, tokens)
        return Answer(outputs, False, model)

    def _served(self, model: ModelState, runnable: Runnable) -> None:
        """Tell the telemetry which version ``model`` answers with (after each load)."""
        version = runnable.version
        deployment = self.deployments.get(model.name)
        self.telemetry.served(
            model.name,
            ServedVersion(
                version.model,
                version.version,
                model.bytes,
                None if deployment is None else deployment[0],
                None if deployment is None else deployment[1],
            ),
        )

    def prefix_cache(self, name: str) -> PrefixCache | None:
        """The key/value prefix cache of the generation model served as ``name``."""
        if self.options.kv_prefix_cache <= 0:
            return None
        found = self._prefix_caches.get(name)
        if found is None:

            def on_lookup(hit: bool, tokens: int) -> None:
                (self.metrics.kv_prefix_hits if hit else self.metrics.kv_prefix_misses).labels(
                    name
                ).inc()
                self.metrics.kv_prefix_tokens.labels(name).inc(tokens)
                self.telemetry.kv_prefix(name, hit)

            found = PrefixCache(self.options.kv_prefix_cache, on_lookup=on_lookup)
            self._prefix_caches[name] = found
        return found

    def _batcher(
        self, name: str, operation: str, params: GenerationParams | None, params_key: str
    ) -> Batcher:
        key = (name, operation, params_key)
        batcher = self._batchers.get(key)
        if batcher is None:
            if len(self._batchers) >= _MAX_BATCHERS:
                self._drop_idle_batchers()

            prefix_cache = self.prefix_cache(name) if operation == "generate" else None

            def run(items: list[tuple[Runnable, Any]]) -> list[Any]:
                # each input travels with the runnable its request got, so an evicted
                # model is held only while its requests wait (a reload makes another)
                outputs: list[Any] = []
                at = 0
                while at < len(items):
                    runnable = items[at][0]
                    end = at
                    while end < len(items) and items[end][0] is runnable:
                        end += 1
                    inputs = [item for _, item in items[at:end]]
                    started = time.perf_counter()
                    done = _run(runnable, operation, inputs, params, prefix_cache)
                    if operation == "generate":
                        tokens = sum(output.tokens for output in done)
                        self.record_tokens(name, tokens, time.perf_counter() - started)
                    outputs.extend(done)
                    at = end
                return outputs

            def on_batch(stats: BatchStats, queue_times: list[float]) -> None:
                self._record_batch(name, operation, stats, queue_times)

            batcher = Batcher(
                run,
                executor=self._executor,
                batch_size=self.options.batch_size,
                max_wait_ms=self.options.max_wait_ms,
                # generation is never short enough to hold the loop for
                inline_below_ms=0.0 if operation == "generate" else self.options.inline_below_ms,
                on_batch=on_batch,
            )
            self._batchers[key] = batcher
        return batcher

    def _drop_idle_batchers(self) -> None:
        """Stop the batchers nothing is waiting on: each set of generation parameters
        (every seed) has its own, which would otherwise pile up."""
        for key, batcher in list(self._batchers.items()):
            if batcher.idle:
                batcher.stop()
                del self._batchers[key]

    def _record_batch(
        self, name: str, operation: str, stats: BatchStats, queue_times: list[float]
    ) -> None:
        self.metrics.batch_size.labels(name).observe(stats.inputs)
        for waited in queue_times:
            self.metrics.queue_time.labels(name).observe(waited)

    def record_tokens(self, name: str, tokens: int, seconds: float) -> None:
        """Count generated tokens and their rate."""
        self.metrics.tokens.labels(name).inc(tokens)
        self.telemetry.tokens(name, tokens, seconds)
        if seconds > 0 and tokens > 0:
            self.metrics.tokens_per_second.labels(name).observe(tokens / seconds)

    def observe(self, name: str, endpoint: str, status: int, started: float) -> None:
        """Record a request's latency."""
        seconds = time.perf_counter() - started
        self.metrics.latency.labels(name, endpoint, str(status)).observe(seconds)
        self.telemetry.request(name, status, seconds)


def _check_operation(model: ModelState, runnable: Runnable, operation: str) -> None:
    task = OPERATIONS[operation]
    if task is not None and runnable.task != task:
        raise ValidationError(
            f"model {model.name} serves {runnable.task}, not {task}",
            model=model.name,
            task=runnable.task,
        )


def _run(
    runnable: Runnable,
    operation: str,
    inputs: list[Any],
    params: GenerationParams | None,
    prefix_cache: PrefixCache | None = None,
) -> list[Any]:
    if operation == "generate":
        from weightbase.serving.runnable_hf import GeneratorRunnable

        if prefix_cache is not None and isinstance(runnable, GeneratorRunnable):
            return list(runnable.generate(inputs, params, prefix_cache=prefix_cache))
        return list(runnable.generate(inputs, params))  # type: ignore[attr-defined]
    if operation == "embed":
        counted = getattr(runnable, "embed_counted", None)
        if counted is None:
            vectors = runnable.embed(inputs)  # type: ignore[attr-defined]
            counts = [0] * len(inputs)
        else:
            vectors, counts = counted(inputs)
        return [
            {"embedding": vector.tolist(), "tokens": count}
            for vector, count in zip(vectors, counts, strict=True)
        ]
    if operation == "classify":
        return list(runnable.classify(inputs))  # type: ignore[attr-defined]
    if operation == "tag":
        return [[tag.to_dict() for tag in tags] for tags in runnable.tag(inputs)]  # type: ignore[attr-defined]
    return list(runnable.predict(inputs))
