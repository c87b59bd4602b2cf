"""Training integration: checkpoints with exact resume, and callbacks for training loops."""

from weightbase.training.checkpoint import Checkpoint, CheckpointManager, Progress
from weightbase.training.loop import Training

__all__ = ["Checkpoint", "CheckpointManager", "Progress", "Training"]
