"""The object-store conformance suite: every backend must pass every test here.

Tests take the ``object_store`` fixture, which runs them on each backend; a
few at the end check what only one backend has (S3 buckets, local temp files).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weightbase.errors import NotFound, StorageError, ValidationError
from weightbase.tensors.codecs import Buffer
from weightbase.tensors.objects import ObjectInfo, ObjectStore, open_object_store
from weightbase.tensors.objects.local import LocalObjectStore

MiB = 1 << 20
INVALID_KEYS = ["", "../x", "a/../b", "a/./b", "/abs", "a//b", "a/", "a\x00b", "a\\b", "."]


def _listing(store: ObjectStore, prefix: str = "") -> dict[str, ObjectInfo]:
    return {info.key: info for info in store.list(prefix)}


def _pattern(size: int, seed: int = 0) -> bytes:
    """Bytes that differ at every offset a test might look at, cheaply."""
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


# -- put and get ------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1000, 5 * MiB + 3], ids=["empty", "1B", "1kB", "5MiB"])
def test_put_get_round_trip(object_store: ObjectStore, size: int) -> None:
    data = _pattern(size)
    object_store.put("chunks/ab/cdef", data)
    assert bytes(object_store.get("chunks/ab/cdef")) == data


@pytest.mark.parametrize(
    "data",
    [
        bytearray(b"bytearray"),
        memoryview(b"a memoryview"),
        memoryview(b"__a sliced view__")[2:-2],
        np.arange(6, dtype=np.float32).data,
    ],
    ids=["bytearray", "memoryview", "sliced", "float32"],
)
def test_put_accepts_any_contiguous_buffer(object_store: ObjectStore, data: Buffer) -> None:
    object_store.put("buffer", data)
    assert bytes(object_store.get("buffer")) == memoryview(data).tobytes()


def test_get_missing_raises_not_found(object_store: ObjectStore) -> None:
    with pytest.raises(NotFound) as caught:
        object_store.get("no/such/key")
    assert caught.value.context["key"] == "no/such/key"


def test_not_found_is_a_key_error(object_store: ObjectStore) -> None:
    with pytest.raises(KeyError):
        object_store.get("absent")


def test_overwrite_replaces(object_store: ObjectStore) -> None:
    object_store.put("refs/main", b"a longer first version")
    object_store.put("refs/main", b"second")
    assert bytes(object_store.get("refs/main")) == b"second"
    assert [(i.key, i.size) for i in object_store.list()] == [("refs/main", 6)]


def test_readers_never_see_a_partial_overwrite(object_store: ObjectStore) -> None:
    versions = [_pattern(256 * 1024, seed=1), _pattern(300 * 1024, seed=2)]
    object_store.put("refs/main", versions[0])
    seen: list[bytes] = []
    done = threading.Event()

    def write() -> None:
        try:
            for round_ in range(10):
                object_store.put("refs/main", versions[round_ % 2])
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    while not done.is_set() or len(seen) < 5:
        seen.append(bytes(object_store.get("refs/main")))
    writer.join()
    assert all(content in versions for content in seen)


# -- ranges -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "length"),
    [(0, 10), (500, 100), (990, 10), (995, 10), (0, 1000), (0, 5000), (1000, 5), (2000, 5)],
    ids=["start", "middle", "end", "over-end", "whole", "longer", "at-end", "past-end"],
)
def test_get_range(object_store: ObjectStore, start: int, length: int) -> None:
    data = _pattern(1000)
    object_store.put("blob", data)
    assert bytes(object_store.get_range("blob", start, length)) == data[start : start + length]


def test_get_range_of_nothing_is_empty(object_store: ObjectStore) -> None:
    object_store.put("blob", b"0123456789")
    assert bytes(object_store.get_range("blob", 3, 0)) == b""
    object_store.put("empty", b"")
    assert bytes(object_store.get_range("empty", 0, 10)) == b""


def test_get_range_missing_raises_not_found(object_store: ObjectStore) -> None:
    with pytest.raises(NotFound):
        object_store.get_range("absent", 0, 10)
    with pytest.raises(NotFound):
        object_store.get_range("absent", 0, 0)


@settings(
    max_examples=25,
    deadline=None,
    # the store is reused across examples on purpose: each one overwrites the key
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=300), start=st.integers(0, 400), length=st.integers(0, 400))
def test_get_range_is_a_slice(
    object_store: ObjectStore, data: bytes, start: int, length: int
) -> None:
    object_store.put("blob", data)
    assert bytes(object_store.get_range("blob", start, length)) == data[start : start + length]


# -- exists and delete ------------------------------------------------------


def test_get_many_returns_those_that_exist(object_store: ObjectStore) -> None:
    object_store.put("index/aa/one", b"1")
    object_store.put("index/bb/two", _pattern(300_000, seed=2))
    found = object_store.get_many(["index/aa/one", "index/cc/none", "index/bb/two", "index/aa/one"])
    assert {key: bytes(data) for key, data in found.items()} == {
        "index/aa/one": b"1",
        "index/bb/two": _pattern(300_000, seed=2),
    }
    assert object_store.get_many([]) == {}


def test_exists_and_delete(object_store: ObjectStore) -> None:
    assert not object_store.exists("chunks/x")
    object_store.put("chunks/x", b"x")
    assert object_store.exists("chunks/x")
    object_store.delete("chunks/x")
    assert not object_store.exists("chunks/x")
    with pytest.raises(NotFound):
        object_store.get("chunks/x")


def test_delete_missing_is_fine(object_store: ObjectStore) -> None:
    object_store.delete("never/written")
    object_store.put("once", b"1")
    object_store.delete("once")
    object_store.delete("once")
    assert _listing(object_store) == {}


def test_sync_after_puts_and_deletes(object_store: ObjectStore) -> None:
    object_store.put("chunks/ab/1", b"1")
    object_store.sync()
    object_store.delete("chunks/ab/1")
    object_store.sync()
    assert not object_store.exists("chunks/ab/1")


def test_map_is_a_view_or_nothing(object_store: ObjectStore) -> None:
    object_store.put("blob", b"mapped bytes")
    object_store.put("empty", b"")
    for key, data in (("blob", b"mapped bytes"), ("empty", b"")):
        view = object_store.map(key)
        assert view is None or bytes(view) == data


def test_a_folder_is_not_an_object(object_store: ObjectStore) -> None:
    object_store.put("chunks/ab/cd", b"x")
    assert not object_store.exists("chunks")
    assert not object_store.exists("chunks/ab")


# -- listing ----------------------------------------------------------------

LAYOUT = {
    "chunks/ab/0001": b"1",
    "chunks/ab/0002": b"22",
    "chunks/cd/0003": b"333",
    "manifests/m1": b"m" * 10,
    "top": b"",
}


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", sorted(LAYOUT)),
        ("chunks/", ["chunks/ab/0001", "chunks/ab/0002", "chunks/cd/0003"]),
        ("chunks", ["chunks/ab/0001", "chunks/ab/0002", "chunks/cd/0003"]),
        ("chunks/ab/", ["chunks/ab/0001", "chunks/ab/0002"]),
        ("chunks/a", ["chunks/ab/0001", "chunks/ab/0002"]),
        ("chunks/ab/000", ["chunks/ab/0001", "chunks/ab/0002"]),
        ("chunks/ab/0002", ["chunks/ab/0002"]),
        ("man", ["manifests/m1"]),
        ("t", ["top"]),
        ("top", ["top"]),
        ("top/", []),
        ("nothing/", []),
        ("chunks/zz/", []),
    ],
)
def test_list_with_prefix(object_store: ObjectStore, prefix: str, expected: list[str]) -> None:
    for key, data in LAYOUT.items():
        object_store.put(key, data)
    listing = _listing(object_store, prefix)
    assert sorted(listing) == expected
    assert all(info.size == len(LAYOUT[key]) for key, info in listing.items())


def test_list_empty_store(object_store: ObjectStore) -> None:
    assert _listing(object_store) == {}
    assert _listing(object_store, "chunks/") == {}


def test_list_mtime_is_sensible(object_store: ObjectStore) -> None:
    before = time.time()
    object_store.put("fresh", b"x")
    after = time.time()
    (info,) = object_store.list()
    # S3 keeps whole seconds; allow for that and a little clock skew
    assert before - 2 <= info.mtime <= after + 2


def test_keys_under_tmp_are_ordinary(object_store: ObjectStore) -> None:
    object_store.put("tmp/model.part", b"x")
    assert sorted(_listing(object_store)) == ["tmp/model.part"]


@pytest.mark.parametrize("prefix", ["../", "../x", "x/../", "/x", "a//b", "a\x00"])
def test_list_with_a_prefix_no_key_has_is_empty(object_store: ObjectStore, prefix: str) -> None:
    object_store.put("x/y", b"1")
    assert _listing(object_store, prefix) == {}


# -- touch ------------------------------------------------------------------


def test_touch_refreshes_mtime(object_store: ObjectStore) -> None:
    object_store.put("chunks/old", b"payload")
    (before,) = object_store.list()
    # S3 keeps LastModified in whole seconds
    time.sleep(1.1)
    object_store.touch("chunks/old")
    (after,) = object_store.list()
    assert after.mtime > before.mtime
    assert after.mtime >= time.time() - 2
    assert bytes(object_store.get("chunks/old")) == b"payload"
    assert after.size == before.size


def test_touch_missing_raises_not_found(object_store: ObjectStore) -> None:
    with pytest.raises(NotFound):
        object_store.touch("absent")
    assert not object_store.exists("absent")


# -- keys -------------------------------------------------------------------


@pytest.mark.parametrize("key", INVALID_KEYS, ids=repr)
@pytest.mark.parametrize(
    "operation", ["put", "get", "get_range", "exists", "delete", "touch"], ids=str
)
def test_invalid_keys_are_refused(object_store: ObjectStore, key: str, operation: str) -> None:
    calls: dict[str, Callable[[], object]] = {
        "put": lambda: object_store.put(key, b"x"),
        "get": lambda: object_store.get(key),
        "get_range": lambda: object_store.get_range(key, 0, 1),
        "exists": lambda: object_store.exists(key),
        "delete": lambda: object_store.delete(key),
        "touch": lambda: object_store.touch(key),
    }
    with pytest.raises(ValidationError):
        calls[operation]()
    assert _listing(object_store) == {}


# -- threads ----------------------------------------------------------------


def test_concurrent_puts_all_land(object_store: ObjectStore) -> None:
    contents = {f"chunks/{n:02x}/{n}": _pattern(1000 + n, seed=n) for n in range(64)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda item: object_store.put(*item), contents.items()))
    listing = _listing(object_store)
    assert {key: info.size for key, info in listing.items()} == {
        key: len(data) for key, data in contents.items()
    }
    with ThreadPoolExecutor(max_workers=8) as pool:
        read = dict(zip(contents, pool.map(object_store.get, contents), strict=True))
    assert {key: bytes(data) for key, data in read.items()} == contents


def test_concurrent_puts_to_one_key_leave_one_whole_version(object_store: ObjectStore) -> None:
    versions = [_pattern(64 * 1024 + n, seed=n) for n in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda data: object_store.put("refs/main", data), versions))
    assert bytes(object_store.get("refs/main")) in versions


# -- choosing a backend -----------------------------------------------------


def test_open_object_store_picks_local_for_paths(tmp_path: Path) -> None:
    by_path = open_object_store(tmp_path / "a")
    by_text = open_object_store(str(tmp_path / "b"))
    by_url = open_object_store((tmp_path / "c").as_uri())
    assert all(isinstance(s, LocalObjectStore) for s in (by_path, by_text, by_url))
    assert isinstance(by_url, LocalObjectStore)
    assert by_url.root == tmp_path / "c"


@pytest.mark.usefixtures("fake_aws_env")
def test_open_object_store_picks_s3_for_s3_urls() -> None:
    s3 = pytest.importorskip("weightbase.tensors.objects.s3", reason="needs the [s3] extra")
    store = open_object_store("s3://some-bucket/some/prefix")
    try:
        assert isinstance(store, s3.S3ObjectStore)
        assert store.bucket == "some-bucket"
        assert store.prefix == "some/prefix"
        assert store.url == "s3://some-bucket/some/prefix"
    finally:
        store.close()


@pytest.mark.parametrize("url", ["gs://bucket/x", "ftp://host/x", "hdfs://nn/x"])
def test_open_object_store_refuses_unknown_schemes(url: str) -> None:
    with pytest.raises(ValidationError, match="unsupported"):
        open_object_store(url)


# -- S3 only ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://b", "b", ""),
        ("s3://b/", "b", ""),
        ("s3://b/wb", "b", "wb"),
        ("s3://b/a/b/", "b", "a/b"),
    ],
)
@pytest.mark.usefixtures("fake_aws_env")
def test_s3_url_parsing(url: str, bucket: str, prefix: str) -> None:
    s3 = pytest.importorskip("weightbase.tensors.objects.s3", reason="needs the [s3] extra")
    store = s3.S3ObjectStore.from_url(url)
    try:
        assert (store.bucket, store.prefix) == (bucket, prefix)
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    ["s3://", "s3:///prefix", "s3://b/../x", "s3://b/a//c", "s3://b?x=1", "s3://host:9000/x"],
)
def test_s3_bad_urls_are_refused(url: str) -> None:
    s3 = pytest.importorskip("weightbase.tensors.objects.s3", reason="needs the [s3] extra")
    with pytest.raises(ValidationError):
        s3.S3ObjectStore.from_url(url)


def test_s3_url_with_credentials_is_refused_without_echoing_them() -> None:
    s3 = pytest.importorskip("weightbase.tensors.objects.s3", reason="needs the [s3] extra")
    with pytest.raises(ValidationError) as caught:
        s3.S3ObjectStore.from_url("s3://AKIDEXAMPLE:s3cr3t@bucket/wb")
    assert "s3cr3t" not in str(caught.value)
    assert "s3cr3t" not in repr(caught.value.context)


def test_s3_missing_bucket_is_a_storage_error(s3_url: str) -> None:
    bucket = f"wb-missing-{os.urandom(6).hex()}"
    store = open_object_store(f"s3://{bucket}/wb")
    operations: dict[str, Callable[[], object]] = {
        "put": lambda: store.put("k", b"x"),
        "get": lambda: store.get("k"),
        "get_range": lambda: store.get_range("k", 0, 1),
        "exists": lambda: store.exists("k"),
        "delete": lambda: store.delete("k"),
        "touch": lambda: store.touch("k"),
        "list": lambda: list(store.list()),
    }
    try:
        for name, operation in operations.items():
            with pytest.raises(StorageError, match=bucket) as caught:
                operation()
            assert not isinstance(caught.value, NotFound), name
            assert caught.value.context["bucket"] == bucket, name
    finally:
        store.close()


def test_s3_unreachable_endpoint_is_a_storage_error(s3_url: str) -> None:
    import boto3
    from botocore.config import Config

    from weightbase.tensors.objects.s3 import S3ObjectStore

    client = boto3.session.Session().client(
        "s3",
        endpoint_url="http://127.0.0.1:9",  # discard: nothing listens there
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1),
    )
    store = S3ObjectStore("bucket", "wb", client=client)
    with pytest.raises(StorageError, match="cannot read k") as caught:
        store.get("k")
    assert caught.value.context["key"] == "k"
    client.close()


def test_s3_multipart_put_round_trips(s3_url: str) -> None:
    from weightbase.tensors.objects.s3 import S3ObjectStore

    reference = S3ObjectStore.from_url(s3_url)
    store = S3ObjectStore(
        reference.bucket, reference.prefix, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB
    )
    data = _pattern(11 * MiB)
    try:
        store.put("big", memoryview(data))
        assert bytes(store.get("big")) == data
        assert bytes(store.get_range("big", 5 * MiB - 2, 4)) == data[5 * MiB - 2 : 5 * MiB + 2]
    finally:
        store.close()
        reference.close()


def test_s3_prefixes_keep_stores_apart(s3_url: str) -> None:
    here = open_object_store(s3_url)  # s3://bucket/wb
    sibling = open_object_store(s3_url + "2")  # s3://bucket/wb2, shares "wb" as a text prefix
    root = open_object_store(s3_url.rsplit("/", 1)[0])  # the whole bucket
    try:
        here.put("k", b"here")
        sibling.put("k", b"sibling")
        assert _listing(here).keys() == {"k"}
        assert _listing(sibling).keys() == {"k"}
        assert _listing(root).keys() == {"wb/k", "wb2/k"}
        assert bytes(root.get("wb/k")) == b"here"
    finally:
        for store in (here, sibling, root):
            store.close()


def test_s3_repr_names_no_secrets(s3_url: str) -> None:
    store = open_object_store(s3_url)
    try:
        assert "testing" not in repr(store)
        assert "testing" not in repr(vars(store))
    finally:
        store.close()


# -- local only -------------------------------------------------------------


def test_local_failed_put_leaves_nothing_behind(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    store.put("a", b"a file where a folder would go")
    with pytest.raises(StorageError) as caught:
        store.put("a/b", b"x" * 1000)
    assert caught.value.context["key"] == "a/b"
    assert not store.exists("a/b")
    assert bytes(store.get("a")) == b"a file where a folder would go"
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_local_crash_while_writing_keeps_the_old_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalObjectStore(tmp_path / "store")
    store.put("refs/main", b"old")

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StorageError):
        store.put("refs/main", b"new and partial")
    with pytest.raises(StorageError):
        store.put("refs/other", b"new and partial")
    monkeypatch.undo()
    assert bytes(store.get("refs/main")) == b"old"
    assert not store.exists("refs/other")
    assert sorted(_listing(store)) == ["refs/main"]
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def _exclusive_is_free(path: Path) -> bool:
    """Whether another open file description could take the store lock exclusively now."""
    import fcntl

    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return True


def test_local_shared_lock_is_held_until_the_last_thread_lets_go(tmp_path: Path) -> None:
    """Writer threads share one descriptor for the store lock: one thread leaving must not
    release it under another that still holds it."""
    store = LocalObjectStore(tmp_path / "store")
    lock_file = tmp_path / "store" / "tmp" / "gc.lock"
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with store.lock(exclusive=False):
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with store.lock(exclusive=False):
            second_in.set()
            first_out.wait(5)
            seen.append(_exclusive_is_free(lock_file))  # the first has let go, not this one
        seen.append(_exclusive_is_free(lock_file))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == [False, True]
    with store.lock(exclusive=False):  # taken again after it was let go
        assert not _exclusive_is_free(lock_file)
    store.close()
    assert _exclusive_is_free(lock_file)


def test_local_put_recreates_a_folder_removed_behind_its_back(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    store.put("chunks/ab/one", b"1")
    (tmp_path / "store" / "objects" / "chunks" / "ab" / "one").unlink()
    (tmp_path / "store" / "objects" / "chunks" / "ab").rmdir()
    store.put("chunks/ab/two", b"2")  # the store had seen the folder: it is made again
    assert bytes(store.get("chunks/ab/two")) == b"2"
