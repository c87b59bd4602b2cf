"""Training integration: checkpoints with exact resume, and callbacks for training loops.

They ask of a workspace only what :mod:`weightbase.training.ports` names, so an
embedded or a remote one will do. The Trainer callbacks load on first use, so
importing this package needs neither transformers nor lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from weightbase.training.checkpoint import Checkpoint, CheckpointManager, Progress
from weightbase.training.loop import Training

if TYPE_CHECKING:
    from weightbase.training.hf import WeightbaseCallback
    from weightbase.training.lightning import WeightbaseLightningCallback

__all__ = [
    "Checkpoint",
    "CheckpointManager",
    "Progress",
    "Training",
    "WeightbaseCallback",
    "WeightbaseLightningCallback",
]

_LAZY = {
    "WeightbaseCallback": "weightbase.training.hf",
    "WeightbaseLightningCallback": "weightbase.training.lightning",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
