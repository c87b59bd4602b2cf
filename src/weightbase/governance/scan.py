"""Scan model files for code a loader would run, without importing or executing any of it.

Pickle-based files (torch zip archives and their ``data.pkl``, torch's legacy format, raw
pickles, joblib dumps, NumPy object arrays) are walked opcode by opcode; every global they
name is judged against an **allowlist** of what model files legitimately reference
(:mod:`weightbase.governance.scan_allowlist`). Denylists such as picklescan's and
modelscan's have had published bypasses through callables and opcodes nobody listed
(``INST``, a memoized ``STACK_GLOBAL``, ``importlib``, ``operator.methodcaller``,
``pkgutil.resolve_name``, ``marshal``), so here anything not known to be harmless is a
finding. Archives (zip, tar, compressed streams) are scanned inside, down to a depth
limit; safetensors headers are checked by the store's own parser; a file the scanner
cannot judge is reported as such, never as clean.

    report = scan_path("checkpoints/")
    if not report.clean:
        for finding in report.findings:
            print(finding.location, finding.global_name, finding.detail)
"""

from __future__ import annotations

import ast
import bz2
import io
import lzma
import os
import re
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any

import lz4.frame

from weightbase.errors import MalformedFileError, NotFound
from weightbase.governance.scan_allowlist import ALLOWLIST
from weightbase.governance.scan_pickle import walk_pickle
from weightbase.governance.scan_records import Finding, FindingKind, ScannedFile, ScanReport
from weightbase.tensors.formats.safetensors import MAX_HEADER_BYTES, parse_header

__all__ = [
    "ALLOWLIST",
    "MAX_DEPTH",
    "Finding",
    "FindingKind",
    "ScanReport",
    "ScannedFile",
    "scan_bytes",
    "scan_path",
    "scan_pickled",
    "scan_pickled_files",
]

MAX_DEPTH = 4
"""Archives nested deeper than this (a zip in a zip in a zip ...) are reported, not opened."""

MAX_MEMBER_BYTES = 64 << 30
"""An archive member or decompressed stream larger than this is reported, not scanned."""

# Suffixes of files that loaders read with pickle; other files are pickles only if they say so.
PICKLE_SUFFIXES = frozenset(
    {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".ckpt", ".sav", ".p"}
)
# Files no model loader executes: configs, vocabularies, model cards.
TEXT_SUFFIXES = frozenset({".json", ".txt", ".md"})
# NumPy files, which hold pickles when their arrays hold objects.
_NUMPY_SUFFIXES = frozenset({".npy", ".npz"})
# Files torch.load reads, which it writes as zip archives (or, long ago, as pickles).
_TORCH_SUFFIXES = frozenset({".pt", ".pth", ".ckpt", ".bin"})

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PICKLES = 5  # magic, protocol, system info, the object, the storage keys
# What a torch archive holds beside its pickles: storage bytes and small version records.
_TORCH_DATA = re.compile(
    r"(.*/)?(data/\d+|version|byteorder|\.format_version|\.storage_alignment|\.data/.*)"
)
_SAFETENSORS_HEAD = re.compile(rb"\{\s*\"", re.ASCII)
_COPY_CHUNK = 1 << 20

Report = Callable[..., None]


def scan_path(path: str | os.PathLike[str], *, max_depth: int = MAX_DEPTH) -> ScanReport:
    """Scan a file, or every file under a folder (but those in folders named ``.*``)."""
    target = Path(path)
    scanner = _Scanner(max_depth)
    if target.is_dir():
        for file in _walk_folder(target):
            scanner.file(file)
    elif target.exists():
        scanner.file(target)
    else:
        raise NotFound(f"no file or folder at {target}", path=str(target))
    return scanner.report(str(target))


def scan_bytes(data: bytes, *, name: str = "<bytes>", max_depth: int = MAX_DEPTH) -> ScanReport:
    """Scan a file's bytes held in memory; ``name`` stands for its path (its suffix counts)."""
    scanner = _Scanner(max_depth)
    scanner.stream(io.BytesIO(data), name, None, depth=0)
    return scanner.report(name)


