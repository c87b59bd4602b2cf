"""Hostile model files, built opcode by opcode in code, for the scanner's tests.

Each case is bytes and the findings the scanner must report (global, opcode, offset,
member). The payloads would write a marker file if anything ever loaded them; the tests
only scan them, and check that the marker never appears. Nothing here calls ``pickle.load``.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Expected", "HostileCase", "Pickle", "hostile_corpus", "zip_of"]


@dataclass(frozen=True)
class Expected:
    """One finding the scanner must report."""

    kind: str
    module: str | None
    name: str | None
    opcode: str | None
    offset: int | None
    member: str | None = None


@dataclass(frozen=True)
class HostileCase:
    """A file's bytes, the name it is scanned under, and every finding it must raise."""

    id: str
    data: bytes
    expected: tuple[Expected, ...]
    filename: str = "model.pkl"


@dataclass
class Pickle:
    """A pickle assembled from raw opcodes; each method returns the offset it wrote at."""

    protocol: int = 4
    parts: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        if self.protocol >= 2:
            self.raw(pickle.PROTO + bytes([self.protocol]))

    def raw(self, data: bytes) -> int:
        offset = len(self.parts)
        self.parts += data
        return offset

    def text(self, value: str) -> int:
        encoded = value.encode()
        if len(encoded) < 256:
            return self.raw(pickle.SHORT_BINUNICODE + bytes([len(encoded)]) + encoded)
        return self.raw(pickle.BINUNICODE + struct.pack("<I", len(encoded)) + encoded)

    def global_(self, module: str, name: str) -> int:
        return self.raw(pickle.GLOBAL + f"{module}\n{name}\n".encode())

    def stack_global(self, module: str, name: str) -> int:
        self.text(module)
        self.text(name)
        return self.raw(pickle.STACK_GLOBAL)

    def call(self, *args: str) -> int:
        """Push ``args`` as a tuple and REDUCE; returns the REDUCE's offset."""
        self.raw(pickle.MARK)
        for arg in args:
            self.text(arg)
        self.raw(pickle.TUPLE)
        return self.raw(pickle.REDUCE)

    def bytes(self) -> bytes:
        return bytes(self.parts) + pickle.STOP


