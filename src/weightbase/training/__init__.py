"""Training integration: checkpoints with exact resume, and callbacks for training loops."""

from weightbase.training.checkpoint import Checkpoint, CheckpointManager, Progress

__all__ = ["Checkpoint", "CheckpointManager", "Progress"]
