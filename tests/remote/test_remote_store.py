"""Weights over HTTP: only missing chunks travel, each byte is verified, nothing half-written shows.

Against a live server on loopback (``tests/remote_support.py``), on each catalog backend.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.remote_support import LiveServer

import weightbase
from weightbase.errors import (
    AuthenticationError,
    Conflict,
    IntegrityError,
    NotFound,
    NotSupported,
    PermissionDenied,
    StorageError,
    ValidationError,
)
from weightbase.registry.service import ModelRegistry
from weightbase.remote import RemoteWorkspace, transfer
from weightbase.remote.models import RemoteModels
from weightbase.remote.store import RemoteStore
from weightbase.tensors import TensorStore, WriteStats
from weightbase.tensors.chunks import chunk_digest
from weightbase.tensors.read import chunk_key
from weightbase.workspace import Workspace


@pytest.fixture
def served(
    live_server: LiveServer, catalog_url: str, weightbase_home: Path
) -> Iterator[tuple[Workspace, RemoteWorkspace]]:
    """A fresh embedded workspace, and a remote one on it through the live server."""
    local = weightbase.open(weightbase_home, catalog_url=catalog_url)
    try:
        with live_server.serving(local) as remote:
            yield local, remote
    finally:
        local.close()


def _weights(count: int = 10, seed: int = 0) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    return {
        f"layer{i}.weight": rng.standard_normal((256, 256)).astype(np.float32) for i in range(count)
    }


def _client(remote: RemoteWorkspace) -> httpx.Client:
    token = remote.connection._client.headers["authorization"]
    return httpx.Client(base_url=remote.url + "/api/v1/store", headers={"Authorization": token})


def test_a_fine_tune_sends_only_the_chunks_the_server_lacks(
    served: tuple[Workspace, RemoteWorkspace],
) -> None:
    local, remote = served
    base = _weights()
    first = remote.models.push("org/m", base)
    sent_first = remote.models.last_transfer
    assert sent_first is not None
    assert sent_first.present_chunks == 0
    tuned = {**base, "layer3.weight": base["layer3.weight"] * 1.001}
    second = remote.models.push("org/m", tuned, fine_tuned_from=first)
    sent = remote.models.last_transfer
    assert sent is not None
    raw = sum(a.nbytes for a in tuned.values())
    assert sent.sent_chunks == 1
    assert sent.present_chunks >= 9
    assert sent.total_bytes < 0.15 * raw
    # the server holds what an embedded push would: the same tensors, bit for bit
    assert second.version == "0.2.0"
    pulled = local.models.pull("org/m@0.2.0")
    assert all(np.array_equal(pulled[k], tuned[k]) for k in tuned)
    assert local.models.lineage("org/m@0.2.0")[0].relation == "fine_tuned_from"


def test_pull_reads_the_servers_chunks_and_verifies_each(
    served: tuple[Workspace, RemoteWorkspace],
) -> None:
    local, remote = served
    weights = _weights(2)
    version = remote.models.push("m", weights)
    assert all(np.array_equal(remote.models.pull(version)[k], weights[k]) for k in weights)
    # flip one byte of one stored chunk on the server: the client refuses it
    snapshot = local.store.snapshot(version.snapshot_id)
    digest = next(iter(snapshot.tensors.values())).chunks[0].digest
    frame = bytearray(local.store.objects.get(chunk_key(digest)))
    frame[-1] ^= 0xFF
    local.store.objects.put(chunk_key(digest), bytes(frame))
    fresh = weightbase.open(remote.url, token=_token(remote))
    try:
        with pytest.raises(IntegrityError):
            fresh.models.pull(version)
    finally:
        fresh.close()


def _token(remote: RemoteWorkspace) -> str:
    return str(remote.connection._client.headers["authorization"]).removeprefix("Bearer ")


def test_a_chunk_that_does_not_match_its_digest_is_refused(
    served: tuple[Workspace, RemoteWorkspace],
) -> None:
    local, remote = served
    frame = _frame()
    with _client(remote) as client:
        wrong = client.put(f"/chunks/{'0' * 64}", content=frame)
        assert wrong.status_code == 422, wrong.text
        assert "hash to" in wrong.json()["error"]["message"]
        garbage = b"not a frame at all"
        refused = client.put(f"/chunks/{chunk_digest(garbage)}", content=garbage)
        assert refused.status_code == 422
        assert not local.store.objects.exists(chunk_key(chunk_digest(garbage)))
        good = client.put(f"/chunks/{chunk_digest(frame)}", content=frame)
        assert good.status_code == 200
        assert good.json()["created"] is True
        again = client.put(f"/chunks/{chunk_digest(frame)}", content=frame)
        assert again.json()["created"] is False  # a retried upload stores it once
        assert client.post(
            "/missing", json={"digests": [chunk_digest(frame), "f" * 64]}
        ).json() == {"missing": ["f" * 64]}
        assert client.post("/missing", json={"digests": ["../x"]}).status_code == 422


def _frame() -> bytes:
    staged = TensorStore.open(Path(__import__("tempfile").mkdtemp()) / "s")
    snapshot = staged.write({"w": np.arange(64, dtype=np.float32)})
    digest = snapshot.tensors["w"].chunks[0].digest
    return bytes(staged.objects.get(chunk_key(digest)))


def test_a_manifest_is_taken_only_when_all_its_chunks_are_there(
    served: tuple[Workspace, RemoteWorkspace],
) -> None:
    local, remote = served
    staged = TensorStore.open(Path(__import__("tempfile").mkdtemp()) / "s")
    snapshot = staged.write(_weights(2))
    with _client(remote) as client:
        refused = client.post("/snapshots", content=snapshot.to_json())
        assert refused.status_code == 409
        assert len(refused.json()["error"]["context"]["missing"]) == len(snapshot.chunk_digests())
        assert not local.store.objects.exists(f"snapshots/{snapshot.id}")
        assert client.post("/snapshots", content=b"{not json").status_code == 422
        for digest in snapshot.chunk_digests():
            frame = bytes(staged.objects.get(chunk_key(digest)))
            assert client.put(f"/chunks/{digest}", content=frame).status_code == 200
        stored = client.post("/snapshots", content=snapshot.to_json())
        assert stored.status_code == 201
        assert stored.json()["id"] == snapshot.id
    # stored but unreferenced: no version, and gc takes it back
    assert local.models.list().items == ()
    assert local.store.gc(grace_seconds=0).removed_snapshots == 1


def test_only_content_addressed_objects_can_be_read(
    served: tuple[Workspace, RemoteWorkspace],
) -> None:
    _, remote = served
    version = remote.models.push("m", _weights(1))
    with _client(remote) as client:
        assert client.get(f"/objects/snapshots/{version.snapshot_id}").status_code == 200
        for key in ("refs/registry/model-versions/1", "../catalog.db", "snapshots/../../x"):
            assert client.get(f"/objects/{key}").status_code in (404, 422), key
        assert client.get(f"/objects/snapshots/{'a' * 64}").status_code == 404


def test_an_interrupted_push_shows_nothing_and_a_retry_sends_only_the_rest(
    served: tuple[Workspace, RemoteWorkspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    local, remote = served
    weights = _weights(8)
    monkeypatch.setattr(transfer, "BATCH_BYTES", 1)  # one chunk a request
    connection = remote.connection
    real = connection.request
    sent: list[str] = []

    def dies_after_three(method: str, path: str, **kwargs: Any) -> Any:
        if method == "POST" and path.endswith("/store/chunks"):
            if len(sent) >= 3:
                raise StorageError("the connection dropped")
            sent.append(path)
        return real(method, path, **kwargs)

    monkeypatch.setattr(connection, "request", dies_after_three)
    with pytest.raises(StorageError):
        remote.models.push("m", weights)
    monkeypatch.setattr(connection, "request", real)
    with pytest.raises(NotFound):
        local.models.get("m")  # nothing visible
    version = remote.models.push("m", weights)
    sent_again = remote.models.last_transfer
    assert sent_again is not None
    assert sent_again.present_chunks == 3
    assert sent_again.sent_chunks == 5
    assert all(np.array_equal(local.models.pull(version)[k], weights[k]) for k in weights)


def test_checkpoint_refs_only(served: tuple[Workspace, RemoteWorkspace]) -> None:
    local, remote = served
    first = remote.store.write(_weights(2), ref="checkpoints/run-1/10")
    second = remote.store.write(_weights(2, seed=1), ref="checkpoints/run-1/20", parent=first)
    assert remote.store.refs("checkpoints/run-1/") == {
        "checkpoints/run-1/10": first.id,
        "checkpoints/run-1/20": second.id,
    }
    assert local.store.get_ref("checkpoints/run-1/20") == second.id
    assert np.array_equal(
        remote.store.read("checkpoints/run-1/20")["layer0.weight"],
        _weights(2, seed=1)["layer0.weight"],
    )
    remote.store.delete_ref("checkpoints/run-1/10")
    assert list(remote.store.refs("checkpoints/")) == ["checkpoints/run-1/20"]
    with pytest.raises(ValidationError):
        remote.store.write(_weights(1), ref="registry/model-versions/1")
    with pytest.raises(NotSupported):
        remote.store.refs("registry/")
    with pytest.raises(NotSupported):
        remote.store.gc()
    with _client(remote) as client:
        put = client.put("/refs/registry/model-versions/1", json={"snapshot": first.id})
        assert put.status_code == 422


def test_roles_and_tokens_hold_for_weights(
    live_server: LiveServer, catalog_url: str, weightbase_home: Path
) -> None:
    local = weightbase.open(weightbase_home, catalog_url=catalog_url)
    try:
        with live_server.serving(local, role="viewer") as viewer:
            with pytest.raises(PermissionDenied):
                viewer.models.push("m", _weights(1))
            assert local.models.list().items == ()
        with (
            live_server.serving(local) as remote,
            weightbase.open(remote.url, token="wb_1_no") as bad,
            pytest.raises(AuthenticationError),
        ):
            bad.models.get("m")
    finally:
        local.close()


def test_remote_errors_are_the_embedded_ones(served: tuple[Workspace, RemoteWorkspace]) -> None:
    _, remote = served
    remote.models.push("m", _weights(1), version="1.0.0")
    with pytest.raises(NotFound) as missing:
        remote.models.version("m@9.9.9")
    assert getattr(missing.value, "request_id", None)
    with pytest.raises(Conflict):
        remote.models.push("m", _weights(1, seed=3), version="1.0.0")
    with pytest.raises(ValidationError):
        remote.models.push("bad name", _weights(1))
    with pytest.raises(NotSupported):
        _ = remote.catalog
    with pytest.raises(NotSupported):
        remote.gc()


def test_open_takes_a_url_or_the_environment(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch, weightbase_home: Path
) -> None:
    monkeypatch.setenv("WEIGHTBASE_URL", live_server.url)
    monkeypatch.setenv("WEIGHTBASE_TOKEN", "wb_1_x")
    opened = weightbase.open()
    assert isinstance(opened, RemoteWorkspace)
    assert opened.url == live_server.url
    opened.close()
    opened.close()  # twice is fine
    local = weightbase.open(weightbase_home)  # a home given: embedded, whatever the environment
    assert not isinstance(local, RemoteWorkspace)
    local.close()
    with pytest.raises(ValidationError):
        weightbase.open(live_server.url, catalog_url="sqlite://")
    monkeypatch.setenv("WEIGHTBASE_URL", "http://127.0.0.1:9")  # nothing listens there
    with weightbase.open() as unreachable:
        unreachable.connection.retry.attempts = 2
        with pytest.raises(StorageError, match="cannot reach"):
            unreachable.models.get("m")


def _public(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and (callable(member) or isinstance(member, property))
    }


@pytest.mark.parametrize(
    ("remote", "embedded", "inherited"),
    [
        (RemoteModels, ModelRegistry, set()),
        (RemoteWorkspace, Workspace, set()),
        # reads run as they do locally, over the server's objects
        (
            RemoteStore,
            TensorStore,
            {"read", "read_torch", "read_tensor", "iter_tensor_bytes", "file_bytes", "snapshot"},
        ),
    ],
)
def test_every_method_is_the_remote_ones_own(
    remote: type, embedded: type, inherited: set[str]
) -> None:
    """No method of an embedded service is inherited unchanged, so none reaches for a catalog."""
    for name in _public(embedded) - inherited:
        assert name in vars(remote) or any(
            name in vars(base) for base in remote.__mro__[: remote.__mro__.index(embedded)]
        ), f"{remote.__name__} inherits {name} from {embedded.__name__}"


class _Runs:
    """Unpickling this would run a command; pickling it runs nothing."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        import os

        return (os.system, ("true",))


