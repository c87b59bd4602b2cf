"""What an import refuses before it reads a byte, and how a refused torch file is described.

Only regular files are opened (a FIFO or device named ``x.safetensors`` would block a
reader forever), and a torch file the safe loader refuses is named for what it is: not a
torch archive at all, or one holding a callable. The advice other tools give, to load it
unsafely, is never repeated.
"""

from __future__ import annotations

import errno
import os
import pickle
import pickletools
import re
import stat
import struct
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from weightbase.errors import MalformedFileError, UnsafeFormatError, ValidationError

if TYPE_CHECKING:
    import torch

__all__ = ["check_inside", "check_regular_file", "load_torch_weights"]

# A pickled global as torch's safe loader names it when it refuses one.
_GLOBAL = re.compile(r"GLOBAL\s+([A-Za-z_][\w.]*)")
# What torch's safe unpickler raises, unwrapped, on bytes that are not a pickle it can walk.
_LOADER_ERRORS = (
    KeyError,
    IndexError,
    LookupError,  # an allowed _codecs.encode called with an unknown encoding
    TypeError,
    AttributeError,
    struct.error,
    OverflowError,
    RecursionError,
    UnicodeDecodeError,
    pickle.UnpicklingError,
)
# Modules that are ``os`` under another name on one platform or another.
_OS_ALIASES = {"posix": "os", "nt": "os"}


def check_inside(root: str | Path, link: str | Path, *, real_root: str | None = None) -> None:
    """Refuse the symlink ``link`` unless it resolves to something that exists inside ``root``.

    What a folder import asks of every link it meets: one that loops, dangles or leads out
    of the folder is a ``ValidationError`` naming it, so nothing outside is ever read.
    """
    try:
        os.stat(link)
    except OSError as exc:
        what = "loops" if exc.errno == errno.ELOOP else "dangles (its target does not exist)"
        raise ValidationError(f"{link} is a symlink that {what}", path=str(link)) from None
    inside = real_root if real_root is not None else os.path.realpath(root)
    target = os.path.realpath(link)
    if os.path.commonpath([inside, target]) != inside:
        raise ValidationError(
            f"{link} is a symlink to {target}, outside {root}; a folder import reads only "
            "what is inside the folder (copy the file in instead)",
            path=str(link),
        )


def check_regular_file(path: str | Path) -> os.stat_result:
    """The ``stat`` of ``path``, a regular file (links followed); anything else is refused."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ValidationError(
            f"cannot read {path}: {exc.strerror or exc}", path=str(path)
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise ValidationError(
            f"{path} is not a regular file ({_kind(info.st_mode)}); only regular files are read",
            path=str(path),
        )
    return info


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a special file"


def load_torch_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of the torch file at ``path``, read safely; refusals say what the file is."""
    from weightbase.tensors.formats.torch import load_torch_file

    check_regular_file(path)
    with open(path, "rb") as stream:
        head = stream.read(2)
    if not _may_be_torch(head):
        raise MalformedFileError(
            f"{path} is not a torch archive: it is neither a zip archive nor a pickle",
            path=str(path),
        )
    try:
        state = load_torch_file(path)
    except UnsafeFormatError as exc:
        raise _describe_refusal(path, exc.__context__ or exc) from None
    except ValidationError as exc:
        if isinstance(exc.__context__, RuntimeError | EOFError | ValueError):
            raise _unreadable(path, exc.__context__) from None
        raise
    except _LOADER_ERRORS as exc:  # what the safe loader lets out on bytes it cannot walk
        raise _unreadable(path, exc) from None
    meta = sorted(name for name, tensor in state.items() if tensor.is_meta)
    if meta:
        raise MalformedFileError(
            f"{path}: tensor {meta[0]!r} is on the meta device and holds no data"
            + (f" (and {len(meta) - 1} more)" if len(meta) > 1 else "")
            + "; save the tensors after they are materialised",
            path=str(path),
            tensors=meta,
        )
    return state


def _unreadable(path: str | Path, cause: BaseException) -> MalformedFileError:
    detail = (str(cause).splitlines() or [""])[0].split(". ")[0][:200]
    return MalformedFileError(
        f"{path} is not a readable torch archive ({type(cause).__name__}: {detail})",
        path=str(path),
    )


def _may_be_torch(head: bytes) -> bool:
    """Whether a file starting with ``head`` could be one torch writes: a zip archive, or a
    pickle (protocol 2 and up start with PROTO; 0 and 1 with a printable opcode)."""
    if head == b"PK":
        return True
    if len(head) == 2 and head[0] == 0x80:
        return 2 <= head[1] <= 5
    return bool(head) and 0x20 < head[0] < 0x7F


def _describe_refusal(path: str | Path, cause: BaseException) -> ValidationError:
    """What the safe loader found in ``path``, without its advice to load the file unsafely."""
    text = str(cause)
    found = _GLOBAL.search(text)
    if found is not None:
        module, _, name = found.group(1).rpartition(".")
        return _holds_callable(path, _dotted(module, name))
    detail = _unpickler_detail(text)
    with open(path, "rb") as stream:
        archive = stream.read(2) == b"PK"
    if not archive:  # a bare pickle: walk it (nothing runs) to say what it is
        readable, callable_name = _pickle_callable(path)
        if not readable:
            return MalformedFileError(
                f"{path} is not a torch archive: it is not a readable pickle either",
                path=str(path),
            )
        if callable_name is not None:
            return _holds_callable(path, callable_name)
    return UnsafeFormatError(
        f"{path} holds a pickle the safe loader cannot read as tensors"
        + (f" ({detail})" if detail else "")
        + "; refused (convert it to safetensors where it was made)",
        path=str(path),
    )


def _holds_callable(path: str | Path, callable_name: str) -> UnsafeFormatError:
    return UnsafeFormatError(
        f"{path} holds a callable `{callable_name}`, which loading it would call; a torch "
        "file may hold only tensors, so it is refused (convert it to safetensors where "
        "it was made, from code you trust)",
        path=str(path),
        global_name=callable_name,
    )


def _dotted(module: str, name: str) -> str:
    return f"{_OS_ALIASES.get(module, module)}.{name}" if module else name


def _pickle_callable(path: str | Path) -> tuple[bool, str | None]:
    """Whether the pickle at ``path`` can be walked to its end, and the first callable it
    names; its opcodes are only decoded, never run."""
    pushed: list[str | None] = []  # what the opcodes before pushed, memo writes left out
    try:
        # genops decodes a STRING's escapes, warning (DeprecationWarning) on invalid ones
        with open(path, "rb") as stream, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for opcode, arg, _ in pickletools.genops(stream):
                if opcode.name in ("GLOBAL", "INST"):
                    module, _, name = str(arg).partition(" ")
                    return True, _dotted(module, name)
                if opcode.name == "STACK_GLOBAL":
                    operands = pushed[-2:]
                    if len(operands) == 2 and all(isinstance(op, str) for op in operands):
                        return True, _dotted(str(operands[0]), str(operands[1]))
                    return True, "(a global named at run time)"
                if opcode.name not in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "FRAME"):
                    pushed.append(arg if isinstance(arg, str) else None)
    except (ValueError, EOFError, struct.error, OverflowError):
        return False, None
    return True, None


def _unpickler_detail(text: str) -> str:
    """The safe loader's own finding, from between its preamble and its closing advice."""
    _, marker, rest = text.partition("WeightsUnpickler error:")
    if not marker:
        return ""
    rest = rest.split("Check the documentation", 1)[0]
    lines = [line.strip() for line in rest.splitlines() if line.strip()]
    return "; ".join(line for line in lines if "weights_only" not in line)[:200]
