"""Versions built by the user's own code: a torch module class, or a ``predict`` function.

A class named by the entry point is built with the recorded init arguments and takes the
version's weights strictly; a function is called with each batch (and, where it takes
them, the weights as a ``weights`` keyword).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from weightbase.errors import ValidationError
from weightbase.serving.loading import load_weights, read_weights, require_torch
from weightbase.serving.runnable_base import PREDICT, Runnable

if TYPE_CHECKING:
    from weightbase.registry.records import ModelVersion
    from weightbase.serving.entry_points import EntryPoint
    from weightbase.tensors import TensorStore
    from weightbase.tensors.manifest import Snapshot

__all__ = ["ModuleRunnable", "PredictRunnable", "build_entry_point"]


class ModuleRunnable(Runnable):
    """A torch module: ``predict`` stacks the batch into one tensor and runs one forward."""

    def __init__(self, module: Any, version: ModelVersion, device: str) -> None:
        super().__init__(PREDICT, version, device)
        self.module = module

    def predict(self, batch: Sequence[Any]) -> list[Any]:
        torch = require_torch()
        if len(batch) == 0:
            return []
        try:
            inputs = torch.stack([torch.as_tensor(item) for item in batch]).to(self.device)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValidationError(f"the batch is not one tensor's rows ({exc})") from None
        first = next(iter(self.module.parameters()), None)
        if first is not None and inputs.is_floating_point():
            inputs = inputs.to(first.dtype)
        with torch.inference_mode():
            outputs = self.module(inputs)
        return list(outputs.detach().cpu().numpy())


class PredictRunnable(Runnable):
    """A ``predict`` function: a batch in, one output per input."""

    def __init__(
        self, function: Any, keywords: dict[str, Any], version: ModelVersion, device: str
    ) -> None:
        super().__init__(PREDICT, version, device)
        self.function = function
        self.keywords = keywords

    def predict(self, batch: Sequence[Any]) -> list[Any]:
        outputs = list(self.function(list(batch), **self.keywords))
        if len(outputs) != len(batch):
            raise ValidationError(
                f"predict gave {len(outputs)} outputs for a batch of {len(batch)}",
                entry_point=getattr(self.function, "__qualname__", None),
            )
        return outputs


def build_entry_point(
    store: TensorStore,
    snapshot: Snapshot,
    entry: EntryPoint,
    version: ModelVersion,
    device: str,
) -> Runnable:
    """Import ``entry``'s target and build it: a module with the weights, or a function."""
    target = entry.resolve()
    if inspect.isclass(target):
        return _build_module(store, snapshot, entry, target, version, device)
    if callable(target):
        keywords = dict(entry.init_args)
        if _takes(target, "weights"):
            keywords["weights"] = read_weights(store, snapshot, device)
        return PredictRunnable(target, keywords, version, device)
    raise ValidationError(
        f"entry point {entry.target} is a {type(target).__name__}, "
        "not a class or a predict function",
        entry_point=entry.target,
    )


def _build_module(
    store: TensorStore,
    snapshot: Snapshot,
    entry: EntryPoint,
    cls: type,
    version: ModelVersion,
    device: str,
) -> Runnable:
    torch = require_torch()
    if not issubclass(cls, torch.nn.Module):
        raise ValidationError(
            f"entry point {entry.target} is a class but not a torch.nn.Module",
            entry_point=entry.target,
        )
    try:
        with torch.device(device):
            module = cls(**entry.init_args)
    except TypeError as exc:
        raise ValidationError(
            f"entry point {entry.target} cannot be built with its init_args ({exc})",
            entry_point=entry.target,
        ) from None
    state = read_weights(store, snapshot, device)
    load_weights(module, state, what=entry.target)
    module.eval()
    return ModuleRunnable(module, version, device)


def _takes(function: Any, name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False
    return any(
        param.name == name or param.kind is inspect.Parameter.VAR_KEYWORD for param in parameters
    )