def scan_pickled(path: str | os.PathLike[str], *, max_depth: int = MAX_DEPTH) -> ScanReport | None:
    """Scan the files at ``path`` that a loader reads with pickle; None when there are none.

    What a push checks before it stores anything: a torch, pickle, joblib or NumPy file, or
    those of them in a folder (dot-folders too, since importing a folder reads them all).
    Safetensors files, configs and other files are left out: nothing in them is unpickled.
    """
    target = Path(path)
    if not target.exists():
        raise NotFound(f"no file or folder at {target}", path=str(target))
    files = [target]
    if target.is_dir():
        # what links out of the folder is not read here: the import refuses it
        root = os.path.realpath(target)
        files = []
        for folder, subfolders, names in os.walk(target):
            subfolders.sort()
            files.extend(
                Path(folder) / name
                for name in sorted(names)
                if os.path.commonpath([root, os.path.realpath(Path(folder) / name)]) == root
            )
    pickled = [file for file in files if _is_pickled(file)]
    if not pickled:
        return None
    scanner = _Scanner(max_depth)
    for file in pickled:
        scanner.file(file)
    return scanner.report(str(target))


def scan_pickled_files(
    files: Iterable[tuple[str, bytes]], *, target: str, max_depth: int = MAX_DEPTH
) -> ScanReport | None:
    """``scan_pickled`` for files held in memory, each ``(name, bytes)``: those of them a
    loader reads with pickle are scanned; None when there are none."""
    scanner = _Scanner(max_depth)
    found = False
    for name, data in files:
        if _is_pickled_name(name, data[:2]):
            found = True
            scanner.stream(io.BytesIO(data), name, None, depth=0)
    return scanner.report(target) if found else None


def _is_pickled(file: Path) -> bool:
    """By its suffix, or, for a file with none of the known ones, by a pickle's first bytes."""
    try:
        if not stat.S_ISREG(os.stat(file).st_mode):
            return False  # opening a FIFO would block; the import refuses what is not a file
        with open(file, "rb") as stream:
            head = stream.read(2)
    except OSError:
        head = b""  # the import reports what it cannot read
    return _is_pickled_name(file.name, head)


