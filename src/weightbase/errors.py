"""The one exception hierarchy of weightbase.

Every error weightbase raises on purpose is a ``WeightbaseError``; backend
errors (OS, botocore, SQL drivers) are translated where they leave a backend.

    WeightbaseError
    ├── ValidationError (ValueError)        bad input, refused before anything is written
    │   ├── UnsafeFormatError               a file that could only be read by unpickling
    │   └── MalformedFileError              a truncated or inconsistent weights file
    ├── NotFound (KeyError)                 a snapshot, ref, chunk or tensor that is not there
    ├── Conflict                            a write that collides with existing state
    ├── IntegrityError                      stored bytes that do not match their digest
    ├── PermissionDenied (PermissionError)  the caller may not do this
    │   ├── AuthenticationError             no credentials, or unknown, revoked or expired ones
    │   └── ApprovalRequired                a governance policy needs approvals not yet given
    ├── StorageError (OSError)              the object store failed to read or write
    ├── MissingExtraError (ImportError)     an optional dependency is not installed
    ├── NotSupported (NotImplementedError)  this kind of workspace cannot do that (remote)
    ├── DeviceError (RuntimeError)          the requested device is not available
    └── ServingError                        the inference server could not answer a request
        ├── ServerBusyError                 a model has its most requests in flight (429)
        ├── InferenceTimeoutError (TimeoutError)  not answered in time (504)
        ├── ModelUnavailableError           a served model could not be loaded (503)
        └── InferenceError (RuntimeError)   the model's own code raised (500)
"""

from __future__ import annotations

import re

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
    "StorageError",
    "UnsafeFormatError",
    "ValidationError",
    "WeightbaseError",
]

# Messages quote file names, headers and other libraries' errors: a terminal must not
# interpret what they carry. ANSI escape sequences go whole, line breaks and tabs become
# spaces (an error is one line), and every other C0 or C1 control character goes.
_ANSI_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC: titles, hyperlinks
    r"|\x1b[ -/]*[0-~]"  # the other escapes: charsets, resets, keypad modes
)
_SPACING = re.compile(r"\s*[\n\v\f\r\x85]\s*|\t+")  # a line break and its indent
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(message: str) -> str:
    """``message`` without escape sequences or control characters, on one line."""
    return _CONTROL.sub("", _SPACING.sub(" ", _ANSI_ESCAPE.sub("", message)))


class WeightbaseError(Exception):
    """Base class of every error weightbase raises on purpose.

    Its message is kept free of control characters and escape sequences.
    """

    def __init__(self, message: str, **context: object) -> None:
        message = _printable(str(message))
        super().__init__(message)
        self.message = message
        self.context = context
        for key, value in context.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return self.message


class ValidationError(WeightbaseError, ValueError):
    """Input that weightbase refuses; nothing was written."""


class UnsafeFormatError(ValidationError):
    """A file that could only be loaded by unpickling untrusted data."""


class MalformedFileError(ValidationError):
    """A weights file whose header or layout is inconsistent or truncated."""


class NotFound(WeightbaseError, KeyError):
    """A snapshot, ref, chunk or tensor that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class Conflict(WeightbaseError):
    """A write that collides with state that already exists."""


class IntegrityError(WeightbaseError):
    """Stored bytes whose digest does not match the one they are addressed by."""


class PermissionDenied(WeightbaseError, PermissionError):
    """The caller may not do this."""


class AuthenticationError(PermissionDenied):
    """No credentials, or an unknown, revoked or expired token, or one of a disabled user."""


class ApprovalRequired(PermissionDenied):
    """A governance policy requires approvals for this change that the version does not have."""


class StorageError(WeightbaseError, OSError):
    """The object store failed to read or write."""


class MissingExtraError(WeightbaseError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class NotSupported(WeightbaseError, NotImplementedError):
    """Something this kind of workspace cannot do, such as a remote workspace reaching the
    server's catalog directly; the message says what to use instead."""


class DeviceError(WeightbaseError, RuntimeError):
    """The requested device (for example ``cuda``) is not available."""


class ServingError(WeightbaseError):
    """The inference server could not answer a request (``weightbase serve``)."""


class ServerBusyError(ServingError):
    """A served model has ``max_concurrency`` requests in flight (the server answers 429)."""


class InferenceTimeoutError(ServingError, TimeoutError):
    """A request was not answered within ``timeout_s`` (the server answers 504)."""


class ModelUnavailableError(ServingError):
    """A served model could not be loaded (the server answers 503 with its error)."""


class InferenceError(ServingError, RuntimeError):
    """The model's own code raised while answering (the server answers 500 saying what)."""
