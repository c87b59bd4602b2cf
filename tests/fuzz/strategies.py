"""Hypothesis strategies for hostile files: JSON shapes, pickle opcode streams, mutated bytes.

Pickles are only ever built here, never loaded: the code under test reads them through the
safe loader or the scanner, and a payload that ran would leave a file the sandbox notices.
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import struct
import warnings
import zipfile
from typing import Any

from hypothesis import strategies as st

#: What a payload that ran would create in the working directory (the sandbox checks it).
PAYLOAD_FILE = "weightbase-fuzz-payload-ran"

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
#: JSON nested deeper than a recursive parser's stack: ``[[[...]]]`` or ``{"a":{"a":...}}``.
DEEP_JSON = st.tuples(
    st.integers(1, 100_000), st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")])
).map(lambda depth_pair: depth_pair[1][0] * depth_pair[0] + b"1" + depth_pair[1][1] * depth_pair[0])

# -- bytes ---------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` after a few flips, insertions, deletions, truncations or splices."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "extend"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        if how == "flip" and out:
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "set" and out:
            out[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01]))
        elif how == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif how == "delete":
            del out[at : at + draw(st.integers(1, 16))]
        elif how == "truncate":
            del out[at:]
        else:
            out += draw(st.binary(max_size=64))
    return bytes(out)


def bytes_like(data: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, ``data`` mutated, or ``data`` cut short: what a damaged copy looks like."""
    return (
        st.binary(max_size=256) | mutated(data) | st.integers(0, len(data)).map(lambda n: data[:n])
    )


# -- pickles ---------------------------------------------------------------------------------

_GLOBALS = [
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "FloatStorage"),
    ("torch", "Size"),
    ("builtins", "eval"),
    ("builtins", "getattr"),
    ("builtins", "set"),
    ("os", "system"),
    ("posix", "system"),
    ("subprocess", "call"),
    ("__builtin__", "exec"),
    ("operator", "attrgetter"),
    ("torch.serialization", "_get_layout"),
]
_TEXT = st.sampled_from(["touch " + PAYLOAD_FILE, "weight", "0", "cpu", "storage", ""]) | st.text(
    max_size=12
)


def _length_prefixed(width: str, payload: bytes, wrong_length: int | None) -> bytes:
    length = len(payload) if wrong_length is None else wrong_length
    size = struct.calcsize(width)
    length %= 1 << (8 * size - (1 if width.islower() else 0))
    return struct.pack(width, length) + payload


@st.composite
def _argument(draw: st.DrawFn, kind: str) -> bytes:
    """The argument bytes of an opcode whose argument is ``kind`` (pickletools' names)."""
    wrong = draw(st.none() | st.none() | st.integers(0, 1 << 40))
    text = draw(_TEXT)
    raw = draw(st.binary(max_size=12))
    if kind in ("uint1", "uint2", "uint4", "uint8", "int4"):
        width = {"uint1": "<B", "uint2": "<H", "uint4": "<I", "uint8": "<Q", "int4": "<i"}[kind]
        size = struct.calcsize(width)
        return draw(
            st.integers(0, 4).map(lambda n: struct.pack(width, n))
            | st.binary(min_size=size, max_size=size)
        )
    if kind == "float8":
        return struct.pack(">d", draw(st.floats()))
    if kind in ("long1", "long4"):
        return _length_prefixed("<B" if kind == "long1" else "<i", raw, wrong)
    if kind in ("string1", "bytes1"):
        return _length_prefixed("<B", raw, wrong)
    if kind in ("string4", "bytes4", "unicodestring4"):
        payload = text.encode() if kind.startswith("unicode") else raw
        return _length_prefixed("<i" if kind == "string4" else "<I", payload, wrong)
    if kind in ("bytes8", "bytearray8", "unicodestring8"):
        payload = text.encode() if kind.startswith("unicode") else raw
        return _length_prefixed("<Q", payload, wrong)
    if kind == "unicodestring1":
        return _length_prefixed("<B", text.encode(), wrong)
    if kind == "stringnl":
        return repr(text).encode("ascii", "replace") + b"\n"
    if kind == "stringnl_noescape":
        return text.encode("ascii", "replace") + b"\n"
    if kind == "stringnl_noescape_pair":
        module, name = draw(st.sampled_from(_GLOBALS))
        return f"{module}\n{name}\n".encode()
    if kind == "unicodestringnl":
        return text.encode("raw-unicode-escape") + b"\n"
    if kind == "decimalnl_short":
        return draw(st.sampled_from([b"00\n", b"01\n", b"7\n", b"-1\n", b"x\n"]))
    if kind == "decimalnl_long":
        return draw(st.sampled_from([b"7L\n", b"-99999999999999999999L\n", b"L\n"]))
    if kind == "floatnl":
        return draw(st.sampled_from([b"0.5\n", b"nan\n", b"1e400\n", b"-\n"]))
    raise AssertionError(f"no strategy for pickle argument {kind}")


