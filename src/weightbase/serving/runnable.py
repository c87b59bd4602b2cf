"""``load_runnable``: a version built, without guessing, into a model that answers requests.

    runnable = load_runnable(wb, "minilm@production")        # task from config.json
    runnable.embed(["a sentence"])                           # (1, 384), L2-normalised

A version is runnable when it is a Hugging Face folder (built with transformers for the
task its config names, or the one asked for), or was pushed with an entry point: the
user's importable torch module class, built with its init arguments and the weights
loaded strictly, or a ``predict`` function. Each (snapshot, task, device) is built once
per process, however many threads ask at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from weightbase.errors import DeviceError, ValidationError
from weightbase.serving.entry_points import entry_point_of
from weightbase.serving.loading import read_json_file, require_torch
from weightbase.serving.pool import REACTOR_PREFIX
from weightbase.serving.runnable_base import HF_TASKS, PREDICT, TASKS, Runnable
from weightbase.serving.runnable_outputs import (
    Classification,
    Generation,
    GenerationParams,
    TokenTag,
)

if TYPE_CHECKING:
    from weightbase.registry.queries import VersionLike
    from weightbase.registry.records import ModelVersion
    from weightbase.registry.service import ModelRegistry
    from weightbase.tensors import TensorStore
    from weightbase.tensors.manifest import Snapshot

__all__ = [
    "TASKS",
    "Classification",
    "Generation",
    "GenerationParams",
    "Runnable",
    "TokenTag",
    "clear_runnables",
    "forget_runnable",
    "load_runnable",
]


class Workspace(Protocol):
    """What ``load_runnable`` uses of a workspace, embedded or remote."""

    @property
    def models(self) -> ModelRegistry: ...

    store: TensorStore


_Key = tuple[str, str, str]  # snapshot id, task, device

_lock = threading.Lock()
_built: dict[_Key, Runnable] = {}
_building: dict[_Key, threading.Lock] = {}
# the task a snapshot is built for when asked for a task (or None): read once, not per load
_tasks: dict[tuple[str, str | None], str] = {}


def load_runnable(
    wb: Workspace, ref: VersionLike, *, task: str | None = None, device: str = "cpu"
) -> Runnable:
    """The version ``ref`` of workspace ``wb`` (embedded or remote) built on ``device``.

    ``task`` is one of ``embeddings``, ``text-classification``, ``token-classification``,
    ``text-generation`` (a Hugging Face folder; default: what its config's
    ``architectures`` say) or ``predict`` (a version pushed with an entry point). A
    version that names neither, a task it cannot serve, an entry point that cannot be
    imported and weights that do not fit are ``ValidationError``; an absent device is a
    ``DeviceError``.
    """
    if isinstance(ref, str) and ref.startswith(REACTOR_PREFIX):
        from weightbase.serving.fusion.runnable import load_reactor

        return load_reactor(wb, ref.removeprefix(REACTOR_PREFIX), device=device)
    version = wb.models.version(ref)
    store = wb.store
    snapshot = store.snapshot(version.snapshot_id)
    device = _check_device(device)
    with _lock:
        chosen = _tasks.get((snapshot.id, task))
    if chosen is None:
        chosen = _choose_task(store, snapshot, version, task)
        with _lock:
            _tasks[(snapshot.id, task)] = chosen
    key = (snapshot.id, chosen, device)
    built = _build_once(key, lambda: _build(store, snapshot, chosen, version, device))
    return built.for_version(version)


def clear_runnables() -> None:
    """Forget every runnable this process built (the next load builds again)."""
    with _lock:
        _built.clear()
        _tasks.clear()


def forget_runnable(runnable: Runnable) -> None:
    """Forget the built model ``runnable`` shares (the inference server evicting it)."""
    with _lock:
        _built.pop((runnable.version.snapshot_id, runnable.task, runnable.device), None)


def _build_once(key: _Key, build: Callable[[], Runnable]) -> Runnable:
    """``build()`` once per key: a second thread asking meanwhile waits for the first."""
    with _lock:
        found = _built.get(key)
        if found is not None:
            return found
        building = _building.setdefault(key, threading.Lock())
    with building:
        with _lock:
            found = _built.get(key)
        if found is not None:
            return found
        runnable = build()  # a failure leaves nothing cached: the next caller tries again
        with _lock:
            _built[key] = runnable
            _building.pop(key, None)
        return runnable


def _build(
    store: TensorStore, snapshot: Snapshot, task: str, version: ModelVersion, device: str
) -> Runnable:
    if task == PREDICT:
        from weightbase.serving.runnable_entry import build_entry_point

        entry = entry_point_of(snapshot)
        assert entry is not None  # _choose_task gives predict only with one
        return build_entry_point(store, snapshot, entry, version, device)
    from weightbase.serving.runnable_hf import build_hf

    return build_hf(store, snapshot, task, version, device)


def _choose_task(
    store: TensorStore, snapshot: Snapshot, version: ModelVersion, task: str | None
) -> str:
    """The task ``version`` is built for: ``task`` where it can serve it, else its own."""
    from weightbase.serving.runnable_hf import declared_task

    if task is not None and task not in TASKS:
        raise ValidationError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}", task=task)
    if entry_point_of(snapshot) is not None:
        if task not in (None, PREDICT):
            raise ValidationError(
                f"{version.ref} is built by its entry point and serves predict, not {task}",
                task=task,
            )
        return PREDICT
    config = read_json_file(store, snapshot, "config.json")
    if not isinstance(config, dict):
        raise ValidationError(
            f"{version.ref} cannot be built without guessing: it is neither a Hugging Face "
            "folder (no config.json) nor pushed with an entry_point",
            version=version.ref,
        )
    declared = declared_task(config)
    if task is None:
        if declared is None:
            raise ValidationError(
                f"{version.ref}: config.json names no architecture; pass task= "
                f"(one of {', '.join(HF_TASKS)})",
                version=version.ref,
            )
        return declared
    if task == PREDICT:
        raise ValidationError(
            f"{version.ref} has no predict entry point; it serves {declared or 'HF tasks'}",
            task=task,
        )
    # any encoder also embeds; a head serves only its own task
    if declared is not None and task not in (declared, "embeddings"):
        raise ValidationError(
            f"{version.ref} ({', '.join(config['architectures'])}) serves {declared}; "
            f"it cannot serve {task}",
            task=task,
        )
    return task


def _check_device(device: str) -> str:
    torch = require_torch()
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValidationError(f"device {device!r} is not a device ({exc})") from None
    if target.type not in ("cpu", "cuda"):
        raise DeviceError(f"device {device!r} is not supported; use 'cpu' or 'cuda'")
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was requested but torch sees no CUDA device", device=device)
        return f"cuda:{target.index if target.index is not None else torch.cuda.current_device()}"
    return "cpu"
