"""weightbase: the lifecycle platform for neural networks, on a content-addressed tensor store."""

from weightbase.errors import (
    ApprovalRequired,
    AuthenticationError,
    Conflict,
    DeviceError,
    IntegrityError,
    MalformedFileError,
    MissingExtraError,
    NotFound,
    NotSupported,
    PermissionDenied,
    StorageError,
    UnsafeFormatError,
    ValidationError,
    WeightbaseError,
)
from weightbase.tensors import Snapshot, TensorStore
from weightbase.workspace import Workspace, open

__version__ = "0.1.0"

__all__ = [
    "ApprovalRequired",
    "AuthenticationError",
    "Conflict",
    "DeviceError",
    "IntegrityError",
    "MalformedFileError",
    "MissingExtraError",
    "NotFound",
    "NotSupported",
    "PermissionDenied",
    "Snapshot",
    "StorageError",
    "TensorStore",
    "UnsafeFormatError",
    "ValidationError",
    "WeightbaseError",
    "Workspace",
    "__version__",
    "open",
]
