"""The models one inference server serves: loaded on first request, evicted least
recently used when their estimated bytes pass the memory budget.

A model that fails to load keeps its error (shown on ``/readyz`` and in its metadata)
and is tried again only after ``retry_load_s``, so a broken model never loops.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from weightbase.errors import ModelUnavailableError, NotFound, ValidationError

if TYPE_CHECKING:
    from weightbase.serving.runnable import Runnable, Workspace

__all__ = ["REACTOR_PREFIX", "ModelPool", "ModelState", "estimate_bytes", "served_names"]

#: How a served ref names a fusion reactor rather than a model version: ``reactor:NAME``.
REACTOR_PREFIX = "reactor:"


@dataclass(slots=True)
class ModelState:
    """One served model: its ref, and its runnable or the error that kept it from loading."""

    name: str
    ref: str
    runnable: Runnable | None = None
    bytes: int = 0
    error: str | None = None
    failed_at: float = 0.0
    last_used: float = 0.0
    loads: int = 0

    @property
    def state(self) -> str:
        """``loaded``, ``failed`` or ``unloaded`` (not asked for yet, or evicted)."""
        if self.runnable is not None:
            return "loaded"
        return "failed" if self.error is not None else "unloaded"


def served_names(refs: Sequence[str]) -> dict[str, str]:
    """The name each ref is served as: its model's name, or the whole ref where two refs
    name one model."""
    if not refs:
        raise ValidationError("give at least one model to serve (NAME@ALIAS or NAME@VERSION)")
    # a fusion reactor (reactor:NAME) is served as its name
    names = [ref.removeprefix(REACTOR_PREFIX).split("@", 1)[0] for ref in refs]
    out: dict[str, str] = {}
    for ref, name in zip(refs, names, strict=True):
        served = ref if names.count(name) > 1 else name
        if served in out:
            raise ValidationError(f"{ref} is given twice", ref=ref)
        out[served] = ref
    return out


def estimate_bytes(runnable: Runnable) -> int:
    """The bytes a runnable holds: its torch parameters and buffers (0 where it has none)."""
    model = getattr(runnable, "model", None)
    if model is None:
        model = getattr(runnable, "module", None)
    total = 0
    for method in ("parameters", "buffers"):
        tensors = getattr(model, method, None)
        if callable(tensors):
            total += sum(t.numel() * t.element_size() for t in tensors())
    # a predict function's weights are handed to it as a keyword
    weights = getattr(runnable, "keywords", {}).get("weights")
    if isinstance(weights, dict):
        total += sum(t.numel() * t.element_size() for t in weights.values() if hasattr(t, "numel"))
    return int(total)


class ModelPool:
    """The served models by name; ``get(name)`` loads on first use, in a worker thread."""

    def __init__(
        self,
        wb: Workspace,
        refs: Sequence[str],
        *,
        memory_budget: int,
        device: str,
        retry_load_s: float,
        on_load: Callable[[str, str], None] | None = None,
        on_evict: Callable[[str], None] | None = None,
        load: Callable[..., Runnable] | None = None,
    ) -> None:
        from weightbase.serving.runnable import load_runnable

        self._wb = wb
        self.models = {name: ModelState(name, ref) for name, ref in served_names(refs).items()}
        self._budget = memory_budget
        self._device = device
        self._retry = retry_load_s
        self._on_load = on_load
        self._on_evict = on_evict
        self._load = load or load_runnable
        self._locks: dict[str, asyncio.Lock] = {}
        self._mutex = threading.Lock()

    def state(self, name: str) -> ModelState:
        """The model served as ``name`` (also its full ref); ``NotFound`` otherwise."""
        found = self.models.get(name)
        if found is None:
            found = next((m for m in self.models.values() if m.ref == name), None)
        if found is None:
            raise NotFound(f"no model {name!r} is served here", model=name)
        return found

    @property
    def loaded_bytes(self) -> int:
        return sum(m.bytes for m in self.models.values() if m.runnable is not None)

    async def get(self, name: str) -> tuple[ModelState, Runnable]:
        """The model and its runnable, loaded now if it is not; ``ModelUnavailableError`` when
        it failed to load (recently)."""
        model = self.state(name)
        lock = self._locks.setdefault(model.name, asyncio.Lock())
        async with lock:
            if model.runnable is None:
                if model.error is not None and time.monotonic() - model.failed_at < self._retry:
                    raise ModelUnavailableError(
                        f"model {model.name} failed to load: {model.error}", model=model.name
                    )
                await asyncio.to_thread(self._load_now, model)
            runnable = model.runnable
            if runnable is None:
                raise ModelUnavailableError(
                    f"model {model.name} failed to load: {model.error}", model=model.name
                )
            model.last_used = time.monotonic()
            return model, runnable

    def _load_now(self, model: ModelState) -> None:
        try:
            runnable = self._load(self._wb, model.ref, device=self._device)
        except Exception as exc:  # the server stays up and reports it
            model.error = f"{type(exc).__name__}: {exc}"
            model.failed_at = time.monotonic()
            if self._on_load is not None:
                self._on_load(model.name, "failed")
            return
        with self._mutex:
            model.runnable, model.error = runnable, None
            model.bytes = estimate_bytes(runnable)
            model.loads += 1
            model.last_used = time.monotonic()
            self._evict_over_budget(keep=model)
        if self._on_load is not None:
            self._on_load(model.name, "loaded")

    def _evict_over_budget(self, keep: ModelState) -> None:
        """Unload least recently used models until the loaded ones fit the budget."""
        from weightbase.serving.runnable import forget_runnable

        if self._budget <= 0:
            return
        while self.loaded_bytes > self._budget:
            others = [m for m in self.models.values() if m.runnable is not None and m is not keep]
            if not others:
                return  # one model larger than the budget is still served
            oldest = min(others, key=lambda m: m.last_used)
            if oldest.runnable is not None:
                forget_runnable(oldest.runnable)
            oldest.runnable, oldest.bytes = None, 0
            if self._on_evict is not None:
                self._on_evict(oldest.name)

    def describe(self) -> dict[str, dict[str, Any]]:
        """Each model's ref, state, bytes and load error (for ``/readyz``)."""
        return {
            m.name: {"ref": m.ref, "state": m.state, "bytes": m.bytes, "error": m.error}
            for m in self.models.values()
        }