def _unsafe(
    module: str, name: str, opcode: str, offset: int, member: str | None = None
) -> Expected:
    return Expected("unsafe_global", module, name, opcode, offset, member)


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def hostile_corpus(marker: Path) -> list[HostileCase]:
    """Every hostile case; each payload would create ``marker`` if it ran."""
    shell = f"touch {marker}"
    python = f"open({str(marker)!r}, 'w').close()"
    cases: list[HostileCase] = []

    def add(case_id: str, built: Pickle, *expected: Expected, filename: str = "model.pkl") -> None:
        cases.append(HostileCase(case_id, built.bytes(), expected, filename))

    # os.system through GLOBAL + REDUCE, protocol 0 and 4
    for protocol in (0, 4):
        p = Pickle(protocol)
        at = p.global_("os", "system")
        p.call(shell)
        add(f"os.system-global-reduce-p{protocol}", p, _unsafe("os", "system", "GLOBAL", at))

    # os.system through STACK_GLOBAL whose strings come back out of the memo, three ways
    p = Pickle()
    p.text("os")
    p.raw(pickle.MEMOIZE)
    p.text("system")
    p.raw(pickle.MEMOIZE)
    p.raw(pickle.POP + pickle.POP)
    p.raw(pickle.BINGET + b"\x00" + pickle.BINGET + b"\x01")
    at = p.raw(pickle.STACK_GLOBAL)
    p.call(shell)
    add("os.system-stack-global-memoize-binget", p, _unsafe("os", "system", "STACK_GLOBAL", at))

    p = Pickle()
    p.text("os")
    p.raw(pickle.LONG_BINPUT + struct.pack("<I", 70000))
    p.raw(pickle.POP)
    p.text("system")
    p.raw(pickle.BINPUT + b"\x07")
    p.raw(pickle.POP)
    p.raw(pickle.LONG_BINGET + struct.pack("<I", 70000))
    p.raw(pickle.BINGET + b"\x07")
    at = p.raw(pickle.STACK_GLOBAL)
    p.call(shell)
    add("os.system-stack-global-long-binput", p, _unsafe("os", "system", "STACK_GLOBAL", at))

    p = Pickle()
    p.text("subprocess")
    p.raw(pickle.PUT + b"3\n" + pickle.POP)
    p.text("getoutput")
    p.raw(pickle.PUT + b"4\n" + pickle.POP)
    p.raw(pickle.GET + b"3\n" + pickle.GET + b"4\n" + pickle.DUP + pickle.POP)
    at = p.raw(pickle.STACK_GLOBAL)
    p.call(shell)
    add(
        "subprocess.getoutput-stack-global-put-get",
        p,
        _unsafe("subprocess", "getoutput", "STACK_GLOBAL", at),
    )

    # INST names and calls in one opcode; OBJ calls a class pushed before its arguments
    p = Pickle(0)
    p.raw(pickle.MARK)
    p.text(shell)
    at = p.raw(pickle.INST + b"os\nsystem\n")
    add("os.system-inst", p, _unsafe("os", "system", "INST", at))

    p = Pickle(1)
    p.raw(pickle.MARK)
    at = p.global_("os", "system")
    p.text(shell)
    p.raw(pickle.OBJ)
    add("os.system-obj", p, _unsafe("os", "system", "GLOBAL", at))

    p = Pickle()
    p.raw(pickle.MARK)
    at = p.stack_global("posix", "system")
    p.text(shell)
    p.raw(pickle.OBJ)
    add("posix.system-obj-stack-global", p, _unsafe("posix", "system", "STACK_GLOBAL", at))

    # eval and exec, also under their Python 2 name, which protocol 2 maps to builtins
    for name in ("eval", "exec"):
        p = Pickle()
        at = p.stack_global("builtins", name)
        p.call(python)
        add(f"builtins.{name}", p, _unsafe("builtins", name, "STACK_GLOBAL", at))
    p = Pickle(2)
    at = p.global_("__builtin__", "eval")
    p.call(python)
    add("__builtin__.eval-protocol-2", p, _unsafe("builtins", "eval", "GLOBAL", at))

    # importlib.import_module("os"), then getattr(os, "system"), then a call of what it returned
    p = Pickle()
    getattr_at = p.stack_global("builtins", "getattr")
    import_at = p.stack_global("importlib", "import_module")
    p.call("os")
    p.text("system")
    p.raw(pickle.TUPLE2)
    p.raw(pickle.REDUCE)
    p.text(shell)
    p.raw(pickle.TUPLE1)
    call_at = p.raw(pickle.REDUCE)
    add(
        "importlib.import_module-getattr-chain",
        p,
        _unsafe("builtins", "getattr", "STACK_GLOBAL", getattr_at),
        _unsafe("importlib", "import_module", "STACK_GLOBAL", import_at),
        Expected("unresolved_call", None, None, "REDUCE", call_at),
    )

    # operator.methodcaller("system", cmd)(os) and operator.attrgetter("system")(os)
    p = Pickle()
    caller_at = p.stack_global("operator", "methodcaller")
    p.call("system", shell)
    os_at = p.global_("os", "path")
    p.raw(pickle.TUPLE1)
    first_call = p.raw(pickle.REDUCE)
    add(
        "operator.methodcaller",
        p,
        _unsafe("operator", "methodcaller", "STACK_GLOBAL", caller_at),
        _unsafe("os", "path", "GLOBAL", os_at),
        Expected("unresolved_call", None, None, "REDUCE", first_call),
    )
    p = Pickle()
    getter_at = p.stack_global("operator", "attrgetter")
    p.call("system")
    add("operator.attrgetter", p, _unsafe("operator", "attrgetter", "STACK_GLOBAL", getter_at))

    # pkgutil.resolve_name("os:system"), marshal.loads(code), runpy, subprocess.Popen
    p = Pickle()
    at = p.stack_global("pkgutil", "resolve_name")
    p.call("os:system")
    add("pkgutil.resolve_name", p, _unsafe("pkgutil", "resolve_name", "STACK_GLOBAL", at))

    p = Pickle()
    at = p.stack_global("marshal", "loads")
    p.raw(pickle.SHORT_BINBYTES + b"\x04" + b"\xe3\x00\x00\x00")
    p.raw(pickle.TUPLE1 + pickle.REDUCE)
    add("marshal.loads", p, _unsafe("marshal", "loads", "STACK_GLOBAL", at))

    p = Pickle()
    at = p.stack_global("runpy", "run_path")
    p.call(str(marker.with_suffix(".py")))
    add("runpy.run_path", p, _unsafe("runpy", "run_path", "STACK_GLOBAL", at))

    p = Pickle()
    at = p.stack_global("subprocess", "Popen")
    p.raw(pickle.MARK)
    p.text("touch")
    p.text(str(marker))
    p.raw(pickle.LIST + pickle.TUPLE1 + pickle.NEWOBJ)
    add("subprocess.Popen-newobj", p, _unsafe("subprocess", "Popen", "STACK_GLOBAL", at))

    p = Pickle()
    at = p.stack_global("subprocess", "Popen")
    p.raw(pickle.EMPTY_TUPLE)
    p.raw(pickle.EMPTY_DICT)
    p.text("args")
    p.text(shell)
    p.raw(pickle.SETITEM + pickle.NEWOBJ_EX)
    add("subprocess.Popen-newobj-ex", p, _unsafe("subprocess", "Popen", "STACK_GLOBAL", at))

    # getattr(getattr(__import__("os"), "system"), "__call__")(cmd): a chain of getattrs
    p = Pickle()
    outer_at = p.global_("builtins", "getattr")
    inner_at = p.global_("builtins", "getattr")
    import_at = p.global_("builtins", "__import__")
    p.call("os")
    p.text("system")
    p.raw(pickle.TUPLE2)
    p.raw(pickle.REDUCE)
    p.text("__call__")
    p.raw(pickle.TUPLE2)
    p.raw(pickle.REDUCE)
    p.text(shell)
    p.raw(pickle.TUPLE1)
    last_call = p.raw(pickle.REDUCE)
    add(
        "builtins.getattr-chain",
        p,
        _unsafe("builtins", "getattr", "GLOBAL", outer_at),
        _unsafe("builtins", "getattr", "GLOBAL", inner_at),
        _unsafe("builtins", "__import__", "GLOBAL", import_at),
        Expected("unresolved_call", None, None, "REDUCE", last_call),
    )

    # extension codes name a global through copyreg's registry: unknown, so flagged
    for opcode, arg in (
        (pickle.EXT1, b"\x01"),
        (pickle.EXT2, b"\x02\x01"),
        (pickle.EXT4, b"\x01" * 4),
    ):
        p = Pickle()
        at = p.raw(opcode + arg)
        reduce_at = p.call(shell)
        name = {pickle.EXT1: "EXT1", pickle.EXT2: "EXT2", pickle.EXT4: "EXT4"}[opcode]
        add(
            f"extension-{name}",
            p,
            Expected("extension_code", None, None, name, at),
            Expected("unresolved_call", None, None, "REDUCE", reduce_at),
        )

    # STACK_GLOBAL whose module is the result of a call (str is allowed): cannot be resolved
    p = Pickle()
    p.stack_global("builtins", "str")
    p.call("os")
    p.text("system")
    at = p.raw(pickle.STACK_GLOBAL)
    reduce_at = p.call(shell)
    add(
        "stack-global-unresolved",
        p,
        Expected("unresolved_global", None, None, "STACK_GLOBAL", at),
        Expected("unresolved_call", None, None, "REDUCE", reduce_at),
    )

    # BUILD on a class itself sets attributes on it: model files only BUILD instances
    p = Pickle()
    p.stack_global("torch.storage", "UntypedStorage")
    p.raw(pickle.NONE + pickle.EMPTY_DICT)
    p.text("__reduce_ex__")
    p.raw(pickle.NONE + pickle.SETITEM + pickle.TUPLE2)
    build_at = p.raw(pickle.BUILD)
    add(
        "build-on-a-class",
        p,
        Expected("global_state", "torch.storage", "UntypedStorage", "BUILD", build_at),
    )

    # archives: a torch zip whose data.pkl is hostile, a pickle in a zip in a zip, a tar
    payload = Pickle()
    payload_at = payload.stack_global("os", "system")
    payload.call(shell)
    torch_zip = zip_of(
        {
            "archive/data.pkl": payload.bytes(),
            "archive/version": b"3\n",
            "archive/data/0": b"\0" * 8,
        }
    )
    cases.append(
        HostileCase(
            "torch-zip-hostile-data.pkl",
            torch_zip,
            (_unsafe("os", "system", "STACK_GLOBAL", payload_at, "archive/data.pkl"),),
            "model.pt",
        )
    )
    inner = zip_of({"weights/payload.pkl": payload.bytes()})
    cases.append(
        HostileCase(
            "zip-in-zip",
            zip_of({"readme.txt": b"fine", "inner.zip": inner}),
            (_unsafe("os", "system", "STACK_GLOBAL", payload_at, "inner.zip!weights/payload.pkl"),),
            "bundle.zip",
        )
    )
    cases.append(
        HostileCase(
            "torch-zip-in-tar",
            _tar_of({"ckpt/last.ckpt": torch_zip}),
            (
                _unsafe(
                    "os", "system", "STACK_GLOBAL", payload_at, "ckpt/last.ckpt!archive/data.pkl"
                ),
            ),
            "checkpoints.tar",
        )
    )
    return cases