def _is_pickled_name(name: str, head: bytes) -> bool:
    suffix = Path(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES or suffix in _NUMPY_SUFFIXES:
        return True
    if suffix == ".safetensors" or suffix in TEXT_SUFFIXES:
        return False  # a safetensors header length can start with what looks like PROTO
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _prefixed(report: Report, what: str) -> Report:
    """``report`` with malformed findings saying first what the file is not."""

    def prefixed(kind: FindingKind, detail: str, **where: Any) -> None:
        report(kind, f"{what}: {detail}" if kind == FindingKind.MALFORMED else detail, **where)

    return prefixed


def _walk_folder(root: Path) -> Iterator[Path]:
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(files):
            yield Path(folder) / name


class _Scanner:
    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.findings: list[Finding] = []
        self.scanned: list[ScannedFile] = []

    def report(self, target: str) -> ScanReport:
        return ScanReport(target, tuple(self.findings), tuple(self.scanned))

    def reporter(self, path: str, member: str | None) -> Report:
        def report(kind: FindingKind, detail: str, **where: Any) -> None:
            self.findings.append(Finding(kind, path, detail, member=member, **where))

        return report

    def judged(self, path: str, member: str | None, format: str) -> None:
        self.scanned.append(ScannedFile(path, format, member))

    # -- files and what they hold ---------------------------------------------------------------

    def file(self, path: Path) -> None:
        report = self.reporter(str(path), None)
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                report(FindingKind.UNSUPPORTED, "not a regular file; not scanned")
                return
            with open(path, "rb") as stream:
                self.stream(stream, str(path), None, depth=0)
        except OSError as exc:
            report(FindingKind.UNSUPPORTED, f"cannot be read: {exc.strerror or exc}")

    def stream(self, stream: IO[bytes], path: str, member: str | None, *, depth: int) -> None:
        """Judge one file or member by what its first bytes say it is (its suffix second)."""
        report = self.reporter(path, member)
        name = member.rsplit("!", 1)[-1] if member else path
        suffix = PurePosixPath(name).suffix.lower()
        head = stream.read(512)
        stream.seek(0)
        if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            self.archive(stream, path, member, depth, report, self.zip_members)
        elif head[257:262] == b"ustar":
            self.archive(stream, path, member, depth, report, self.tar_members)
        elif (codec := _compression(head)) is not None:
            self.decompressed(stream, path, member, depth, report, codec, name)
        elif head.startswith(b"\x93NUMPY"):
            self.npy(stream, path, member, report)
        elif suffix == ".safetensors" or _SAFETENSORS_HEAD.match(head, 8):
            self.safetensors(stream, path, member, report)
        elif (head[:1] == b"\x80" and head[1:2] < b"\x06") or suffix in PICKLE_SUFFIXES:
            if head[:1] != b"\x80" and suffix in _TORCH_SUFFIXES:
                report = _prefixed(
                    report, "not a torch archive (neither a zip archive nor a pickle)"
                )
            self.pickles(stream, path, member, report)
        elif suffix in TEXT_SUFFIXES:
            self.judged(path, member, "text")
        else:
            self.judged(path, member, "unsupported")
            report(FindingKind.UNSUPPORTED, "not a format the scanner can judge; not scanned")

    def pickles(self, stream: IO[bytes], path: str, member: str | None, report: Report) -> None:
        walk = walk_pickle(stream, report)
        if walk.complete and walk.value == _TORCH_LEGACY_MAGIC:
            for _ in range(_TORCH_LEGACY_PICKLES - 1):
                if not walk_pickle(stream, report).complete:
                    break
            self.judged(path, member, "torch-legacy")
            return  # what follows is storage bytes
        arrays = walk.joblib_arrays
        # Several pickles in a row are read by loaders that call load() more than once.
        while walk.complete and stream.read(1) == b"\x80":
            stream.seek(-1, io.SEEK_CUR)
            walk = walk_pickle(stream, report)
            arrays += walk.joblib_arrays
        self.judged(path, member, "joblib" if arrays else "pickle")

    def npy(self, stream: IO[bytes], path: str, member: str | None, report: Report) -> None:
        self.judged(path, member, "numpy")
        try:
            has_objects = _npy_has_objects(stream)
        except MalformedFileError as exc:
            report(FindingKind.MALFORMED, str(exc))
            return
        if has_objects:  # np.save pickles an object array right after the header
            walk_pickle(stream, report)

    def safetensors(self, stream: IO[bytes], path: str, member: str | None, report: Report) -> None:
        self.judged(path, member, "safetensors")
        size = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        head = stream.read(8)
        if len(head) == 8:
            (length,) = struct.unpack("<Q", head)
            if length <= MAX_HEADER_BYTES and 8 + length <= size:
                head += stream.read(length)
        try:
            parse_header(member or path, size, head)
        except MalformedFileError as exc:
            report(FindingKind.MALFORMED, f"not a valid safetensors file: {exc}")

    # -- archives -------------------------------------------------------------------------------

    def archive(
        self,
        stream: IO[bytes],
        path: str,
        member: str | None,
        depth: int,
        report: Report,
        members: Callable[[IO[bytes], str, str | None, int], None],
    ) -> None:
        if depth >= self.max_depth:
            report(FindingKind.TOO_DEEP, f"an archive nested more than {self.max_depth} deep")
            return
        try:
            members(stream, path, member, depth + 1)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
            report(FindingKind.MALFORMED, f"not a readable archive: {exc}")

    def zip_members(self, stream: IO[bytes], path: str, outer: str | None, depth: int) -> None:
        with zipfile.ZipFile(stream) as archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
            names = [info.filename for info in infos]
            torch = any(PurePosixPath(name).name == "data.pkl" for name in names)
            self.judged(path, outer, "torch-zip" if torch else "zip")
            for info in infos:
                member = _nested(outer, info.filename)
                if torch and _TORCH_DATA.fullmatch(info.filename):
                    continue
                report = self.reporter(path, member)
                if info.file_size > MAX_MEMBER_BYTES:
                    report(FindingKind.UNSUPPORTED, f"{info.file_size} bytes; not scanned")
                    continue
                try:
                    with archive.open(info) as source, _spooled(source) as copy:
                        self.stream(copy, path, member, depth=depth)
                except (zipfile.BadZipFile, NotImplementedError, RuntimeError, zlib.error) as exc:
                    report(FindingKind.MALFORMED, f"cannot be read from the archive: {exc}")

    def tar_members(self, stream: IO[bytes], path: str, outer: str | None, depth: int) -> None:
        with tarfile.open(fileobj=stream, mode="r:") as archive:
            self.judged(path, outer, "tar")
            for info in archive:
                member = _nested(outer, info.name)
                report = self.reporter(path, member)
                if info.isdir():
                    continue
                source = archive.extractfile(info) if info.isfile() else None
                if source is None:
                    report(FindingKind.UNSUPPORTED, "a link or special file; not scanned")
                    continue
                if info.size > MAX_MEMBER_BYTES:
                    report(FindingKind.UNSUPPORTED, f"{info.size} bytes; not scanned")
                    continue
                with source, _spooled(source) as copy:
                    self.stream(copy, path, member, depth=depth)

    def decompressed(
        self,
        stream: IO[bytes],
        path: str,
        member: str | None,
        depth: int,
        report: Report,
        codec: str,
        name: str,
    ) -> None:
        if depth >= self.max_depth:
            report(FindingKind.TOO_DEEP, f"a stream compressed more than {self.max_depth} deep")
            return
        inner = PurePosixPath(name).name
        for suffix in (".gz", ".bz2", ".xz", ".lzma", ".lz4", ".z"):
            if inner.lower().endswith(suffix) and len(inner) > len(suffix):
                inner = inner[: -len(suffix)]
        try:
            with _spooled(_Decompressing(stream, codec)) as copy:
                self.judged(path, member, codec)
                self.stream(copy, path, _nested(member, inner), depth=depth + 1)
        except _TooLarge:
            report(FindingKind.UNSUPPORTED, f"decompresses past {MAX_MEMBER_BYTES} bytes")
        except (OSError, EOFError, ValueError, RuntimeError, lzma.LZMAError, zlib.error) as exc:
            report(FindingKind.MALFORMED, f"not a readable {codec} stream: {exc}")


def _nested(outer: str | None, name: str) -> str:
    return name if outer is None else f"{outer}!{name}"


class _TooLarge(Exception):
    """A member or stream that would be copied past ``MAX_MEMBER_BYTES``."""


@contextmanager
def _spooled(source: IO[bytes] | _Decompressing) -> Iterator[IO[bytes]]:
    """A seekable copy of ``source``, in memory while small, on disk beyond."""
    with tempfile.SpooledTemporaryFile(max_size=64 << 20) as copy:
        copied = 0
        while piece := source.read(_COPY_CHUNK):
            copied += len(piece)
            if copied > MAX_MEMBER_BYTES:
                raise _TooLarge
            copy.write(piece)
        copy.seek(0)
        yield copy


def _compression(head: bytes) -> str | None:
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith((b"\xfd7zXZ\x00", b"]\x00\x00")):
        return "xz"
    if head.startswith(b"\x04\x22\x4d\x18"):
        return "lz4"
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return "zlib"
    return None


class _Decompressing:
    """Reads a compressed stream's decompressed bytes a piece at a time."""

    def __init__(self, stream: IO[bytes], codec: str) -> None:
        self.stream = stream
        self.decompressor: Any = {
            "gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
            "zlib": zlib.decompressobj,
            "bz2": bz2.BZ2Decompressor,
            "xz": lambda: lzma.LZMADecompressor(lzma.FORMAT_AUTO),
            "lz4": lz4.frame.LZ4FrameDecompressor,
        }[codec]()
        self.pending = b""

    def read(self, size: int) -> bytes:
        while not self.pending:
            compressed = self.stream.read(size)
            if not compressed:
                return b""
            self.pending = self.decompressor.decompress(compressed)
        piece, self.pending = self.pending[:size], self.pending[size:]
        return piece


MAX_NPY_HEADER_BYTES = 1 << 20


def _npy_has_objects(stream: IO[bytes]) -> bool:
    """Read an ``.npy`` header; True if its dtype holds Python objects (a pickle follows)."""
    start = stream.read(8)
    if len(start) < 8 or start[6] not in (1, 2, 3):
        raise MalformedFileError("not a NumPy file: unknown format version")
    size_format = "<H" if start[6] == 1 else "<I"
    size_bytes = stream.read(struct.calcsize(size_format))
    if len(size_bytes) != struct.calcsize(size_format):
        raise MalformedFileError("NumPy header ends early")
    (length,) = struct.unpack(size_format, size_bytes)
    text = stream.read(length) if length <= MAX_NPY_HEADER_BYTES else b""
    if len(text) != length:
        raise MalformedFileError(f"NumPy header of {length} bytes is too long or cut short")
    try:
        header = ast.literal_eval(text.decode("utf-8" if start[6] == 3 else "latin-1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError, UnicodeDecodeError) as exc:
        raise MalformedFileError(f"NumPy header is not a literal: {exc}") from None
    if not isinstance(header, dict) or "descr" not in header:
        raise MalformedFileError("NumPy header has no descr")
    return _descr_has_objects(header["descr"])


def _descr_has_objects(descr: object) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list):
        return any(
            isinstance(field, tuple) and len(field) >= 2 and _descr_has_objects(field[1])
            for field in descr
        )
    raise MalformedFileError(f"NumPy header has a descr {descr!r} of no known form")
