"""The local-folder object store: one file per object, written crash-safely.

A put writes a temporary file, fsyncs it and renames it into place; the
directories whose entries changed are fsynced by ``sync()``. Reads of whole
objects can be memory-mapped.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from weightbase.errors import NotFound, StorageError, ValidationError
from weightbase.tensors.codecs import Buffer
from weightbase.tensors.objects import ObjectInfo, ObjectStore, validate_key

__all__ = ["LocalObjectStore"]


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root/objects``; temporary files live in ``root/tmp``.

    Keeping the two apart means no key can collide with a temporary file.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = self.root.as_uri()
        self.data = self.root / "objects"
        self.tmp = self.root / "tmp"
        self._dirty: set[Path] = set()
        self._lock = threading.Lock()
        try:
            self.data.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the store folder {self.root}: {exc}") from exc

    @classmethod
    def from_url(cls, url: str) -> LocalObjectStore:
        if url.startswith("file://"):
            return cls(unquote(urlsplit(url).path))
        return cls(url)

    def _path(self, key: str) -> Path:
        return self.data.joinpath(*validate_key(key).split("/"))

    def put(self, key: str, data: Buffer, *, durable: bool = True) -> None:
        target = self._path(key)
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data).cast("B")
                while view:
                    written = os.write(fd, view[: 1 << 30])
                    view = view[written:]
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._ensure_dir(target.parent)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StorageError(f"cannot write {key} to {self.root}: {exc}", key=key) from exc
        with self._lock:
            self._dirty.add(target.parent)

    def _ensure_dir(self, directory: Path) -> None:
        if directory.is_dir():
            return
        missing = []
        current = directory
        while not current.is_dir():
            missing.append(current)
            current = current.parent
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            # a new directory's own entry lives in its parent
            self._dirty.update(path.parent for path in missing)

    def sync(self) -> None:
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        for directory in sorted(dirty, key=lambda p: len(p.parts), reverse=True):
            try:
                fd = os.open(directory, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def get(self, key: str) -> Buffer:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"no object {key} in {self.root}", key=key) from None
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc}", key=key) from exc

    def get_range(self, key: str, start: int, length: int) -> Buffer:
        if start < 0 or length < 0:
            raise ValidationError(f"invalid range start={start} length={length}", key=key)
        try:
            with open(self._path(key), "rb") as handle:
                handle.seek(start)
                return handle.read(length)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"no object {key} in {self.root}", key=key) from None
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc}", key=key) from exc

    def map(self, key: str) -> Buffer | None:
        try:
            with open(self._path(key), "rb") as handle:
                if os.fstat(handle.fileno()).st_size == 0:
                    return b""
                return memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
        except FileNotFoundError:
            raise NotFound(f"no object {key} in {self.root}", key=key) from None
        except OSError as exc:
            raise StorageError(f"cannot map {key}: {exc}", key=key) from exc

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot delete {key}: {exc}", key=key) from exc
        with self._lock:
            self._dirty.add(self._path(key).parent)

    def touch(self, key: str) -> None:
        path = self._path(key)
        try:
            if not path.is_file():
                raise FileNotFoundError(key)
            os.utime(path)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no object {key} in {self.root}", key=key) from None
        except OSError as exc:
            raise StorageError(f"cannot touch {key}: {exc}", key=key) from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Walk only the directory the prefix names, then filter by the rest.
        if prefix:
            try:
                validate_key(prefix + "x")
            except ValidationError:
                return  # no valid key starts with this prefix
        head, _, _ = prefix.rpartition("/")
        start = self.data.joinpath(*head.split("/")) if head else self.data
        if not start.is_dir():
            return
        for dirpath, _dirnames, filenames in os.walk(start):
            rel_dir = Path(dirpath).relative_to(self.data).as_posix()
            for name in filenames:
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if not key.startswith(prefix):
                    continue
                try:
                    stat = os.stat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                yield ObjectInfo(key, stat.st_size, stat.st_mtime)

    @contextmanager
    def lock(self, *, exclusive: bool) -> Iterator[None]:
        with open(self.tmp / "gc.lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def list_temporary(self) -> Iterator[ObjectInfo]:
        """Leftover temporary files of interrupted writes (for ``gc``)."""
        for entry in os.scandir(self.tmp):
            if not entry.name.endswith(".part"):
                continue
            with contextlib.suppress(FileNotFoundError):
                stat = entry.stat()
                yield ObjectInfo(entry.name, stat.st_size, stat.st_mtime)

    def delete_temporary(self, name: str) -> None:
        """Remove a leftover temporary file listed by ``list_temporary``."""
        (self.tmp / Path(name).name).unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"
