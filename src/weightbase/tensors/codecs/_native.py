"""Optional compiled kernels for the byte-grouped codec, built with cffi on first use.

Merging byte planes, splitting them and unpacking bit-packed planes each take
one C pass (``_native.c``) where NumPy takes several. Nothing is compiled at
import: the first call of :func:`kernels` builds the module into the user's
cache (about a second, once per source and Python version) and later
processes load it from there. Without cffi or a C compiler, or with
``WEIGHTBASE_NATIVE=0``, :func:`kernels` returns ``None`` and the codec uses
its NumPy code, which gives the same bytes.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Kernels", "kernels"]

_log = logging.getLogger(__name__)

_SOURCE = Path(__file__).with_name("_native.c")
_DECLARATIONS = """
void wb_merge2(const uint8_t *head, const uint8_t *rest, unsigned split, unsigned rest_mask,
               uint8_t *out, size_t count);
void wb_merge4_low(const uint8_t *head, const uint8_t *rest, const uint8_t *low, unsigned split,
                   unsigned rest_mask, uint8_t *out, size_t count);
void wb_merge4(const uint8_t *head, const uint8_t *rest, const uint8_t *high, const uint8_t *low,
               unsigned split, unsigned rest_mask, uint8_t *out, size_t count);
void wb_split4(const uint8_t *values, unsigned split, unsigned rest_mask, uint8_t *head,
               uint8_t *rest, uint8_t *high, uint8_t *low, size_t count);
void wb_split2(const uint8_t *values, unsigned split, unsigned rest_mask, uint8_t *head,
               uint8_t *rest, size_t count);
void wb_unpack_field(const uint8_t *field, size_t segment, unsigned width, unsigned first,
                     int accumulate, uint8_t fill, uint8_t *out);
void wb_pack_field(const uint8_t *values, size_t segment, unsigned width, unsigned first,
                   uint8_t *field);
size_t wb_count_broken(const uint8_t *plane, size_t count, uint8_t fixed, uint8_t value);
void wb_histogram(const uint8_t *plane, size_t count, size_t step, uint64_t *out);
"""

_lock = threading.Lock()
_loaded: list[Kernels | None] = []  # empty until the first call of kernels()


class Kernels:
    """The compiled functions, taking NumPy arrays (or any buffer) for pointers.

    cffi releases the GIL around each call, so reader threads decode in parallel.
    """

    def __init__(self, module: Any) -> None:
        self._ffi = module.ffi
        self._lib = module.lib

    def _in(self, buffer: Any) -> Any:
        return self._ffi.from_buffer("uint8_t[]", buffer)

    def _out(self, buffer: Any) -> Any:
        return self._ffi.from_buffer("uint8_t[]", buffer, require_writable=True)

    def merge2(self, head: Any, rest: Any, split: int, rest_mask: int, out: Any) -> None:
        _fits(len(head), (rest, 1), (out, 2))
        self._lib.wb_merge2(
            self._in(head), self._in(rest), split, rest_mask, self._out(out), len(head)
        )

    def merge4_low(
        self, head: Any, rest: Any, low: Any, split: int, rest_mask: int, out: Any
    ) -> None:
        _fits(len(head), (rest, 1), (low, 2), (out, 4))
        self._lib.wb_merge4_low(
            self._in(head),
            self._in(rest),
            self._in(low),
            split,
            rest_mask,
            self._out(out),
            len(head),
        )

    def merge4(
        self, head: Any, rest: Any, high: Any, low: Any, split: int, rest_mask: int, out: Any
    ) -> None:
        _fits(len(head), (rest, 1), (high, 1), (low, 1), (out, 4))
        self._lib.wb_merge4(
            self._in(head),
            self._in(rest),
            self._in(high),
            self._in(low),
            split,
            rest_mask,
            self._out(out),
            len(head),
        )

    def split4(self, values: Any, split: int, rest_mask: int, planes: list[Any]) -> None:
        _fits(len(planes[0]), (values, 4), *((plane, 1) for plane in planes[1:4]))
        head, rest, high, low = (self._out(plane) for plane in planes)
        self._lib.wb_split4(
            self._in(values), split, rest_mask, head, rest, high, low, len(planes[0])
        )

    def split2(self, values: Any, split: int, rest_mask: int, planes: list[Any]) -> None:
        _fits(len(planes[0]), (values, 2), (planes[1], 1))
        head, rest = (self._out(plane) for plane in planes)
        self._lib.wb_split2(self._in(values), split, rest_mask, head, rest, len(planes[0]))

    def unpack_field(
        self,
        field: Any,
        segment: int,
        width: int,
        first: int,
        *,
        accumulate: bool,
        fill: int,
        out: Any,
    ) -> None:
        _check_field(segment, width, first)
        _fits(segment, (field, 1), (out, 8 // width))
        self._lib.wb_unpack_field(
            self._in(field), segment, width, first, int(accumulate), fill, self._out(out)
        )

    def pack_field(self, values: Any, segment: int, width: int, first: int, field: Any) -> None:
        _check_field(segment, width, first)
        _fits(segment, (field, 1), (values, 8 // width))
        self._lib.wb_pack_field(self._in(values), segment, width, first, self._out(field))

    def count_broken(self, plane: Any, fixed: int, value: int) -> int:
        """How many bytes of ``plane`` have other ``fixed`` bits than ``value``."""
        count: int = self._lib.wb_count_broken(self._in(plane), len(plane), fixed, value)
        return count

    def histogram(self, plane: Any, step: int) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Counts of each byte value among ``plane[::step]``, as ``np.bincount`` gives them."""
        if step < 1:
            raise ValueError(f"histogram step {step} is not positive")
        counts = np.zeros(256, np.int64)
        self._lib.wb_histogram(
            self._in(plane), len(plane), step, self._ffi.from_buffer("uint64_t[]", counts)
        )
        return counts


