"""The one interface every runnable model offers: its task, its version and ``predict``."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weightbase.registry.records import ModelVersion

__all__ = ["HF_TASKS", "PREDICT", "TASKS", "Runnable"]

#: The tasks a Hugging Face folder is served for.
HF_TASKS = ("embeddings", "text-classification", "token-classification", "text-generation")
#: The task of a version built by an entry point: a batch in, one output per input.
PREDICT = "predict"
TASKS = (*HF_TASKS, PREDICT)


class Runnable:
    """A version built and ready on ``device``: ``predict(batch)`` gives one output per input.

    Hugging Face tasks add ``embed``, ``classify``, ``tag`` or ``generate``. One
    runnable is built per snapshot, task and device in a process, and shared.
    """

    task: str
    device: str
    version: ModelVersion

    def __init__(self, task: str, version: ModelVersion, device: str) -> None:
        self.task = task
        self.version = version
        self.device = device

    def predict(self, batch: Sequence[Any]) -> list[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def for_version(self, version: ModelVersion) -> Runnable:
        """This runnable, sharing its model, named as ``version`` (same snapshot)."""
        if version == self.version:
            return self
        other = copy.copy(self)
        other.version = version
        return other

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.version.ref} {self.task} on {self.device}>"
