"""Tensor sources: a uniform, streaming view of tensors about to be written.

A source knows a tensor's name, dtype and shape and can hand out any byte range
of its data, so the writer never needs the whole model in memory: a NumPy array
hands out views, a safetensors file hands out reads from disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from weightbase.errors import ValidationError
from weightbase.tensors.codecs import Buffer
from weightbase.tensors.dtypes import DType, dtype_from_numpy, dtype_from_torch
from weightbase.tensors.manifest import validate_name

__all__ = ["TensorSource", "sources_from_mapping", "sources_from_numpy", "sources_from_torch"]


@dataclass(frozen=True, slots=True)
class TensorSource:
    """A tensor to be written: ``read(offset, length)`` returns that slice of its raw bytes."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    read: Callable[[int, int], Buffer]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def _slicer(flat_bytes: np.ndarray[Any, Any]) -> Callable[[int, int], Buffer]:
    view = flat_bytes.data if flat_bytes.size else memoryview(b"")
    return lambda offset, length: view[offset : offset + length]


def sources_from_numpy(arrays: Mapping[str, Any]) -> list[TensorSource]:
    """Sources over NumPy arrays; object, structured and non-contiguous arrays are refused."""
    sources = []
    for name, value in arrays.items():
        validate_name(name)
        # a NumPy scalar is a 0-d tensor
        array = np.asarray(value) if isinstance(value, np.generic) else value
        if not isinstance(array, np.ndarray):
            raise ValidationError(
                f"tensor {name!r} is a {type(array).__name__}, not a NumPy array", name=name
            )
        dtype = dtype_from_numpy(array.dtype)
        if not array.flags.c_contiguous:
            raise ValidationError(
                f"tensor {name!r} is not C-contiguous; pass np.ascontiguousarray(...) "
                "so what is stored is what you meant",
                name=name,
            )
        flat = array.reshape(-1).view(np.uint8)
        sources.append(TensorSource(name, dtype, tuple(int(d) for d in array.shape), _slicer(flat)))
    return sources


def sources_from_torch(state_dict: Mapping[str, Any]) -> list[TensorSource]:
    """Sources over a PyTorch state dict (CPU or GPU tensors, any dtype torch has)."""
    import torch

    sources = []
    for name, tensor in state_dict.items():
        validate_name(name)
        if not isinstance(tensor, torch.Tensor):
            raise ValidationError(
                f"state dict entry {name!r} is a {type(tensor).__name__}, not a tensor", name=name
            )
        dtype = dtype_from_torch(tensor.dtype)
        if tensor.layout != torch.strided:
            raise ValidationError(f"tensor {name!r} has layout {tensor.layout}; only dense tensors")
        if not tensor.is_contiguous():
            raise ValidationError(
                f"tensor {name!r} is not contiguous; call .contiguous() before storing it",
                name=name,
            )
        flat = tensor.detach().reshape(-1)
        raw = flat.view(torch.uint8) if flat.numel() else flat.new_empty(0, dtype=torch.uint8)
        shape = tuple(int(d) for d in tensor.shape)
        sources.append(TensorSource(name, dtype, shape, _slicer(raw.cpu().numpy())))
    return sources


def _is_torch_tensor(value: object) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "untyped_storage")


def sources_from_mapping(tensors: Mapping[str, Any] | Iterable[TensorSource]) -> list[TensorSource]:
    """Sources from a dict of NumPy arrays, a torch state dict, or sources already made."""
    if isinstance(tensors, Mapping):
        if any(_is_torch_tensor(value) for value in tensors.values()):
            return sources_from_torch(tensors)
        return sources_from_numpy(tensors)
    sources = list(tensors)
    for source in sources:
        if not isinstance(source, TensorSource):
            raise ValidationError(f"expected a mapping of tensors, got {type(source).__name__}")
        validate_name(source.name)
    return sources
