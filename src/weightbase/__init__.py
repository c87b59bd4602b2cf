"""weightbase: the lifecycle platform for neural networks, on a content-addressed tensor store."""

from weightbase.errors import (
    Conflict,
    DeviceError,
    IntegrityError,
    MalformedFileError,
    MissingExtraError,
    NotFound,
    StorageError,
    UnsafeFormatError,
    ValidationError,
    WeightbaseError,
)
from weightbase.tensors import Snapshot, TensorStore

__version__ = "0.1.0"

__all__ = [
    "Conflict",
    "DeviceError",
    "IntegrityError",
    "MalformedFileError",
    "MissingExtraError",
    "NotFound",
    "Snapshot",
    "StorageError",
    "TensorStore",
    "UnsafeFormatError",
    "ValidationError",
    "WeightbaseError",
    "__version__",
]