def _check_field(segment: int, width: int, first: int) -> None:
    if width not in (1, 2, 4) or not 0 <= first <= 8 - width or segment % 8:
        raise ValueError(f"no packed field of {width} bits at bit {first} in {segment} bytes")


def _fits(count: int, *buffers: tuple[Any, int]) -> None:
    """Every buffer holds ``count`` items of its size: C would not check."""
    for buffer, itemsize in buffers:
        if memoryview(buffer).nbytes < count * itemsize:
            raise ValueError(f"buffer of {memoryview(buffer).nbytes} bytes for {count} items")


def kernels() -> Kernels | None:
    """The compiled kernels, building them on the first call; ``None`` where they cannot be."""
    if _loaded:
        return _loaded[0]
    with _lock:
        if not _loaded:
            _loaded.append(_load())
    return _loaded[0]


def _load() -> Kernels | None:
    # imported here, not at the top: ``import weightbase`` should not pay for them
    import hashlib
    import sysconfig

    if os.environ.get("WEIGHTBASE_NATIVE", "1") == "0" or sys.byteorder != "little":
        return None  # the kernels assume little-endian values, as the payload format does
    try:
        cffi: Any = importlib.import_module("cffi")  # untyped, and optional
    except ImportError:
        return None
    source = _SOURCE.read_text()
    key = hashlib.blake2b(
        "\0".join((source, _DECLARATIONS, cffi.__version__, sys.version)).encode(),
        digest_size=8,
    ).hexdigest()
    name = f"_weightbase_bytegroup_{key}"
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    errors = []
    for folder in (_user_cache, _private_temporary):
        try:
            return _open(cffi, name, source, folder() / f"{name}{suffix}")
        except Exception as exc:  # no compiler, no Python headers, a read-only cache
            errors.append(f"{folder.__name__}: {exc}")
    _log.info("byte-group kernels unavailable, using NumPy: %s", "; ".join(errors))
    return None


def _open(cffi: Any, name: str, source: str, path: Path) -> Kernels:
    if not path.exists():
        _build(cffi, name, source, path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = Kernels(module)
    _check(found)
    return found


def _user_cache() -> Path:
    configured = os.environ.get("WEIGHTBASE_NATIVE_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "weightbase" / "native"


def _private_temporary() -> Path:
    """Where the user's cache is not writable. A module loaded from a shared folder
    must be one nobody else could have put there."""
    import tempfile

    folder = Path(tempfile.gettempdir()) / f"weightbase-native-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    status = folder.stat()
    if status.st_uid != os.getuid() or status.st_mode & 0o077:
        raise PermissionError(f"{folder} is not private to this user")
    return folder


def _build(cffi: Any, name: str, source: str, path: Path) -> None:
    """Compile into a private folder, then move the module into place in one step."""
    import tempfile
    import warnings

    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    builder = cffi.FFI()
    builder.cdef(_DECLARATIONS)
    builder.set_source(name, source, extra_compile_args=["-O3"])
    with tempfile.TemporaryDirectory(dir=folder) as build_dir, warnings.catch_warnings():
        # setuptools' deprecation notices are no concern of a reader's
        warnings.simplefilter("ignore")
        built = builder.compile(tmpdir=build_dir, verbose=False)
        os.replace(built, path)


def _check(found: Kernels) -> None:
    """Refuse a module that does not give the NumPy code's bytes on a small case."""
    head = np.arange(256, dtype=np.uint8)
    rest = head[::-1].copy()
    low = np.arange(512, dtype=np.uint8)
    out = np.empty(1024, np.uint8)
    found.merge4_low(head, rest, low, 5, 0xE01F, out)
    words = out.view(np.uint32)
    top = ((rest.astype(np.uint32) * 257) & 0xE01F) | (head.astype(np.uint32) << 5)
    expected = (top << 16) | low.view(np.uint16)
    if not np.array_equal(words, expected):
        raise RuntimeError("compiled merge does not match NumPy")
