"""weightbase: the lifecycle platform for neural networks, on a content-addressed tensor store."""

from typing import TYPE_CHECKING, Any

from weightbase.errors import (
    ApprovalRequired,
    AuthenticationError,
    Conflict,
    DeviceError,
    InferenceError,
    InferenceTimeoutError,
    IntegrityError,
    MalformedFileError,
    MissingExtraError,
    ModelUnavailableError,
    NotFound,
    NotSupported,
    PermissionDenied,
    ServerBusyError,
    ServingError,
    StorageError,
    UnsafeFormatError,
    ValidationError,
    WeightbaseError,
)
from weightbase.tensors import Snapshot, TensorStore
from weightbase.workspace import Workspace, open

if TYPE_CHECKING:
    from weightbase.tracking.capture import seed_everything

__version__ = "0.1.0"

__all__ = [
    "ApprovalRequired",
    "AuthenticationError",
    "Conflict",
    "DeviceError",
    "InferenceError",
    "InferenceTimeoutError",
    "IntegrityError",
    "MalformedFileError",
    "MissingExtraError",
    "ModelUnavailableError",
    "NotFound",
    "NotSupported",
    "PermissionDenied",
    "ServerBusyError",
    "ServingError",
    "Snapshot",
    "StorageError",
    "TensorStore",
    "UnsafeFormatError",
    "ValidationError",
    "WeightbaseError",
    "Workspace",
    "__version__",
    "open",
    "seed_everything",
]


def __getattr__(name: str) -> Any:
    # seed_everything is imported when first asked for: tracking pulls in the catalog's
    # SQLAlchemy, which `import weightbase` alone does not need
    if name == "seed_everything":
        from weightbase.tracking.capture import seed_everything

        return seed_everything
    raise AttributeError(f"module 'weightbase' has no attribute {name!r}")
