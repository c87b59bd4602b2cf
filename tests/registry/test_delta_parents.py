"""A push stores deltas against its lineage parent, or ``delta_from``, of any model.

Runs embedded and against a live server (``conftest.py``): a remote push takes
the same parent for its staging store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from weightbase.errors import NotFound
from weightbase.registry import ModelVersion
from weightbase.tensors import WriteOptions, WriteStats
from weightbase.workspace import Workspace

Array = np.ndarray[Any, Any]
ELEMENTS = 96 * 1024  # 384 KiB a tensor: above the pack threshold, so chunked and delta-able


def _base(seed: int = 0) -> dict[str, Array]:
    rng = np.random.default_rng(seed)
    return {f"layer{i}.weight": rng.standard_normal(ELEMENTS, np.float32) for i in range(4)}


def _tuned(state: dict[str, Array], seed: int) -> dict[str, Array]:
    """Every weight nudged, as a fine-tuning step nudges them."""
    rng = np.random.default_rng(seed)
    return {
        name: (value + rng.standard_normal(value.shape, np.float32) * 1e-4).astype(np.float32)
        for name, value in state.items()
    }


def _push(wb: Workspace, name: str, state: dict[str, Array], **kwargs: Any) -> WriteStats:
    stats = WriteStats()
    wb.models.push(name, state, stats=stats, **kwargs)
    return stats


def _reads_back(wb: Workspace, ref: str, state: dict[str, Array]) -> bool:
    found = wb.models.pull(ref)
    return found.keys() == state.keys() and all(
        found[name].tobytes() == value.tobytes() for name, value in state.items()
    )


def _depth(wb: Workspace, version: ModelVersion) -> int:
    snapshot = wb.store.snapshot(version.snapshot_id)
    return max(len(ref.bases) for entry in snapshot.tensors.values() for ref in entry.chunks)


def test_a_fine_tune_pushed_as_another_model_is_stored_as_deltas(workspace: Workspace) -> None:
    base = _base()
    whole = _push(workspace, "encoder", base).new_bytes
    tuned = _tuned(base, 1)
    stats = _push(workspace, "encoder-tuned", tuned, fine_tuned_from="encoder@0.1.0")
    assert stats.delta_chunks > 0
    assert stats.new_bytes < 0.75 * whole
    assert _reads_back(workspace, "encoder-tuned@0.1.0", tuned)
    assert _reads_back(workspace, "encoder@0.1.0", base)


def test_derived_from_is_the_delta_parent_when_no_fine_tune_is_named(
    workspace: Workspace,
) -> None:
    base = _base()
    whole = _push(workspace, "encoder", base).new_bytes
    derived = _tuned(base, 2)
    stats = _push(workspace, "encoder-derived", derived, derived_from="encoder@0.1.0")
    assert stats.delta_chunks > 0
    assert stats.new_bytes < 0.75 * whole
    assert _reads_back(workspace, "encoder-derived@0.1.0", derived)


def test_fine_tuned_from_wins_over_the_models_own_latest(workspace: Workspace) -> None:
    base = _base()
    _push(workspace, "encoder", base)
    unrelated = _base(seed=9)
    whole = _push(workspace, "student", unrelated).new_bytes
    tuned = _tuned(base, 3)
    stats = _push(workspace, "student", tuned, fine_tuned_from="encoder@0.1.0")
    assert stats.delta_chunks > 0
    assert stats.new_bytes < 0.75 * whole
    assert _reads_back(workspace, "student@0.2.0", tuned)


def test_delta_from_none_stores_the_weights_whole(workspace: Workspace) -> None:
    base = _base()
    whole = _push(workspace, "encoder", base).new_bytes
    tuned = _tuned(base, 4)
    stats = _push(
        workspace, "encoder-tuned", tuned, fine_tuned_from="encoder@0.1.0", delta_from=None
    )
    assert stats.delta_chunks == 0
    assert stats.new_bytes > 0.9 * whole
    assert _reads_back(workspace, "encoder-tuned@0.1.0", tuned)
    # and the lineage is still recorded
    later = _push(workspace, "encoder", _tuned(tuned, 5), delta_from=None)
    assert later.delta_chunks == 0


def test_delta_from_names_a_parent_across_models_and_within_one(workspace: Workspace) -> None:
    base = _base()
    whole = _push(workspace, "encoder", base).new_bytes
    _push(workspace, "encoder", _base(seed=7))  # 0.2.0: unrelated weights, the latest
    tuned = _tuned(base, 6)
    across = _push(workspace, "copy", tuned, delta_from="encoder@0.1.0")
    assert across.delta_chunks > 0
    assert across.new_bytes < 0.75 * whole
    again = _tuned(base, 7)
    within = _push(workspace, "encoder", again, delta_from="encoder@0.1.0")
    assert within.delta_chunks > 0
    assert within.new_bytes < 0.75 * whole
    assert _reads_back(workspace, "copy@0.1.0", tuned)
    assert _reads_back(workspace, "encoder@0.3.0", again)


def test_an_unknown_delta_from_is_not_found(workspace: Workspace) -> None:
    with pytest.raises(NotFound):
        workspace.models.push("encoder", _base(), delta_from="missing@1.0.0")


def test_chains_stay_bounded_across_pushes_and_models(workspace: Workspace) -> None:
    bound = WriteOptions().max_delta_chain
    state = _base()
    _push(workspace, "encoder", state)
    for step in range(1, bound + 3):
        state = _tuned(state, 10 + step)
        _push(workspace, "encoder", state, codec="delta")
    versions = workspace.models.versions("encoder")
    depths = [_depth(workspace, version) for version in versions]
    assert max(depths) == bound
    deepest = versions[depths.index(bound)]
    tuned = _tuned(workspace.models.pull(deepest), 30)
    _push(workspace, "encoder-tuned", tuned, fine_tuned_from=deepest, codec="delta")
    pushed = workspace.models.version("encoder-tuned@0.1.0")
    assert _depth(workspace, pushed) <= bound
    assert _reads_back(workspace, "encoder-tuned@0.1.0", tuned)


def test_new_bytes_of_a_push_never_exceed_its_stored_bytes(workspace: Workspace) -> None:
    base = _base()
    tied = {**base, "lm_head.weight": base["layer0.weight"].copy()}
    first = WriteStats()
    version = workspace.models.push("encoder", tied, stats=first)
    assert first.new_bytes <= workspace.store.snapshot(version.snapshot_id).stored_bytes
    second = WriteStats()
    tuned = _tuned(tied, 40)
    version = workspace.models.push("encoder-tuned", tuned, fine_tuned_from=version, stats=second)
    assert 0 < second.new_bytes <= workspace.store.snapshot(version.snapshot_id).stored_bytes


def test_the_cli_takes_delta_from(weightbase_home: Path, tmp_path: Path) -> None:
    from safetensors.numpy import save_file
    from typer.testing import CliRunner

    from weightbase.cli import app

    base = _base()
    files = {}
    for label, state in (("base", base), ("a", _tuned(base, 50)), ("b", _tuned(base, 51))):
        files[label] = tmp_path / f"{label}.safetensors"
        save_file(state, str(files[label]))

    def new_bytes(*args: str) -> int:
        result = CliRunner().invoke(app, ["models", "push", *args, "--json"])
        assert result.exit_code == 0, (result.output, result.exception)
        return int(json.loads(result.stdout)["new_bytes"])

    whole = new_bytes("encoder", str(files["base"]))
    tuned = new_bytes("tuned", str(files["a"]), "--fine-tuned-from", "encoder@0.1.0")
    assert tuned < 0.75 * whole
    picked = new_bytes("picked", str(files["b"]), "--delta-from", "encoder@0.1.0")
    assert picked < 0.75 * whole
    stored_whole = new_bytes("whole", str(files["b"]), "--delta-from", "none")
    assert stored_whole > 0.9 * whole
