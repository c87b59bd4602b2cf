"""Walk a pickle's opcodes, never loading it, and report every global it could call.

A small symbolic machine follows the unpickler's stack, mark stack and memo with inert
values: constants as they are, containers as containers, globals as ``GlobalRef`` and the
result of a call as an opaque ``CallResult``. Nothing is imported and nothing is called, so
the walk knows which strings a ``STACK_GLOBAL`` pops (through the memo too), what a
``REDUCE`` calls, and the shape and dtype of the arrays joblib writes after its wrappers.
"""

from __future__ import annotations

import io
import pickletools
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from weightbase.governance.scan_allowlist import is_allowed, resolve_global
from weightbase.governance.scan_joblib import JOBLIB_WRAPPERS, joblib_layout
from weightbase.governance.scan_records import FindingKind

__all__ = ["CallResult", "GlobalRef", "PickleWalk", "walk_pickle"]

# Bytes that start no opcode: an unpickler stops at one without doing anything.
_OPCODE_BYTES = frozenset(op.code.encode("latin-1")[0] for op in pickletools.opcodes)


@dataclass(frozen=True, slots=True)
class GlobalRef:
    """A class or function the pickle names (``module.name``), resolved where it is named."""

    module: str
    name: str
    offset: int


@dataclass(eq=False, slots=True)
class CallResult:
    """What a call would return: opaque, but it remembers what was called and with what."""

    callee: object
    args: object
    state: object = None


class _Unknown:
    """A value the walk does not model (a persistent id, an extension, a missing memo slot)."""

    __slots__ = ()


UNKNOWN: Any = _Unknown()


@dataclass(slots=True)
class PickleWalk:
    """The outcome of walking one pickle: its top value and where it ended."""

    value: object = None
    complete: bool = False  # reached STOP
    protocol: int = 0
    end: int = 0
    joblib_arrays: int = 0


class _Malformed(Exception):
    """The stream cannot be what an unpickler reads to its end."""


class _Machine:
    """The unpickler's stack machine with every side effect taken out."""

    def __init__(self, stream: IO[bytes], report: Callable[..., None]) -> None:
        self.stream = stream
        self.report = report
        self.stack: list[Any] = []
        self.marks: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.protocol = 0
        self.joblib_arrays = 0

    # -- the stack -----------------------------------------------------------------------------

    def pop(self) -> Any:
        if not self.stack:
            raise _Malformed("pops an empty stack")
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise _Malformed("has no MARK to pop")
        items = self.stack
        self.stack = self.marks.pop()
        return items

    def top(self) -> Any:
        if not self.stack:
            raise _Malformed("reads an empty stack")
        return self.stack[-1]

    # -- globals and calls ---------------------------------------------------------------------

    def named(self, module: str, name: str, opcode: str, offset: int) -> GlobalRef:
        module, name = resolve_global(module, name, self.protocol)
        if not is_allowed(module, name):
            self.report(
                FindingKind.UNSAFE_GLOBAL,
                f"{opcode} names {module}.{name}, which is not on the allowlist",
                module=module,
                name=name,
                opcode=opcode,
                offset=offset,
            )
        return GlobalRef(module, name, offset)

    def call(self, callee: object, args: object, opcode: str, offset: int) -> CallResult:
        # A named global was judged where it was named; anything else is a call of a value
        # some earlier call returned, which a model file never needs.
        if not isinstance(callee, GlobalRef):
            self.report(
                FindingKind.UNRESOLVED_CALL,
                f"{opcode} calls a value that is not a named global",
                opcode=opcode,
                offset=offset,
            )
        return CallResult(callee, args)

    def build(self, offset: int) -> None:
        state = self.pop()
        target = self.top()
        if isinstance(target, GlobalRef):
            self.report(
                FindingKind.GLOBAL_STATE,
                f"BUILD sets state on {target.module}.{target.name} itself, not on an instance",
                module=target.module,
                name=target.name,
                opcode="BUILD",
                offset=offset,
            )
        elif isinstance(target, CallResult):
            target.state = state
            callee = target.callee
            if isinstance(callee, GlobalRef) and (callee.module, callee.name) in JOBLIB_WRAPPERS:
                self.skip_joblib_array(target, offset)

    # -- joblib's arrays, written raw after their wrapper --------------------------------------

    def skip_joblib_array(self, wrapper: CallResult, offset: int) -> None:
        shape, itemsize, has_objects, aligned = joblib_layout(wrapper.state)
        if shape is None:
            raise _Malformed(f"holds a joblib array at {offset} whose size cannot be worked out")
        self.joblib_arrays += 1
        if has_objects:
            # joblib reads a nested pickle with a fresh unpickler; walk it the same way
            nested = _walk(self.stream, self.report)
            if not nested.complete:
                raise _Malformed(f"holds a joblib object array at {offset} that does not end")
            return
        if aligned:
            padding = self.stream.read(1)
            if len(padding) != 1 or padding[0] in _OPCODE_BYTES:
                raise _Malformed(f"holds a joblib array at {offset} without its padding byte")
            self.skip(padding[0])
        count = 1
        for extent in shape:
            count *= extent
        start = self.stream.tell()
        first = self.stream.read(1)
        self.stream.seek(start)
        # A plain unpickler reads the byte after BUILD as an opcode. Aligned arrays start with
        # a padding length, which is none; an old unaligned array whose first byte is one
        # says different things to joblib and to pickle, so it is not judged clean.
        if not aligned and count * itemsize and first and first[0] in _OPCODE_BYTES:
            raise _Malformed(f"holds an unaligned joblib array at {offset} that reads as code")
        self.skip(count * itemsize)

    def skip(self, length: int) -> None:
        start = self.stream.tell()
        end = self.stream.seek(0, io.SEEK_END)
        if start + length > end:
            raise _Malformed("ends inside a joblib array")
        self.stream.seek(start + length)