_OPCODES = list(pickletools.opcodes)
_PUSH_GLOBAL = [op for op in _OPCODES if op.name in ("GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD")]


@st.composite
def opcode_stream(draw: st.DrawFn) -> bytes:
    """A stream of random opcodes with arguments of their kind, most often ending in STOP.

    Most such streams are not valid pickles (the stack does not add up); some are.
    """
    out = bytearray()
    if draw(st.booleans()):
        out += b"\x80" + bytes([draw(st.integers(0, 6))])
    for _ in range(draw(st.integers(0, 24))):
        op = draw(st.sampled_from(_OPCODES) | st.sampled_from(_PUSH_GLOBAL))
        out += op.code.encode("latin-1")
        if op.arg is not None:
            out += draw(_argument(op.arg.name))
    if draw(st.integers(0, 9)):
        out += b"."
    return bytes(out)


def is_valid_pickle(data: bytes) -> bool:
    """Whether pickletools can walk ``data`` to its STOP (it only reads; nothing is loaded)."""
    try:
        pickletools.dis(data, out=io.StringIO())
    except Exception:
        return False
    return True


class Payload:
    """Pickles to a call of ``os.system`` (only built here, never loaded)."""

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, ("touch " + PAYLOAD_FILE,))


PICKLABLE = st.recursive(
    JSON_SCALARS | st.binary(max_size=8) | st.just(Payload()),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=4)
    ),
    max_leaves=10,
)


def object_pickle() -> st.SearchStrategy[bytes]:
    """A valid pickle of random containers and scalars (sometimes with a payload), any protocol."""
    return st.builds(pickle.dumps, PICKLABLE, st.integers(0, pickle.HIGHEST_PROTOCOL))


def pickle_streams() -> st.SearchStrategy[bytes]:
    """Valid pickles, valid pickles mutated, and random opcode streams."""
    return object_pickle() | object_pickle().flatmap(mutated) | opcode_stream()


# -- archives --------------------------------------------------------------------------------


def zip_members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def zip_of(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a duplicate member name is one of the hostile shapes
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for name, content in members:
                archive.writestr(name, content)
    return buffer.getvalue()


@st.composite
def mutated_zip(draw: st.DrawFn, data: bytes) -> bytes:
    """The zip ``data`` with one member changed (its checksum kept right), dropped or added.

    A member named ``*.pkl`` may be swapped for a fuzzed pickle stream.
    """
    members = zip_members(data)
    index = draw(st.integers(0, len(members) - 1))
    name, content = members[index]
    how = draw(st.sampled_from(["mutate", "pickle", "drop", "add", "rename"]))
    if how == "mutate":
        members[index] = (name, draw(mutated(content)))
    elif how == "pickle":
        pkl = next((i for i, (n, _) in enumerate(members) if n.endswith(".pkl")), index)
        members[pkl] = (members[pkl][0], draw(pickle_streams()))
    elif how == "drop":
        del members[index]
    elif how == "add":
        prefix = name.split("/", 1)[0]
        extra = draw(st.sampled_from(["data/9", "data/0", "version", "../escape", "data.pkl"]))
        members.append((f"{prefix}/{extra}", draw(st.binary(max_size=64))))
    else:
        members[index] = (draw(st.sampled_from(["x", "/abs", "../up", name + "/"])), content)
    return zip_of(members)


def dumps_json(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False).encode()
