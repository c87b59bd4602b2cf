"""How members' answers combine, on arrays: no models, no catalog.

Each function takes the members' outputs for one batch as ``(N, C)`` arrays (probabilities
after :func:`probabilities`, or embeddings) and gives one ``(N, C)`` array back, except
``parallel`` which keeps every member's (``(N, M, C)``). The cascade's selection is here
too, so the runnable only runs members on the rows it says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import softmax

from weightbase.errors import ValidationError

__all__ = [
    "Array",
    "as_rows",
    "confident",
    "majority_vote",
    "parallel",
    "probabilities",
    "summary",
    "weighted_average",
]

Array = np.ndarray[Any, Any]


def as_rows(outputs: Sequence[Any], member: str) -> Array:
    """A member's outputs for a batch as one float64 ``(N, C)`` array."""
    try:
        array = np.asarray(np.stack([np.asarray(row, dtype=np.float64) for row in outputs]))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"member {member} gave outputs that are not rows ({exc})") from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValidationError(
            f"member {member} gave outputs of shape {array.shape[1:]}; a reactor fuses vectors"
        )
    return array


def probabilities(rows: Array, kind: str) -> Array:
    """Rows as class probabilities: the softmax of ``logits``, ``probabilities`` as given."""
    if kind == "logits":
        return np.asarray(softmax(rows, axis=1))
    if kind == "probabilities":
        return rows
    raise ValidationError(f"{kind} outputs have no class probabilities")


def weighted_average(outputs: Sequence[Array], weights: Sequence[float]) -> Array:
    """The weighted mean of the members' rows (probabilities or embeddings)."""
    _same_shape(outputs)
    return np.asarray(np.average(np.stack(outputs), axis=0, weights=np.asarray(weights)))


def majority_vote(outputs: Sequence[Array], weights: Sequence[float]) -> Array:
    """Each class's share of the weighted votes, each member voting for its argmax.

    The answer is the class with the largest share; a tie goes to the lower class index
    (``argmax`` of the shares).
    """
    _same_shape(outputs)
    stacked = np.stack(outputs)
    votes = np.argmax(stacked, axis=2)  # (M, N)
    shares = np.zeros(stacked.shape[1:], dtype=np.float64)
    rows = np.arange(stacked.shape[1])
    for member_votes, weight in zip(votes, weights, strict=True):
        np.add.at(shares, (rows, member_votes), weight)
    return shares / float(np.sum(weights))


def parallel(outputs: Sequence[Array]) -> Array:
    """Every member's rows, side by side: ``(N, M, C)``."""
    _same_shape(outputs)
    return np.stack(outputs, axis=1)


def confident(probs: Array, threshold: float) -> Array:
    """Which rows a cascade member answers: its max probability reaches ``threshold``."""
    return np.asarray(probs.max(axis=1) >= threshold)


def summary(probs: Array) -> tuple[list[int], list[float]]:
    """Each row's argmax and its probability (the confidence)."""
    if probs.shape[0] == 0:
        return [], []
    top = np.argmax(probs, axis=1)
    return top.tolist(), probs[np.arange(probs.shape[0]), top].astype(float).tolist()


def _same_shape(outputs: Sequence[Array]) -> None:
    shapes = {array.shape for array in outputs}
    if len(shapes) > 1:
        raise ValidationError(
            f"members gave outputs of different shapes {sorted(shapes)}; they cannot be fused"
        )