def _memo_key(arg: object) -> int:
    if not isinstance(arg, int):  # pragma: no cover - genops decodes every memo index to an int
        raise _Malformed(f"has a memo index {arg!r} that is not a number")
    return arg


def _pairs(items: list[Any], into: dict[Any, Any]) -> None:
    if len(items) % 2:
        raise _Malformed("sets a key without a value")
    for key, value in zip(items[::2], items[1::2], strict=True):
        try:
            into[key] = value
        except (TypeError, RecursionError):  # a list or a very deep tuple as a key
            continue


_PUSH_ARG = frozenset(
    {
        "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
        "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
        "BYTEARRAY8", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
        "FLOAT", "BINFLOAT",
    }
)  # fmt: skip
_PUSH_CONST: dict[str, Callable[[], Any]] = {
    "NONE": lambda: None,
    "NEWTRUE": lambda: True,
    "NEWFALSE": lambda: False,
    "EMPTY_TUPLE": tuple,
    "EMPTY_LIST": list,
    "EMPTY_DICT": dict,
    "EMPTY_SET": list,  # a set's items need not be hashable here; a list holds them as well
    "NEXT_BUFFER": lambda: UNKNOWN,
}
_NO_EFFECT = frozenset({"FRAME", "READONLY_BUFFER"})


def _step(machine: _Machine, name: str, arg: Any, offset: int) -> None:
    """Apply one opcode (but STOP) to the machine."""
    if name in _PUSH_ARG:
        machine.stack.append(arg)
    elif name in _PUSH_CONST:
        machine.stack.append(_PUSH_CONST[name]())
    elif name in _NO_EFFECT:
        pass
    elif name == "PROTO":
        machine.protocol = arg
    elif name in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"):
        key = len(machine.memo) if name == "MEMOIZE" else _memo_key(arg)
        machine.memo[key] = machine.top()
    elif name in ("GET", "BINGET", "LONG_BINGET"):
        machine.stack.append(machine.memo.get(_memo_key(arg), UNKNOWN))
    elif name in ("GLOBAL", "STACK_GLOBAL", "EXT1", "EXT2", "EXT4", "INST"):
        _step_global(machine, name, arg, offset)
    elif name in ("REDUCE", "NEWOBJ", "NEWOBJ_EX", "OBJ", "BUILD", "PERSID", "BINPERSID"):
        _step_call(machine, name, arg, offset)
    else:
        _step_structure(machine, name)


def _step_global(machine: _Machine, name: str, arg: Any, offset: int) -> None:
    if name in ("GLOBAL", "INST"):
        module, _, attribute = str(arg).partition(" ")
        callee = machine.named(module, attribute, name, offset)
        if name == "GLOBAL":
            machine.stack.append(callee)
        else:
            args = tuple(machine.pop_mark())
            machine.stack.append(machine.call(callee, args, name, offset))
    elif name == "STACK_GLOBAL":
        attribute, module = machine.pop(), machine.pop()
        if isinstance(module, str) and isinstance(attribute, str):
            machine.stack.append(machine.named(module, attribute, name, offset))
        else:
            machine.report(
                FindingKind.UNRESOLVED_GLOBAL,
                "STACK_GLOBAL names a global whose module or name is not a constant string",
                opcode=name,
                offset=offset,
            )
            machine.stack.append(UNKNOWN)
    else:
        machine.report(
            FindingKind.EXTENSION_CODE,
            f"{name} names global number {arg} of the copyreg extension registry",
            opcode=name,
            offset=offset,
        )
        machine.stack.append(UNKNOWN)


