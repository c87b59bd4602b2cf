"""PyTorch tensors and files: conversion, safe loading, and export with ``torch.save``.

A ``.pt``/``.bin`` file is only ever opened with ``torch.load(weights_only=True)``,
which refuses arbitrary pickled objects; a file it refuses is refused here too.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from weightbase.errors import MissingExtraError, UnsafeFormatError, ValidationError
from weightbase.tensors.formats._files import atomic_file

if TYPE_CHECKING:
    import torch

    from weightbase.tensors.manifest import Snapshot
    from weightbase.tensors.store import TensorStore

__all__ = ["TORCH_SUFFIXES", "export_torch", "load_torch_file", "require_torch", "to_torch"]

TORCH_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def require_torch() -> Any:
    """Import torch, or say which extra provides it."""
    try:
        import torch
    except ImportError:
        raise MissingExtraError(
            "this needs PyTorch: pip install torch==2.13.0 (or pip install 'weightbase[torch]')",
            extra="torch",
        ) from None
    return torch


def to_torch(array: np.ndarray[Any, Any], dtype_name: str) -> torch.Tensor:
    """A CPU torch tensor with the bytes of ``array`` (bf16 and fp8 included)."""
    require_torch()
    import torch

    from weightbase.tensors.dtypes import get_dtype

    dtype = get_dtype(dtype_name)
    if dtype.torch_name is None:
        raise ValidationError(f"dtype {dtype} has no torch equivalent")
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    if not flat.flags.writeable:
        flat = flat.copy()  # torch wants writable memory; mapped chunks are read-only
    tensor = torch.from_numpy(flat).view(getattr(torch, dtype.torch_name))
    return tensor.reshape(array.shape)


def load_torch_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a torch file, loaded without unpickling arbitrary objects.

    Nested dicts are flattened with ``.``; anything that is not a tensor is refused.
    """
    torch = require_torch()
    try:
        loaded = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeFormatError(
            f"{path} holds objects that need unpickling arbitrary code; refusing to load it. "
            f"Convert it to safetensors where it was made. ({str(exc).splitlines()[0]})",
            path=str(path),
        ) from None
    except (RuntimeError, EOFError, ValueError) as exc:
        raise ValidationError(f"{path} is not a readable torch file: {exc}") from None
    flat: dict[str, Any] = {}
    _flatten(loaded, "", flat, str(path))
    return flat


def _flatten(value: Any, prefix: str, out: dict[str, Any], where: str) -> None:
    torch = require_torch()
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided:  # .contiguous() would raise a bare RuntimeError
            raise ValidationError(
                f"{where}: tensor {prefix!r} has layout {value.layout}; only dense tensors "
                "can be stored (call .to_dense() where the file was made)"
            )
        if prefix in out:  # {"a.b": x, "a": {"b": y}} flattens both to "a.b"
            raise ValidationError(f"{where}: two entries flatten to the same name {prefix!r}")
        out[prefix] = value.contiguous()
    elif isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out, where)
    else:
        raise ValidationError(
            f"{where}: entry {prefix!r} is a {type(value).__name__}, not a tensor; only "
            "state dicts of tensors can be stored",
        )


def export_torch(
    store: TensorStore,
    snapshot: Snapshot,
    path: str | Path,
    names: Iterable[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write a snapshot's tensors (or ``names`` of them) with ``torch.save``, crash-safely.

    ``progress`` hears of the tensors' bytes once they are read (all at once:
    reading them together decodes each pack of small tensors once).
    """
    torch = require_torch()
    target = Path(path)
    tensors = store.read_torch(snapshot, names)
    if progress is not None:
        progress(sum(snapshot.tensors[name].nbytes for name in tensors))
    with atomic_file(target) as handle:
        torch.save(tensors, handle)
    return target
