"""The publish protocol: one content digest rule, and crash safety at every step of a publish."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from weightbase.catalog.schema import ModelVersionRow
from weightbase.datasets.service import dataset_version_ref, split_ref_name
from weightbase.errors import NotFound
from weightbase.registry.service import version_ref
from weightbase.tensors import FileSource
from weightbase.versioning.publish import PENDING_PREFIX, content_digest, publish_snapshot
from weightbase.workspace import Workspace

CHILD = Path(__file__).with_name("_crashing_publisher.py")


def _weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "layer.weight": rng.standard_normal((32, 16)).astype(np.float32),
        "layer.bias": rng.standard_normal(16).astype(np.float32),
    }


# -- the content digest ----------------------------------------------------------------------


def test_digest_counts_tensors_files_and_description_but_not_layout(workspace: Workspace) -> None:
    store = workspace.store
    weights = _weights()
    plain = store.write(weights)
    relabelled = store.write(weights, metadata={"framework": "numpy", "note": "layout only"})
    deltas = store.write(weights, parent=plain, codec="zstd")
    assert content_digest(plain) == content_digest(relabelled) == content_digest(deltas)

    changed = dict(weights, **{"layer.bias": weights["layer.bias"] + 1})
    assert content_digest(store.write(changed)) != content_digest(plain)
    with_file = store.write(weights, files=[FileSource("config.json", b'{"hidden": 16}')])
    assert content_digest(with_file) != content_digest(plain)
    described = content_digest(plain, described={"layout": "features+labels"})
    assert described != content_digest(plain)
    assert described == content_digest(relabelled, described={"layout": "features+labels"})


def test_a_publish_releases_its_pending_refs_even_when_it_fails(workspace: Workspace) -> None:
    store = workspace.store
    held: list[dict[str, str]] = []

    def publish_then_fail() -> None:
        with publish_snapshot(store, "models") as publication:
            store.write(_weights(), ref=publication.pending_ref())
            held.append(store.refs(PENDING_PREFIX))
            raise RuntimeError("the catalog write failed")

    with pytest.raises(RuntimeError, match="catalog write failed"):
        publish_then_fail()
    assert len(held[0]) == 1
    assert store.refs(PENDING_PREFIX) == {}


def test_an_identical_push_keeps_the_snapshot_its_version_has(workspace: Workspace) -> None:
    first = workspace.models.push("same", _weights())
    again = workspace.models.push("same", _weights(), codec="zstd")  # same content, new snapshot
    assert not again.created
    assert workspace.store.get_ref(version_ref(first.id)) == first.snapshot_id
    workspace.gc(grace_seconds=0)
    np.testing.assert_array_equal(
        workspace.models.pull("same@0.1.0")["layer.bias"], _weights()["layer.bias"]
    )


# -- crashes ---------------------------------------------------------------------------------


def _crash(workspace: Workspace, mode: str, kind: str) -> None:
    """Run a publish in a child process and SIGKILL it at the step ``mode`` names."""
    url = workspace.catalog.engine.url.render_as_string(hide_password=False)
    child = subprocess.Popen(
        [sys.executable, str(CHILD), mode, kind, str(workspace.home), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        assert line == "stopped", child.stderr.read() if child.stderr else line
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
        if child.stdout is not None:
            child.stdout.close()
        if child.stderr is not None:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL


pytestmark_posix = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


@pytestmark_posix
def test_a_push_killed_between_commit_and_pin_is_finished_by_gc(workspace: Workspace) -> None:
    _crash(workspace, "before-pin", "model")
    version = workspace.models.version("crashy@latest")
    with pytest.raises(NotFound):
        workspace.store.get_ref(version_ref(version.id))  # committed, never pinned
    assert len(workspace.store.refs(PENDING_PREFIX)) == 1

    young = workspace.gc()  # within the grace period: a publish may still be running
    assert young.publishes.kept_young == 1
    assert young.publishes.pinned == ()

    collected = workspace.gc(grace_seconds=0)
    assert collected.publishes.pinned == (version_ref(version.id),)
    assert workspace.store.get_ref(version_ref(version.id)) == version.snapshot_id
    assert workspace.store.refs(PENDING_PREFIX) == {}
    assert collected.store.removed_chunks == 0
    assert workspace.store.fsck().ok
    assert workspace.models.pull(version)["w"].shape == (64, 64)


@pytestmark_posix
def test_a_push_killed_before_commit_leaves_garbage_that_gc_removes(workspace: Workspace) -> None:
    _crash(workspace, "before-commit", "model")
    with pytest.raises(NotFound):
        workspace.models.get("crashy")
    with workspace.catalog.session() as session:
        assert session.query(ModelVersionRow).count() == 0
    dry = workspace.gc(grace_seconds=0, dry_run=True)
    assert len(dry.publishes.released) == 1
    assert workspace.store.refs(PENDING_PREFIX)  # a dry run changes nothing

    collected = workspace.gc(grace_seconds=0)
    assert collected.publishes.pinned == ()
    assert len(collected.publishes.released) == 1
    assert collected.store.removed_chunks > 0
    assert list(workspace.store.snapshots()) == []


@pytestmark_posix
def test_a_dataset_killed_between_commit_and_pin_gets_both_pins(workspace: Workspace) -> None:
    _crash(workspace, "before-pin", "dataset")
    version = workspace.datasets.version("crashy")
    collected = workspace.gc(grace_seconds=0)
    assert set(collected.publishes.pinned) == {
        dataset_version_ref(version.id),
        split_ref_name(version.id),
    }
    assert collected.store.removed_chunks == 0
    features, labels = workspace.datasets.arrays(version, "train")
    assert len(features) == len(labels) > 0


@pytestmark_posix
def test_store_gc_on_the_workspace_finishes_interrupted_publishes(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from weightbase.cli import app

    _crash(workspace, "before-pin", "model")
    url = workspace.catalog.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("WEIGHTBASE_CATALOG_URL", url)
    monkeypatch.setenv("WEIGHTBASE_HOME", str(workspace.home))
    runner = CliRunner()
    shown = runner.invoke(app, ["store", "gc", "--grace", "0"])
    assert shown.exit_code == 0, shown.output
    assert "finished 1 interrupted publishes" in shown.output
    again = runner.invoke(app, ["store", "gc", "--grace", "0", "--json"])
    report = json.loads(again.stdout)
    assert report["publishes"]["pinned"] == []  # nothing left to finish
    assert report["removed_chunks"] == 0
    version = workspace.models.version("crashy")
    assert workspace.store.get_ref(version_ref(version.id)) == version.snapshot_id
