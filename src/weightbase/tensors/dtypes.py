"""Element types the tensor store knows, and their NumPy and PyTorch spellings.

Names follow the safetensors convention (``F32``, ``BF16``, ``F8_E4M3`` …) so a
manifest reads the same as a safetensors header.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import ml_dtypes
import numpy as np

from weightbase.errors import ValidationError

if TYPE_CHECKING:
    import torch

__all__ = ["DType", "dtype_from_code", "dtype_from_numpy", "dtype_from_torch", "get_dtype"]


@dataclass(frozen=True, slots=True)
class DType:
    """One element type: its name, width in bytes and whether it is floating point."""

    name: str
    code: int  # stable id used in chunk frames; never reuse a retired code
    itemsize: int
    is_float: bool
    numpy_name: str
    torch_name: str | None

    @property
    def numpy(self) -> np.dtype[Any]:
        """The NumPy dtype (bf16 and fp8 come from ``ml_dtypes``)."""
        return _numpy_dtype(self.numpy_name)

    def __str__(self) -> str:
        return self.name


_ALL = (
    DType("BOOL", 0, 1, False, "bool", "bool"),
    DType("U8", 1, 1, False, "uint8", "uint8"),
    DType("I8", 2, 1, False, "int8", "int8"),
    DType("U16", 3, 2, False, "uint16", "uint16"),
    DType("I16", 4, 2, False, "int16", "int16"),
    DType("U32", 5, 4, False, "uint32", "uint32"),
    DType("I32", 6, 4, False, "int32", "int32"),
    DType("U64", 7, 8, False, "uint64", "uint64"),
    DType("I64", 8, 8, False, "int64", "int64"),
    DType("F16", 9, 2, True, "float16", "float16"),
    DType("BF16", 10, 2, True, "bfloat16", "bfloat16"),
    DType("F32", 11, 4, True, "float32", "float32"),
    DType("F64", 12, 8, True, "float64", "float64"),
    DType("C64", 13, 8, True, "complex64", "complex64"),
    DType("C128", 14, 16, True, "complex128", "complex128"),
    DType("F8_E4M3", 15, 1, True, "float8_e4m3fn", "float8_e4m3fn"),
    DType("F8_E5M2", 16, 1, True, "float8_e5m2", "float8_e5m2"),
    DType("F8_E4M3FNUZ", 17, 1, True, "float8_e4m3fnuz", "float8_e4m3fnuz"),
    DType("F8_E5M2FNUZ", 18, 1, True, "float8_e5m2fnuz", "float8_e5m2fnuz"),
    DType("F8_E8M0", 19, 1, True, "float8_e8m0fnu", "float8_e8m0fnu"),
    # torch-only element types: NumPy sees their raw bits
    DType("C32", 20, 4, True, "V4", "complex32"),
    DType("F4_E2M1_X2", 21, 1, False, "uint8", "float4_e2m1fn_x2"),
    DType("B8", 22, 1, False, "uint8", "bits8"),
    DType("B16", 23, 2, False, "uint16", "bits16"),
)
_BY_NAME = {d.name: d for d in _ALL}
_BY_CODE = {d.code: d for d in _ALL}
_BY_NUMPY = {d.numpy_name: d for d in reversed(_ALL)}  # first spelling wins
_BY_TORCH = {d.torch_name: d for d in _ALL if d.torch_name}


@cache
def _numpy_dtype(name: str) -> np.dtype[Any]:
    scalar_type: Any = getattr(ml_dtypes, name, name)
    dtype: np.dtype[Any] = np.dtype(scalar_type)
    return dtype


def get_dtype(name: str) -> DType:
    """The dtype called ``name`` (safetensors spelling); ``ValidationError`` if unknown."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):  # a name read from a file may be any JSON value
        known = ", ".join(_BY_NAME)
        raise ValidationError(
            f"unknown dtype {name!r}; known dtypes: {known}", dtype=name
        ) from None


def dtype_from_code(code: int) -> DType:
    """The dtype with frame code ``code``."""
    try:
        return _BY_CODE[code]
    except KeyError:
        raise ValidationError(f"unknown dtype code {code}") from None


def dtype_from_numpy(dtype: np.dtype[Any]) -> DType:
    """The store dtype of a NumPy dtype; object and structured dtypes are refused."""
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and np.little_endian is False):
        raise ValidationError(f"big-endian arrays are not supported ({dtype}); use .astype('<...')")
    found = _BY_NUMPY.get(dtype.name)
    if found is None:
        raise ValidationError(
            f"arrays of dtype {dtype} cannot be stored; use a numeric, bool, bf16 or fp8 dtype",
            dtype=str(dtype),
        )
    return found


def dtype_from_torch(dtype: torch.dtype) -> DType:
    """The store dtype of a PyTorch dtype."""
    name = str(dtype).removeprefix("torch.")
    found = _BY_TORCH.get(name)
    if found is None:
        hint = (
            "; store q.int_repr() and its scale and zero point, or dequantize()"
            if name.startswith(("qint", "quint"))
            else ""
        )
        raise ValidationError(f"torch dtype {dtype} is not supported by the tensor store{hint}")
    return found