def _step_call(machine: _Machine, name: str, arg: Any, offset: int) -> None:
    if name == "BUILD":
        machine.build(offset)
    elif name == "PERSID":  # the loader's persistent_load decides; torch's reads storages
        machine.stack.append(UNKNOWN)
    elif name == "BINPERSID":
        machine.pop()
        machine.stack.append(UNKNOWN)
    elif name == "OBJ":
        items = machine.pop_mark()
        if not items:
            raise _Malformed("has an OBJ without a class")
        machine.stack.append(machine.call(items[0], tuple(items[1:]), name, offset))
    else:
        if name == "NEWOBJ_EX":
            machine.pop()  # keyword arguments
        args = machine.pop()
        callee = machine.pop()
        machine.stack.append(machine.call(callee, args, name, offset))


def _step_structure(machine: _Machine, name: str) -> None:
    if name == "MARK":
        machine.marks.append(machine.stack)
        machine.stack = []
    elif name == "POP":
        if machine.stack:
            machine.stack.pop()
        else:
            machine.pop_mark()
    elif name == "POP_MARK":
        machine.pop_mark()
    elif name == "DUP":
        machine.stack.append(machine.top())
    elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
        count = int(name[-1])
        items = [machine.pop() for _ in range(count)]
        machine.stack.append(tuple(reversed(items)))
    elif name in ("TUPLE", "FROZENSET", "LIST", "DICT"):
        items = machine.pop_mark()
        if name == "DICT":
            made: dict[Any, Any] = {}
            _pairs(items, made)
            machine.stack.append(made)
        else:
            machine.stack.append(items if name == "LIST" else tuple(items))
    elif name in ("APPEND", "SETITEM"):
        value = machine.pop()
        key = machine.pop() if name == "SETITEM" else None
        _add(machine.top(), [key, value] if name == "SETITEM" else [value])
    elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
        items = machine.pop_mark()
        _add(machine.top(), items)
    else:  # pragma: no cover - every opcode pickletools knows is handled above
        raise _Malformed(f"has an opcode {name} the scanner does not know")


def _add(container: object, items: list[Any]) -> None:
    if isinstance(container, dict):
        _pairs(items, container)
    elif isinstance(container, list):
        container.extend(items)
    # appending to anything else calls its append or extend: the container came from a
    # call of an allowlisted global (or was flagged), so there is nothing more to judge


class _Bounded(io.RawIOBase):
    """A read-only view of a stream that never reads past its end or a line past ``max_line``.

    ``pickletools`` asks for as many bytes as a length field says, and reads text opcodes
    with ``readline``; both would let a few hostile bytes claim gigabytes of memory.
    """

    def __init__(self, stream: IO[bytes], max_line: int) -> None:
        super().__init__()
        self.stream = stream
        self.max_line = max_line
        position = stream.tell()
        self.size = stream.seek(0, io.SEEK_END)
        stream.seek(position)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.stream.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.stream.seek(offset, whence)

    def read(self, size: int | None = -1) -> bytes:
        left = max(self.size - self.stream.tell(), 0)
        return self.stream.read(left if size is None or size < 0 else min(size, left))

    def readline(self, size: int | None = -1) -> bytes:
        limit = self.max_line if size is None or size < 0 else min(size, self.max_line)
        return self.stream.readline(limit)


MAX_LINE_BYTES = 64 << 20
"""The longest text line (protocol 0) the walk reads; a longer one is a malformed pickle."""


def _ops(stream: IO[bytes]) -> Iterator[tuple[pickletools.OpcodeInfo, Any, int | None]]:
    return pickletools.genops(stream)


def _walk(stream: IO[bytes], report: Callable[..., None]) -> PickleWalk:
    machine = _Machine(stream, report)
    walk = PickleWalk()
    offset = stream.tell()
    try:
        # genops decodes a STRING's escapes, warning (DeprecationWarning) on invalid ones
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for opcode, arg, position in _ops(stream):
                offset = position if position is not None else offset
                if opcode.name == "STOP":
                    walk.value = machine.stack[-1] if machine.stack else None
                    walk.complete = True
                    break
                _step(machine, opcode.name, arg, offset)
    except _Malformed as exc:
        report(FindingKind.MALFORMED, f"the pickle {exc}", offset=offset)
    except (ValueError, OverflowError, MemoryError) as exc:
        # pickletools' own words for bytes that are not a pickle: unknown opcode, truncation
        report(FindingKind.MALFORMED, f"not a readable pickle: {exc}", offset=offset)
    walk.protocol = machine.protocol
    walk.joblib_arrays = machine.joblib_arrays
    walk.end = stream.tell()
    return walk


def walk_pickle(stream: IO[bytes], report: Callable[..., None]) -> PickleWalk:
    """Walk the pickle that starts at ``stream``'s position, reporting each finding.

    ``report(kind, detail, **where)`` is called for every finding; ``where`` holds the
    ``module``, ``name``, ``opcode`` and ``offset`` that apply. The stream is left at the
    end of the pickle (its STOP), or where the walk had to stop.
    """
    return _walk(_Bounded(stream, MAX_LINE_BYTES), report)  # type: ignore[arg-type]
