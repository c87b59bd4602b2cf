"""A dataset's inputs and targets, whole or one split, in the natural form of its format.

``wb.datasets.arrays(ref, "test")`` reads through here, embedded and remote alike:

======  ===========================================  ================================
format  inputs                                       targets
======  ===========================================  ================================
tensor  ``x`` rows (NumPy)                           ``y`` rows, or ``None``
table   pandas DataFrame of every other column       pandas Series of the target
image   ``[n, H, W(, C)]`` array, or a list of them  class names (NumPy), or ``None``
text    list of ``str``                              class names, or ``None``
audio   list of ``AudioClip``                        class names, or ``None``
graph   node feature rows, or ``None``               node label rows, or ``None``
======  ===========================================  ================================

A table keeps each row's sample number as its index, so ``frame.index`` says which
samples a split holds (the whole table: 0 to n - 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from weightbase.datasets.content import DatasetContent, DatasetFormat
from weightbase.datasets.splits import SPLIT_NAMES
from weightbase.errors import ValidationError

__all__ = ["check_part", "inputs_and_targets"]


def check_part(part: str | None) -> None:
    """``ValidationError`` unless ``part`` is ``None`` or a split's name."""
    if part is not None and part not in SPLIT_NAMES:
        raise ValidationError(
            f"unknown split {part!r}; choose one of {', '.join(SPLIT_NAMES)}", split=part
        )


def inputs_and_targets(content: DatasetContent, indices: np.ndarray | None) -> tuple[Any, Any]:
    """``(inputs, targets)`` of the samples at ``indices`` (every sample: ``None``)."""
    chosen = np.arange(content.sample_count) if indices is None else np.asarray(indices)
    fmt = content.format
    if fmt is DatasetFormat.TENSOR:
        x, y = content.to_numpy()
        if indices is None:
            return x, y
        return x[chosen], (y[chosen] if y is not None else None)
    if fmt is DatasetFormat.TABLE:
        return _table(content, chosen)
    if fmt is DatasetFormat.GRAPH:
        graph = content.graph()
        return _rows(graph.node_features, chosen), _rows(graph.node_labels, chosen)
    labels = _rows(content.labels(), chosen)
    if fmt is DatasetFormat.IMAGE:
        if "images" in content.arrays:
            return content.arrays["images"][chosen], labels
        images = content.images()
        return [images[i] for i in chosen.tolist()], labels
    if fmt is DatasetFormat.TEXT:
        texts = content.texts()
        return [texts[i] for i in chosen.tolist()], labels
    clips = content.audio()
    return [clips[i] for i in chosen.tolist()], labels


def _rows(array: np.ndarray | None, chosen: np.ndarray) -> np.ndarray | None:
    return None if array is None else array[chosen]


def _table(content: DatasetContent, chosen: np.ndarray) -> tuple[Any, Any]:
    frame = content.to_pandas().iloc[chosen]
    frame.index = chosen  # each row keeps its sample number
    if content.target is None:
        return frame, None
    return frame.drop(columns=[content.target]), frame[content.target]
