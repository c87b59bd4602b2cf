"""Small torch models the demo trains and serves, importable by their entry point.

A version pushed with ``entry_point="weightbase.sample_models:DigitsMLP"`` and its JSON
init arguments is rebuilt from this class by ``weightbase serve``; needs torch.
"""

from __future__ import annotations

from weightbase.errors import MissingExtraError

try:
    import torch
except ImportError as exc:  # pragma: no cover - the torch extra brings it
    raise MissingExtraError(
        "weightbase.sample_models needs torch: pip install torch==2.13.0 'weightbase[torch]'",
        module="torch",
        extra="torch",
    ) from exc

__all__ = ["DIGITS_MLP", "DigitsMLP"]

#: The entry point a version of :class:`DigitsMLP` is pushed with.
DIGITS_MLP = "weightbase.sample_models:DigitsMLP"


class DigitsMLP(torch.nn.Module):
    """One hidden ReLU layer with dropout: 8x8 digit images (scaled to 0..1) to 10 logits."""

    def __init__(self, inputs: int = 64, hidden: int = 128, outputs: int = 10) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(inputs, hidden)
        self.dropout = torch.nn.Dropout(0.1)
        self.out = torch.nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.out(self.dropout(torch.relu(self.hidden(x))))
        return logits