def _commit_with_file(remote: RemoteWorkspace, name: str, payload: bytes) -> Any:
    """Upload a snapshot holding ``payload`` as a file, as a client that skips its scan would."""
    import tempfile

    from weightbase.tensors import FileSource

    with tempfile.TemporaryDirectory() as folder:
        staging = remote.store.staging(Path(folder))
        snapshot = TensorStore(staging).write(
            {"w": np.ones(4, dtype=np.float32)}, files=[FileSource(name, payload)]
        )
        remote.store.upload(staging, snapshot)
    return remote.connection.post("/api/v1/models/m/-/versions", {"snapshot": snapshot.id})


def test_the_server_scans_pushed_files_itself(served: tuple[Workspace, RemoteWorkspace]) -> None:
    import pickle

    local, remote = served
    with pytest.raises(ValidationError, match="could run code"):  # UnsafeFormatError's 422
        _commit_with_file(remote, "extra/evil.pkl", pickle.dumps(_Runs()))
    with pytest.raises(NotFound):
        local.models.get("m")  # refused before anything was published
    made = _commit_with_file(remote, "extra/state.pkl", pickle.dumps({"epoch": 3}))
    reports = local.scans.history(f"m@{made['version']}")
    assert [report.clean for report in reports] == [True]


def test_a_batch_of_chunks_is_verified_record_by_record(
    served: tuple[Workspace, RemoteWorkspace],
) -> None:
    local, remote = served
    frame = _frame()
    digest = chunk_digest(frame)

    def record(name: str, data: bytes) -> bytes:
        return name.encode() + len(data).to_bytes(8, "big") + data

    with _client(remote) as client:
        assert client.post("/chunks", content=record("0" * 64, frame)).status_code == 422
        assert client.post("/chunks", content=record(digest, frame)[:-1]).status_code == 422
        assert client.post("/chunks", content=b"short").status_code == 422
        assert not local.store.objects.exists(chunk_key(digest))
        stored = client.post("/chunks", content=record(digest, frame) * 2)
        assert stored.status_code == 200, stored.text
        assert stored.json() == {"chunks": 2, "created": 1, "bytes": 2 * (72 + len(frame))}
        assert local.store.objects.exists(chunk_key(digest))


