"""``wb.models``: versions, aliases, stages, diff, rollback, history, lineage; both catalogs."""

from __future__ import annotations

import filecmp
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from tests.remote_support import behind
from tests.tiny_models import tiny_bert_config

from weightbase.catalog.schema import ModelRow, ModelVersionLayerRow, ModelVersionRow
from weightbase.errors import Conflict, NotFound, ValidationError
from weightbase.events import Event
from weightbase.lineage import Node
from weightbase.workspace import Workspace


def _weights(seed: int, n: int = 3) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    return {
        f"layer{i}.weight": rng.standard_normal((64, 32)).astype(np.float32) for i in range(n)
    } | {"layer0.bias": rng.standard_normal(64).astype(np.float32)}


def _tiny_bert(seed: int = 0) -> Any:
    """A two-layer BERT built from a config; skips the test without torch and transformers."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    config = tiny_bert_config()
    return transformers.BertModel(config)


def _count(wb: Workspace, model: type[Any]) -> int:
    with behind(wb).catalog.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


# -- pushing and pulling ------------------------------------------------------------------


def test_push_numpy_bumps_minor_and_pulls_back(workspace: Workspace) -> None:
    weights = _weights(1)
    v1 = workspace.models.push("mlp", weights)
    assert (v1.version, v1.created, v1.framework) == ("0.1.0", True, "numpy")
    assert v1.total_params == sum(a.size for a in weights.values())
    assert v1.logical_bytes == sum(a.nbytes for a in weights.values())
    pulled = workspace.models.pull("mlp@0.1.0")
    assert pulled.keys() == weights.keys()
    for name, array in weights.items():
        np.testing.assert_array_equal(pulled[name], array)
        assert pulled[name].dtype == array.dtype


@pytest.mark.parametrize(
    ("part", "expected"), [("major", "2.0.0"), ("minor", "1.1.0"), ("patch", "1.0.1")]
)
def test_bump_from_explicit_version(workspace: Workspace, part: Any, expected: str) -> None:
    workspace.models.push("m", _weights(1), version="1.0.0")
    assert workspace.models.push("m", _weights(2), bump=part).version == expected


def test_explicit_versions_are_canonical_and_unique(workspace: Workspace) -> None:
    first = workspace.models.push("m", _weights(1), version="v1.2.3")
    assert first.version == "1.2.3"
    with pytest.raises(Conflict, match=r"m@1\.2\.3 already exists"):
        workspace.models.push("m", _weights(2), version="1.2.3")
    with pytest.raises(ValidationError, match="semantic version"):
        workspace.models.push("m", _weights(3), version="one point two")
    assert [v.version for v in workspace.models.versions("m")] == ["1.2.3"]


def test_identical_content_returns_the_existing_version(
    workspace: Workspace, tmp_path: Path
) -> None:
    weights = _weights(7)
    first = workspace.models.push("m", weights)
    again = workspace.models.push("m", {k: v.copy() for k, v in weights.items()})
    assert (again.id, again.version, again.created) == (first.id, "0.1.0", False)
    # the same weights from a safetensors file are the same content
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "w.safetensors"
    safetensors_numpy.save_file(weights, str(path))
    from_file = workspace.models.push("m", path)
    assert (from_file.id, from_file.created) == (first.id, False)
    assert _count(workspace, ModelVersionRow) == 1


def test_push_torch_module_records_architecture(workspace: Workspace) -> None:
    torch = pytest.importorskip("torch")
    model = _tiny_bert()
    version = workspace.models.push("bert", model, description="tiny")
    assert version.framework == "pytorch"
    assert (version.model_type, version.num_layers, version.hidden_size) == ("bert", 2, 32)
    assert (version.num_attention_heads, version.head_dim) == (4, 8)
    params = sum(p.numel() for p in model.parameters())
    assert version.total_params == params
    assert version.trainable_params == params
    analysis = workspace.models.analysis("bert@0.1.0")
    assert [layer.index for layer in analysis.layers] == [0, 1]
    assert analysis.layers[0].query == "encoder.layer.0.attention.self.query.weight"
    # the layers are rows, queryable in SQL
    with behind(workspace).catalog.session() as session:
        rows = session.scalars(
            select(ModelVersionLayerRow).where(ModelVersionLayerRow.version_id == version.id)
        ).all()
    assert sorted((r.stack, r.layer_index, r.num_heads, r.head_dim) for r in rows) == [
        ("encoder.layer", 0, 4, 8),
        ("encoder.layer", 1, 4, 8),
    ]
    # and the module's weights load back into a fresh module
    fresh = _tiny_bert(seed=1)
    workspace.models.load_into(fresh, "bert@latest")
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_frozen_parameters_are_not_trainable(workspace: Workspace) -> None:
    model = _tiny_bert()
    for param in model.embeddings.parameters():
        param.requires_grad = False
    version = workspace.models.push("bert", model)
    frozen = sum(p.numel() for p in model.embeddings.parameters())
    assert version.trainable_params == version.total_params - frozen


def test_push_and_export_a_model_folder_file_for_file(workspace: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "bert"
    _tiny_bert().save_pretrained(folder)
    version = workspace.models.push("bert", folder)
    assert version.model_type == "bert"
    out = workspace.models.export("bert@0.1.0", tmp_path / "out", format="folder")
    names = sorted(p.name for p in folder.iterdir())
    assert sorted(p.name for p in out.iterdir()) == names
    _, mismatch, errors = filecmp.cmpfiles(folder, out, names, shallow=False)
    assert (mismatch, errors) == ([], [])


def test_export_safetensors_is_bit_exact(workspace: Workspace, tmp_path: Path) -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "w.safetensors"
    safetensors_numpy.save_file(_weights(3), str(path))
    workspace.models.push("m", path)
    out = workspace.models.export("m@0.1.0", tmp_path / "back.safetensors")
    assert out.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("format", ["safetensors", "torch", "npz"])
def test_export_reports_progress(workspace: Workspace, tmp_path: Path, format: str) -> None:
    if format == "torch":
        pytest.importorskip("torch")  # a .pt file is written by torch itself
    weights = _weights(5)
    workspace.models.push("m", weights)
    seen: list[int] = []
    workspace.models.export("m", tmp_path / f"out.{format}", format=format, progress=seen.append)
    assert sum(seen) == sum(array.nbytes for array in weights.values())
    assert not list(tmp_path.glob(".*wb-tmp"))  # written through a temporary name


def test_pull_torch_state_dict(workspace: Workspace) -> None:
    torch = pytest.importorskip("torch")
    state = {"w": torch.randn(8, 4, dtype=torch.bfloat16), "b": torch.zeros(8)}
    workspace.models.push("t", state)
    pulled = workspace.models.pull_torch("t")
    assert pulled["w"].dtype == torch.bfloat16
    assert torch.equal(pulled["w"], state["w"])
    assert workspace.models.version("t").framework == "pytorch"


def test_folder_with_missing_shard_writes_nothing(workspace: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "sharded"
    _tiny_bert().save_pretrained(folder, max_shard_size="50KB")
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) > 1
    shards[-1].unlink()
    with pytest.raises(ValidationError, match=shards[-1].name):
        workspace.models.push("bert", folder)
    assert _count(workspace, ModelRow) == 0
    assert _count(workspace, ModelVersionRow) == 0


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({}, "no tensors"),
        (42, "cannot push a int"),
        ("/no/such/file.safetensors", "does not exist"),
    ],
)
def test_bad_sources(workspace: Workspace, source: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        workspace.models.push("m", source)
    assert _count(workspace, ModelRow) == 0


@pytest.mark.parametrize("name", ["", "a b", "../x", "x/", "/x", "a//b", "x" * 256, "-x"])
def test_bad_model_names(workspace: Workspace, name: str) -> None:
    with pytest.raises(ValidationError, match="invalid model name"):
        workspace.models.push(name, _weights(1))


def test_unknown_model_and_version(workspace: Workspace) -> None:
    with pytest.raises(NotFound, match="no model called 'ghost'"):
        workspace.models.version("ghost@1.0.0")
    with pytest.raises(NotFound, match="no model called 'ghost'"):
        workspace.models.push("ghost", _weights(1), create=False)
    workspace.models.push("m", _weights(1))
    with pytest.raises(NotFound, match=r"no version m@9\.9\.9"):
        workspace.models.version("m@9.9.9")
    with pytest.raises(NotFound, match="no version or alias 'prod'"):
        workspace.models.version("m", "prod")


# -- aliases, stages, tags, metrics, card --------------------------------------------------


def test_aliases_move_and_resolve(workspace: Workspace) -> None:
    workspace.models.push("m", _weights(1))
    workspace.models.push("m", _weights(2), aliases=["staging"])
    assert workspace.models.version("m@staging").version == "0.2.0"
    workspace.models.set_alias("m", "production", "0.1.0")
    workspace.models.set_alias("m", "staging", "0.1.0")
    assert workspace.models.version("m@staging").version == "0.1.0"
    assert dict(workspace.models.get("m").aliases) == {"production": "0.1.0", "staging": "0.1.0"}
    assert workspace.models.version("m@0.1.0").aliases == ("production", "staging")
    workspace.models.remove_alias("m", "staging")
    with pytest.raises(NotFound):
        workspace.models.version("m@staging")
    with pytest.raises(NotFound, match="no alias 'staging'"):
        workspace.models.remove_alias("m", "staging")
    for bad in ("latest", "1.0.0", "has space"):
        with pytest.raises(ValidationError, match="invalid alias"):
            workspace.models.set_alias("m", bad, "0.1.0")


def test_stages(workspace: Workspace) -> None:
    workspace.models.push("m", _weights(1), stage="staging")
    assert workspace.models.version("m").stage == "staging"
    promoted = workspace.models.promote("m@0.1.0", "production", reason="passed eval")
    assert promoted.stage == "production"
    with pytest.raises(ValidationError, match="unknown stage 'prod'"):
        workspace.models.promote("m@0.1.0", "prod")
    last = workspace.models.history("m")[-1]
    assert (last.action, last.before, last.after, last.reason) == (
        "version.stage",
        {"version": "0.1.0", "stage": "staging"},
        {"version": "0.1.0", "stage": "production"},
        "passed eval",
    )


def test_tags_metrics_and_card(workspace: Workspace) -> None:
    workspace.models.create("m", description="d", licence="apache-2.0", tags=["nlp"])
    with pytest.raises(Conflict, match="already exists"):
        workspace.models.create("m")
    assert workspace.models.create("m", exist_ok=True).name == "m"
    workspace.models.push("m", _weights(1), tags=["baseline"], metrics={"accuracy": 0.9})
    workspace.models.tag("m", "encoder")
    workspace.models.tag("m@0.1.0", "reviewed")
    workspace.models.untag("m@0.1.0", "baseline")
    workspace.models.update("m", model_card="# M\n\nA model.")
    model = workspace.models.get("m")
    assert (model.description, model.licence, model.tags) == ("d", "apache-2.0", ("encoder", "nlp"))
    assert model.model_card == "# M\n\nA model."
    workspace.models.log_metrics("m@0.1.0", {"accuracy": 0.92, "f1": 0.8}, dataset="val")
    version = workspace.models.version("m@0.1.0")
    assert version.tags == ("reviewed",)
    assert dict(version.metrics) == {"accuracy": 0.92, "f1": 0.8}
    with pytest.raises(ValidationError, match="must be finite"):
        workspace.models.log_metrics("m@0.1.0", {"loss": float("nan")})
    with pytest.raises(ValidationError, match="invalid metric name"):
        workspace.models.log_metrics("m@0.1.0", {"bad\nname": 1.0})
    with pytest.raises(ValidationError, match="invalid tag"):
        workspace.models.tag("m", " padded ")


def test_list_filters_and_pages(workspace: Workspace) -> None:
    for i in range(5):
        workspace.models.push(f"numpy-{i}", _weights(i), tags=["version-tag"])
        if i % 2 == 0:
            workspace.models.tag(f"numpy-{i}", "even")
    workspace.models.push("bert", _tiny_bert())
    workspace.models.set_alias("numpy-3", "production", "0.1.0")
    models = workspace.models
    assert [m.name for m in models.list()] == ["bert"] + [f"numpy-{i}" for i in range(5)]
    assert [m.name for m in models.list(tag="even")] == ["numpy-0", "numpy-2", "numpy-4"]
    assert models.list(tag="version-tag").items == ()  # versions' tags are not the model's
    assert [m.name for m in models.list(alias="production")] == ["numpy-3"]
    assert [m.name for m in models.list(framework="pytorch")] == ["bert"]
    assert [m.name for m in models.list(architecture="bert")] == ["bert"]
    assert [m.name for m in models.list(name="PY-1")] == ["numpy-1"]
    assert [m.name for m in models.list(name="%")] == []
    first = models.list(limit=4)
    assert (len(first), first.next_after) == (4, "numpy-2")
    second = models.list(limit=4, after=first.next_after)
    assert ([m.name for m in second], second.next_after) == (["numpy-3", "numpy-4"], None)
    assert models.get("numpy-3").latest_version == "0.1.0"


def test_delete_is_guarded_by_aliases(workspace: Workspace) -> None:
    workspace.models.push("m", _weights(1), aliases=["production"])
    workspace.models.push("m", _weights(2))
    with pytest.raises(Conflict, match="is aliased as production"):
        workspace.models.delete_version("m@0.1.0")
    workspace.models.delete_version("m@0.2.0", reason="bad")
    assert [v.version for v in workspace.models.versions("m")] == ["0.1.0"]
    # a deleted version's number is not reused
    assert workspace.models.push("m", _weights(3)).version == "0.3.0"
    with pytest.raises(Conflict, match="has aliases"):
        workspace.models.delete("m")
    workspace.models.delete("m", force=True, reason="retired")
    with pytest.raises(NotFound):
        workspace.models.get("m")
    assert workspace.models.list().items == ()
    # the name is free again
    assert workspace.models.push("m", _weights(1)).version == "0.1.0"


# -- diff, rollback, history, lineage ---------------------------------------------------------


def test_diff_between_versions(workspace: Workspace) -> None:
    base = _weights(1)
    tuned = dict(base)
    tuned["layer1.weight"] = base["layer1.weight"] + np.float32(0.01)
    tuned["extra"] = np.ones(4, np.float32)
    del tuned["layer0.bias"]
    workspace.models.push("m", base, metrics={"accuracy": 0.8})
    workspace.models.push("m", tuned, metrics={"accuracy": 0.85})
    diff = workspace.models.diff("m@0.1.0", "m@0.2.0")
    assert [c.name for c in diff.changed] == ["layer1.weight"]
    assert [t.name for t in diff.added] == ["extra"]
    assert [t.name for t in diff.removed] == ["layer0.bias"]
    assert diff.unchanged == ("layer0.weight", "layer2.weight")
    values = diff.changed[0].values
    assert values is not None
    assert values.max_abs_diff == pytest.approx(0.01, rel=1e-3)
    assert values.cosine > 0.99
    assert diff.unchanged_bytes == 2 * 64 * 32 * 4
    (metric,) = diff.metrics
    assert (metric.name, metric.before, metric.after) == ("accuracy", 0.8, 0.85)
    same = workspace.models.diff("0.1.0", "0.1.0", model="m")
    assert same.identical


def test_rollback_moves_the_alias_and_records_why(workspace: Workspace) -> None:
    workspace.models.push("m", _weights(1))
    workspace.models.push("m", _weights(2), aliases=["production"])
    rolled = workspace.models.rollback("m", to="0.1.0", reason="latency regression")
    assert rolled.version == "0.1.0"
    assert workspace.models.version("m@production").version == "0.1.0"
    entry = behind(workspace).audit.entries(
        "model", workspace.models.get("m").id, action="alias.rollback"
    )[0]
    assert (entry.before, entry.after, entry.reason, entry.actor) == (
        {"alias": "production", "version": "0.2.0"},
        {"alias": "production", "version": "0.1.0"},
        "latency regression",
        "test-user",
    )
    with pytest.raises(ValidationError, match=r"already points at 0\.1\.0"):
        workspace.models.rollback("m", to="0.1.0")
    with pytest.raises(NotFound, match="no alias 'champion' to roll back"):
        workspace.models.rollback("m", to="0.1.0", alias="champion")


def test_history_is_every_change_in_order(workspace: Workspace) -> None:
    workspace.models.push("m", _weights(1))
    workspace.models.push("m", _weights(2))
    workspace.models.set_alias("m", "production", "0.2.0")
    workspace.models.promote("m@0.2.0", "production")
    workspace.models.rollback("m", to="0.1.0", reason="r")
    actions = [entry.action for entry in workspace.models.history("m")]
    assert actions == [
        "model.create",
        "version.create",
        "version.create",
        "alias.set",
        "version.stage",
        "alias.rollback",
    ]


def test_describe_passes_over_ids_no_catalog_row_can_have(workspace: Workspace) -> None:
    version = workspace.models.push("m", _weights(1))
    odd = [Node("model_version", text) for text in ("9" * 30, str(2**63), "\u00b2", "0", "-1")]
    named = workspace.models.describe([*odd, workspace.models.node(version)])
    assert named == {workspace.models.node(version): "m@0.1.0"}
    datasets = [Node("dataset_version", n.id) for n in odd]
    assert workspace.describe(datasets) == {node: str(node) for node in datasets}  # unnamed


def test_lineage_edges_and_walks(workspace: Workspace) -> None:
    base = workspace.models.push("base", _weights(1))
    tuned = workspace.models.push("tuned", _weights(2), fine_tuned_from=base)
    merged = workspace.models.push("tuned", _weights(3), derived_from="tuned@0.1.0")
    ancestors = workspace.models.lineage(merged)
    names = workspace.models.describe(reached.node for reached in ancestors)
    assert [(names[r.node], r.relation, r.distance) for r in ancestors] == [
        ("tuned@0.1.0", "derived_from", 1),
        ("base@0.1.0", "fine_tuned_from", 2),
    ]
    descendants = workspace.models.lineage("base@0.1.0", direction="descendants", depth=1)
    assert [r.node for r in descendants] == [workspace.models.node(tuned)]
    workspace.models.link(merged, "trained_on", Node("dataset_version", "digits@1"))
    assert Node("dataset_version", "digits@1") in [
        r.node for r in workspace.models.lineage(merged, depth=1)
    ]


def test_events_are_delivered_after_commit(workspace: Workspace) -> None:
    seen: list[Event] = []
    behind(workspace).events.on("model_version_created", seen.append)
    version = workspace.models.push("m", _weights(1))
    workspace.models.push("m", _weights(1))  # identical: no new version, no event
    assert [(e.payload["model"], e.payload["version"]) for e in seen] == [("m", version.version)]
    assert [e.type for e in behind(workspace).events.history("model_version_created")] == [
        "model_version_created"
    ]


def test_versions_share_chunks_in_the_store(workspace: Workspace) -> None:
    rng = np.random.default_rng(0)
    # tensors over 64 KiB get chunks of their own (smaller ones are packed together)
    base = {f"w{i}": rng.standard_normal((256, 128)).astype(np.float32) for i in range(8)}
    workspace.models.push("m", base)
    tuned = dict(base, w0=base["w0"] * np.float32(1.001))
    v2 = workspace.models.push("m", tuned)
    first = workspace.models.version("m@0.1.0")
    sharing = behind(workspace).store.sharing(first.snapshot_id, v2.snapshot_id)
    assert sharing.shared_bytes > 4 * sharing.only_second_bytes


# -- pinning in the store --------------------------------------------------------------------


def test_each_version_pins_its_weights_and_deleting_unpins(workspace: Workspace) -> None:
    rng = np.random.default_rng(3)
    first = workspace.models.push("m", {"w": rng.standard_normal((256, 256)).astype(np.float32)})
    second = workspace.models.push("m", {"w": rng.standard_normal((256, 256)).astype(np.float32)})
    refs = behind(workspace).store.refs()
    assert refs == {
        f"registry/model-versions/{first.id}": first.snapshot_id,
        f"registry/model-versions/{second.id}": second.snapshot_id,
    }
    workspace.models.delete_version("m@0.2.0")
    assert behind(workspace).store.refs() == {
        f"registry/model-versions/{first.id}": first.snapshot_id
    }
    report = behind(workspace).store.gc(grace_seconds=0)
    assert report.removed_bytes > 0
    assert behind(workspace).store.fsck().ok
    assert workspace.models.pull("m@0.1.0")["w"].shape == (256, 256)
    workspace.models.delete("m")
    assert behind(workspace).store.refs() == {}


def test_a_refused_push_pins_nothing(workspace: Workspace) -> None:
    first = workspace.models.push("m", _weights(1), version="1.0.0")
    with pytest.raises(Conflict, match=r"m@1\.0\.0 already exists"):
        workspace.models.push("m", _weights(2), version="1.0.0")
    with pytest.raises(ValidationError):
        workspace.models.push("m", _weights(2), derived_from="m@1.0.0", stage="nope")
    # the refused weights are unpinned, so gc takes them back
    assert behind(workspace).store.refs() == {
        f"registry/model-versions/{first.id}": first.snapshot_id
    }
    assert behind(workspace).store.gc(grace_seconds=0).removed_snapshots == 1
    assert list(behind(workspace).store.snapshots()) == [first.snapshot_id]


def test_an_identical_push_applies_what_it_names(workspace: Workspace) -> None:
    weights = _weights(4)
    first = workspace.models.push("m", weights)
    again = workspace.models.push(
        "m", weights, tags=["again"], aliases=["champion"], metrics={"f1": 0.5}, stage="staging"
    )
    assert (again.id, again.created) == (first.id, False)
    assert again.tags == ("again",)
    assert again.aliases == ("champion",)
    assert dict(again.metrics) == {"f1": 0.5}
    assert again.stage == "staging"
    with pytest.raises(Conflict, match=r"already m@0\.1\.0; it cannot also be 2\.0\.0"):
        workspace.models.push("m", weights, version="2.0.0")
    same = workspace.models.push("m", weights, version="0.1.0")
    assert (same.id, same.created) == (first.id, False)


def test_model_card_changes_are_audited_by_digest(workspace: Workspace) -> None:
    workspace.models.create("m")
    workspace.models.update("m", model_card="# Card\n" + "x" * 5000)
    entry = workspace.models.history("m")[-1]
    assert entry.action == "model.update"
    assert entry.after is not None
    card = entry.after["model_card"]
    assert isinstance(card, dict)
    assert card["characters"] == 5007
    assert len(str(card["blake3"])) == 16
