"""The local-folder object store: one file per object, written crash-safely.

A put writes a temporary file, fsyncs it and renames it into place; the
directories whose entries changed are fsynced by ``sync()``. Reads of whole
objects can be memory-mapped.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import mmap
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from stat import S_ISREG
from urllib.parse import unquote, urlsplit

from weightbase.errors import Conflict, NotFound, StorageError, ValidationError
from weightbase.tensors.codecs import Buffer
from weightbase.tensors.objects import ObjectInfo, ObjectStore, validate_key

__all__ = ["LocalObjectStore", "pid_alive", "writer_alive"]


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root/objects``; temporary files live in ``root/tmp``.

    Keeping the two apart means no key can collide with a temporary file.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = self.root.as_uri()
        self.data = self.root / "objects"
        self.tmp = self.root / "tmp"
        # plain strings: pathlib costs more than the system calls on small objects
        self._data = str(self.data)
        self._tmp_prefix = os.path.join(str(self.tmp), f"{uuid.uuid4().hex}-")
        self._tmp_names = itertools.count()
        self._dirs: set[str] = set()  # folders known to exist
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._shared = _SharedLock(os.path.join(str(self.tmp), "gc.lock"))
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
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        return os.path.join(self._data, *validate_key(key).split("/"))

    def put(self, key: str, data: Buffer, *, durable: bool = True) -> None:
        target = self._file(key)
        # The pid keeps a forked child, which inherits the counter, off its parent's names,
        # and tells gc whether the writer is still alive (``writer_alive``).
        tmp = f"{self._tmp_prefix}{os.getpid()}-{next(self._tmp_names)}.part"
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
            folder = os.path.dirname(target)
            self._ensure_dir(folder)
            try:
                os.replace(tmp, target)
            except FileNotFoundError:  # the folder went since it was seen
                self._dirs.discard(folder)
                self._ensure_dir(folder)
                os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StorageError(f"cannot write {key} to {self.root}: {exc}", key=key) from exc
        with self._lock:
            self._dirty.add(folder)

    def _ensure_dir(self, directory: str) -> None:
        if directory in self._dirs:
            return
        missing = []
        current = directory
        while not os.path.isdir(current):
            missing.append(current)
            current = os.path.dirname(current)
        os.makedirs(directory, exist_ok=True)
        with self._lock:
            # a new directory's own entry lives in its parent
            self._dirty.update(os.path.dirname(path) for path in missing)
            self._dirs.add(directory)

    def sync(self) -> None:
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        for directory in sorted(dirty, key=lambda p: p.count(os.sep), reverse=True):
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
            with open(self._file(key), "rb") as handle:
                return handle.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"no object {key} in {self.root}", key=key) from None
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc}", key=key) from exc

    def get_range(self, key: str, start: int, length: int) -> Buffer:
        if start < 0 or length < 0:
            raise ValidationError(f"invalid range start={start} length={length}", key=key)
        try:
            with open(self._file(key), "rb") as handle:
                handle.seek(start)
                return handle.read(length)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"no object {key} in {self.root}", key=key) from None
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc}", key=key) from exc

    def map(self, key: str) -> Buffer | None:
        try:
            fd = os.open(self._file(key), os.O_RDONLY)
        except FileNotFoundError:
            raise NotFound(f"no object {key} in {self.root}", key=key) from None
        except OSError as exc:
            raise StorageError(f"cannot map {key}: {exc}", key=key) from exc
        try:
            if os.fstat(fd).st_size == 0:
                return b""
            return memoryview(mmap.mmap(fd, 0, access=mmap.ACCESS_READ))
        except OSError as exc:
            raise StorageError(f"cannot map {key}: {exc}", key=key) from exc
        finally:
            os.close(fd)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._file(key))

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot delete {key}: {exc}", key=key) from exc
        with self._lock:
            self._dirty.add(os.path.dirname(self._file(key)))

    def touch(self, key: str) -> None:
        path = self._file(key)
        try:
            if not S_ISREG(os.stat(path).st_mode):
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
    def lock(self, *, exclusive: bool, timeout: float | None = None) -> Iterator[None]:
        if not exclusive:
            with self._shared:
                yield
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        with open(self.tmp / "gc.lock", "a+b") as handle:
            # Polled, not blocking: a writer waiting for its shared lock gets in between
            # two gc runs, and a gc in a process that is itself writing gives up in time.
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise Conflict(
                            f"writers held the lock of {self.root} for {timeout:g} s",
                            url=self.url,
                        ) from None
                    time.sleep(0.01)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def list_temporary(self) -> Iterator[ObjectInfo]:
        """Leftover temporary files of interrupted writes (for ``gc``).

        A file whose writer process is still alive on this machine is a write in
        progress, not a leftover, and is not listed.
        """
        for entry in os.scandir(self.tmp):
            if not entry.name.endswith(".part") or writer_alive(entry.name):
                continue
            with contextlib.suppress(FileNotFoundError):
                stat = entry.stat()
                yield ObjectInfo(entry.name, stat.st_size, stat.st_mtime)

    def delete_temporary(self, name: str) -> None:
        """Remove a leftover temporary file listed by ``list_temporary``."""
        (self.tmp / Path(name).name).unlink(missing_ok=True)

    def close(self) -> None:
        self._shared.close()

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (owned by anyone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive all the same
    return True


def writer_alive(name: str) -> bool:
    """Whether the process that writes the temporary file ``name`` is still alive.

    Temporary names are ``<store instance>-<pid>-<counter>.part``; a name in
    another form is a leftover of an older version, its writer long gone. (A
    reused pid only keeps a leftover until that process ends.)
    """
    parts = name.split("-")
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    return pid_alive(int(parts[1]))


class _SharedLock:
    """The store lock taken shared, once for all the threads of this process that hold it.

    Writers take the lock for every chunk they refresh: opening the lock file
    each time costs more than the rest. One descriptor is opened per process;
    the first thread in takes ``LOCK_SH`` on it and the last one out releases it,
    so no thread drops a lock another still relies on. An exclusive lock (gc)
    opens a descriptor of its own, and waits for the shared one as for any other.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._mutex = threading.Lock()
        self._holders = 0
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> None:
        with self._mutex:
            if self._holders == 0:
                if self._fd is None or self._pid != os.getpid():  # not a forked parent's
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
                    self._pid = os.getpid()
                fcntl.flock(self._fd, fcntl.LOCK_SH)
            self._holders += 1

    def __exit__(self, *exc: object) -> None:
        with self._mutex:
            self._holders -= 1
            if self._holders == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._mutex:
            if self._holders:
                return  # still held: the descriptor goes with the last holder's store
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)
