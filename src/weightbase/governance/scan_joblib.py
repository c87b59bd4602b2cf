"""Where joblib's raw arrays end: the size of the bytes joblib writes after each wrapper.

joblib pickles a ``NumpyArrayWrapper`` and then writes the array's bytes straight into the
file; the pickle walk skips exactly those bytes, worked out from the wrapper's state alone.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["JOBLIB_WRAPPERS", "is_count", "joblib_layout"]

JOBLIB_WRAPPERS = frozenset(
    {
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
    }
)


@runtime_checkable
class _Call(Protocol):
    """The walk's record of a call: what was called with what, and the state BUILD gave it."""

    args: object
    state: object


def joblib_layout(state: object) -> tuple[tuple[int, ...] | None, int, bool, bool]:
    """``(shape, itemsize, holds objects, aligned)`` of a joblib wrapper's state."""
    unknown: tuple[None, int, bool, bool] = (None, 0, False, False)
    if not isinstance(state, dict):
        return unknown
    shape, dtype = state.get("shape"), state.get("dtype")
    if not isinstance(shape, tuple) or not all(is_count(extent) for extent in shape):
        return unknown
    if not isinstance(dtype, _Call) or not isinstance(dtype.args, tuple) or not dtype.args:
        return unknown
    code = dtype.args[0]
    if not isinstance(code, str) or not code:
        return unknown
    dtype_state = dtype.state if isinstance(dtype.state, tuple) else ()
    fields = dtype_state[3] if len(dtype_state) > 3 else None
    if fields is not None:  # a structured dtype: the scanner does not take those apart
        return unknown
    aligned = state.get("numpy_array_alignment_bytes") is not None
    kind = code.lstrip("<>|=")
    if kind.startswith("O"):  # Python objects: a nested pickle follows, not raw bytes
        return tuple(shape), 0, True, aligned
    elsize = dtype_state[5] if len(dtype_state) > 5 else -1
    digits = kind[1:]
    if is_count(elsize) and elsize > 0:
        itemsize = elsize
    elif digits.isdigit():
        itemsize = int(digits)
    else:
        return unknown
    return tuple(shape), itemsize, False, aligned


def is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
