"""Training state as tensors plus a JSON tree, so a checkpoint is an ordinary snapshot.

A state dict from torch (a model's, an optimizer's, a scheduler's) is a tree of
dicts, lists, tuples, numbers, strings and tensors. :func:`flatten` splits it
into the tensors, each named by its path (``optimizer.state.3.exp_avg``), and a
JSON tree that stands for everything else, with a marker where each tensor was.
:func:`unflatten` puts it back together exactly: tuples stay tuples, integer
keys stay integers, NumPy arrays stay NumPy arrays. Nothing is pickled.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

import numpy as np

from weightbase.errors import ValidationError

__all__ = ["capture_rng", "flatten", "restore_rng", "unflatten"]

JSON = Any

_TENSOR = "__tensor__"
_ARRAY = "__ndarray__"
_TUPLE = "__tuple__"
_DICT = "__dict__"
_FLOAT = "__float__"


def flatten(tree: Any, prefix: str, tensors: dict[str, Any], *, on_device: bool = False) -> JSON:
    """The JSON form of ``tree``; its tensors and arrays go into ``tensors`` under ``prefix``.

    Tensors are moved to host memory, unless ``on_device``: then they stay where they
    are (the caller copies them, as background checkpoints do into pinned buffers).
    """
    if _is_torch_tensor(tree):
        value = tree.detach() if on_device else tree.detach().cpu().contiguous()
        return {_TENSOR: _put(tensors, prefix, value)}
    if isinstance(tree, np.ndarray):
        return {_ARRAY: _put(tensors, prefix, np.ascontiguousarray(tree))}
    if isinstance(tree, np.generic):
        return flatten(tree.item(), prefix, tensors, on_device=on_device)
    if tree is None or isinstance(tree, bool | int | str):
        return tree
    if isinstance(tree, float):
        return tree if math.isfinite(tree) else {_FLOAT: repr(tree)}
    if isinstance(tree, tuple):
        return {
            _TUPLE: [
                flatten(v, f"{prefix}.{i}", tensors, on_device=on_device)
                for i, v in enumerate(tree)
            ]
        }
    if isinstance(tree, list):
        return [
            flatten(v, f"{prefix}.{i}", tensors, on_device=on_device) for i, v in enumerate(tree)
        ]
    if isinstance(tree, Mapping):
        if all(isinstance(key, str) and not key.startswith("__") for key in tree):
            return {
                key: flatten(value, f"{prefix}.{key}", tensors, on_device=on_device)
                for key, value in tree.items()
            }
        items = []
        for key, value in tree.items():
            if not isinstance(key, str | int | bool) and key is not None:
                raise ValidationError(
                    f"cannot store a state dict key of type {type(key).__name__} at {prefix}"
                )
            items.append([key, flatten(value, f"{prefix}.{key}", tensors, on_device=on_device)])
        return {_DICT: items}
    raise ValidationError(
        f"cannot store a {type(tree).__name__} at {prefix} in a checkpoint: state must be "
        "tensors, arrays, numbers, strings, lists, tuples and dicts"
    )


def unflatten(tree: JSON, tensors: Mapping[str, Any]) -> Any:
    """Rebuild what :func:`flatten` took apart, taking tensors and arrays from ``tensors``."""
    if isinstance(tree, list):
        return [unflatten(v, tensors) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if _TENSOR in tree:
        return _take(tensors, tree[_TENSOR], torch_tensor=True)
    if _ARRAY in tree:
        return _take(tensors, tree[_ARRAY], torch_tensor=False)
    if _TUPLE in tree:
        return tuple(unflatten(v, tensors) for v in tree[_TUPLE])
    if _FLOAT in tree:
        return float(tree[_FLOAT])
    if _DICT in tree:
        return {key: unflatten(value, tensors) for key, value in tree[_DICT]}
    return {key: unflatten(value, tensors) for key, value in tree.items()}


def capture_rng() -> dict[str, Any]:
    """Every random number generator a training loop touches: Python, NumPy, torch, CUDA."""
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state()}
    torch = _torch()
    if torch is not None:
        state["torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Put back generators captured by :func:`capture_rng`."""
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    np.random.set_state(tuple(state["numpy"]))
    torch = _torch()
    if torch is not None and "torch" in state:
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(list(state["cuda"]))


def _put(tensors: dict[str, Any], name: str, value: Any) -> str:
    if name in tensors:
        raise ValidationError(f"two state entries flatten to the same name {name!r}")
    tensors[name] = value
    return name


def _take(tensors: Mapping[str, Any], name: str, *, torch_tensor: bool) -> Any:
    try:
        value = tensors[name]
    except KeyError:
        raise ValidationError(f"checkpoint is missing tensor {name!r}") from None
    if torch_tensor and not _is_torch_tensor(value):
        torch = _torch()
        assert torch is not None
        return torch.from_numpy(np.array(value))
    if not torch_tensor and _is_torch_tensor(value):
        return value.numpy()
    return value


def _is_torch_tensor(value: object) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - training without torch
        return None
    return torch