def test_a_push_looks_up_every_tensor_in_one_request_and_reuses_the_servers_index(
    served: tuple[Workspace, RemoteWorkspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    local, remote = served
    weights = _weights(6)
    local.models.push("on-server", weights)  # written on the server: its index holds them
    connection = remote.connection
    real = connection.request
    calls: list[tuple[str, str]] = []

    def counted(method: str, path: str, **kwargs: Any) -> Any:
        calls.append((method, path))
        return real(method, path, **kwargs)

    monkeypatch.setattr(connection, "request", counted)
    stats = WriteStats()
    version = remote.models.push("elsewhere", weights, stats=stats)
    lookups = [path for method, path in calls if path.endswith("/store/index")]
    assert lookups == ["/api/v1/store/index"]  # one round trip for all six tensors
    assert not [path for _, path in calls if "/objects/index/" in path]
    assert stats.reused_tensors == 6  # found in the server's index: nothing encoded
    sent = remote.models.last_transfer
    assert sent is not None
    assert sent.sent_chunks == 0
    assert all(np.array_equal(local.models.pull(version)[k], weights[k]) for k in weights)


def test_index_lookups_take_index_keys_only(served: tuple[Workspace, RemoteWorkspace]) -> None:
    local, remote = served
    local.models.push("m", _weights(2))
    index_keys = [info.key for info in local.store.objects.list("index/")]
    assert len(index_keys) == 2
    with _client(remote) as client:
        found = client.post("/index", json={"keys": [*index_keys, "index/ab/" + "ab" * 32]})
        assert found.status_code == 200
        entries = found.json()["entries"]
        assert set(entries) == set(index_keys)
        assert all(bytes(local.store.objects.get(k)) == entries[k].encode() for k in index_keys)
        for key in ("chunks/aa/" + "a" * 64, "index/aa/" + "b" * 64, "index/../../catalog.db"):
            assert client.post("/index", json={"keys": [key]}).status_code == 422, key
        too_many = ["index/aa/aa" + "0" * 62] * 10_001
        assert client.post("/index", json={"keys": too_many}).status_code == 422


def test_a_chunk_collected_during_a_push_refuses_the_manifest_and_a_retry_sends_it(
    served: tuple[Workspace, RemoteWorkspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    local, remote = served
    base = _weights(4)
    first = remote.models.push("m", base)
    kept = local.models.pull(first)
    victim = next(iter(local.store.snapshot(first.snapshot_id).tensors["layer0.weight"].chunks))
    real_upload = RemoteStore.upload

    def collected_meanwhile(self: RemoteStore, *args: Any, **kwargs: Any) -> Any:
        local.store.objects.delete(chunk_key(victim.digest))  # as a gc would
        return real_upload(self, *args, **kwargs)

    tuned = {**base, "layer3.weight": base["layer3.weight"] + 1}
    monkeypatch.setattr(RemoteStore, "upload", collected_meanwhile)
    with pytest.raises(Conflict, match=victim.digest):
        remote.models.push("m", tuned, fine_tuned_from=first)
    monkeypatch.setattr(RemoteStore, "upload", real_upload)
    assert [v.version for v in local.models.versions("m")] == [first.version]
    second = remote.models.push("m", tuned, fine_tuned_from=first)
    assert all(np.array_equal(local.models.pull(second)[k], tuned[k]) for k in tuned)
    assert np.array_equal(kept["layer0.weight"], local.models.pull(second)["layer0.weight"])
