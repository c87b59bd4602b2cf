"""Importable code that test versions name as their entry points (``tests.serving...``)."""

from __future__ import annotations

from typing import Any

import torch


class TinyMLP(torch.nn.Module):
    """A two-layer MLP built from JSON init arguments."""

    def __init__(self, inputs: int, hidden: int, outputs: int) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(inputs, hidden)
        self.out = torch.nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))


def predict(batch: list[Any], *, weights: dict[str, Any], scale: float = 1.0) -> list[float]:
    """A pyfunc-style predict: each input's dot product with the stored ``w``, scaled."""
    w = weights["w"]
    return [float(torch.as_tensor(item, dtype=w.dtype) @ w) * scale for item in batch]


def predict_plain(batch: list[Any]) -> list[int]:
    """A predict that needs no weights: each input's length."""
    return [len(item) for item in batch]


NOT_CALLABLE = 3
