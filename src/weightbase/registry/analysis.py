"""What a model is, read from its snapshot: framework, parameters, dtypes, sizes, architecture.

Everything comes from the manifest and (for Hugging Face models) ``config.json``;
no tensor data is read, so analysing a multi-gigabyte model costs one small file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from weightbase.errors import ValidationError
from weightbase.tensors.dtypes import get_dtype

if TYPE_CHECKING:
    from weightbase.tensors.manifest import Snapshot, TensorEntry
    from weightbase.tensors.store import TensorStore

__all__ = [
    "FRAMEWORKS",
    "Architecture",
    "LayerInfo",
    "ModelAnalysis",
    "analyse",
    "trainable_parameter_names",
]

FRAMEWORKS = ("transformers", "pytorch", "safetensors", "numpy")

# Tensors that frameworks save next to the weights but nobody trains: index tables,
# batch-norm statistics, rotary frequencies, causal masks.
_BUFFER_LEAVES = frozenset(
    {
        "position_ids",
        "token_type_ids",
        "num_batches_tracked",
        "running_mean",
        "running_var",
        "inv_freq",
        "masked_bias",
    }
)

# A stack of numbered blocks: ``encoder.layer.3.…``, ``model.layers.3.…``, ``h.3.…``.
# The first numbered segment is the layer; later ones (T5's ``layer.0``) are inside it.
_LAYER = re.compile(
    r"^(?P<stack>(?:.*?\.)??(?:layers?|h|blocks?|resblocks))\.(?P<index>\d+)\.(?P<rest>.+)$"
)
_NO_NAMES: tuple[None, None, None, None] = (None, None, None, None)
_ATTENTION = re.compile(r"attn|attention", re.IGNORECASE)
_CROSS_ATTENTION = re.compile(r"cross|encoder_attn|encdec", re.IGNORECASE)

# Leaf module names of the attention projections, lower-cased, across the common
# naming schemes: BERT (query/key/value, attention.output.dense), LLaMA/Mistral/Qwen
# (q_proj…o_proj), GPT-2 (fused c_attn, c_proj), GPT-NeoX/Falcon (query_key_value,
# dense), DistilBERT (q_lin…out_lin), T5 and Meta's LLaMA (q/k/v/o, wq…wo), MPT (Wqkv),
# Phi-3 (qkv_proj), timm ViT (qkv, proj), BART/OPT/CLIP (out_proj).
_ROLES = {
    "query": frozenset({"query", "q_proj", "q_lin", "q", "wq", "to_q", "query_proj"}),
    "key": frozenset({"key", "k_proj", "k_lin", "k", "wk", "to_k", "key_proj"}),
    "value": frozenset({"value", "v_proj", "v_lin", "v", "wv", "to_v", "value_proj"}),
    "output": frozenset(
        {"o_proj", "out_proj", "out_lin", "o", "wo", "c_proj", "dense", "proj", "to_out"}
    ),
    "fused": frozenset({"c_attn", "query_key_value", "qkv_proj", "qkv", "wqkv", "in_proj"}),
}


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """One attention block: its sizes and the names of its Q/K/V/O weight tensors.

    ``stack`` is the name prefix of the block's stack (``encoder.layer``,
    ``model.layers``, ``transformer.h``), so encoder and decoder layers with the
    same index stay apart. With a fused QKV weight (GPT-2's ``c_attn``),
    ``query``, ``key`` and ``value`` all name it and ``fused_qkv`` is set.
    Sizes are ``None`` where neither the config nor the shapes tell them.
    """

    index: int
    stack: str
    hidden_size: int | None
    num_heads: int | None
    num_kv_heads: int | None
    head_dim: int | None
    query: str | None
    key: str | None
    value: str | None
    output: str | None
    fused_qkv: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LayerInfo:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


@dataclass(frozen=True, slots=True)
class Architecture:
    """A transformer's shape, from its config and checked against its tensors."""

    model_type: str | None
    num_layers: int | None
    hidden_size: int | None
    num_attention_heads: int | None
    num_key_value_heads: int | None
    head_dim: int | None
    intermediate_size: int | None
    vocab_size: int | None
    layers: tuple[LayerInfo, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["layers"] = [layer.to_dict() for layer in self.layers]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Architecture:
        values = {name: data.get(name) for name in cls.__dataclass_fields__ if name != "layers"}
        layers = tuple(LayerInfo.from_dict(layer) for layer in data.get("layers", ()))
        return cls(**values, layers=layers)


@dataclass(frozen=True)
class ModelAnalysis:
    """What a snapshot holds, as a model.

    ``parameters`` counts the elements of every tensor except known buffers
    (``position_ids``, batch-norm statistics, …), whose elements are counted
    in ``buffer_elements``; ``dtypes`` splits ``parameters`` by dtype.
    ``logical_bytes`` is the raw size of every tensor and file, ``stored_bytes``
    the size of the distinct chunks the snapshot references. ``warnings`` says
    where the config and the tensors disagree.
    """

    framework: str
    tensor_count: int
    parameters: int
    trainable_parameters: int
    buffer_elements: int
    dtypes: Mapping[str, int]
    logical_bytes: int
    stored_bytes: int
    architecture: Architecture | None = None
    warnings: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtypes", MappingProxyType(dict(sorted(self.dtypes.items()))))

    @property
    def layers(self) -> tuple[LayerInfo, ...]:
        return self.architecture.layers if self.architecture is not None else ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``from_dict`` reads it back."""
        return {
            "framework": self.framework,
            "tensor_count": self.tensor_count,
            "parameters": self.parameters,
            "trainable_parameters": self.trainable_parameters,
            "buffer_elements": self.buffer_elements,
            "dtypes": dict(self.dtypes),
            "logical_bytes": self.logical_bytes,
            "stored_bytes": self.stored_bytes,
            "architecture": self.architecture.to_dict() if self.architecture else None,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelAnalysis:
        architecture = data.get("architecture")
        return cls(
            framework=data["framework"],
            tensor_count=int(data["tensor_count"]),
            parameters=int(data["parameters"]),
            trainable_parameters=int(data["trainable_parameters"]),
            buffer_elements=int(data["buffer_elements"]),
            dtypes={str(k): int(v) for k, v in data["dtypes"].items()},
            logical_bytes=int(data["logical_bytes"]),
            stored_bytes=int(data["stored_bytes"]),
            architecture=Architecture.from_dict(architecture) if architecture else None,
            warnings=tuple(data.get("warnings", ())),
        )


def trainable_parameter_names(module: Any) -> frozenset[str]:
    """Names of a torch module's parameters with ``requires_grad``, for ``analyse(trainable=…)``."""
    return frozenset(name for name, param in module.named_parameters() if param.requires_grad)


def analyse(
    snapshot: Snapshot | str,
    store: TensorStore | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    trainable: int | Collection[str] | None = None,
) -> ModelAnalysis:
    """Analyse a snapshot as a model, from its manifest and config alone.

    ``snapshot`` is a snapshot, or its id or a ref when ``store`` is given.
    ``config`` is a Hugging Face config dict; without it, ``config.json`` is read
    from the snapshot's files through ``store`` (without a store, none is read).
    ``trainable`` is the trainable parameter count, or the names of the trainable
    parameters (see ``trainable_parameter_names``); by default every
    floating-point tensor that is not a known buffer counts as trainable.

    The framework is ``snapshot.metadata["framework"]`` when set, else
    ``transformers`` for a config with a ``model_type``, else ``pytorch`` or
    ``safetensors`` by the files it came from, else ``numpy``.
    """
    if isinstance(snapshot, str):
        if store is None:
            raise ValidationError(f"analysing snapshot {snapshot!r} by name needs its store")
        snapshot = store.snapshot(snapshot)
    warnings: list[str] = []
    if config is None and store is not None and "config.json" in snapshot.files:
        config = _read_config(store, snapshot, warnings)

    parameters = buffers = floating = 0
    dtypes: dict[str, int] = {}
    for name, entry in snapshot.tensors.items():
        count = _elements(entry)
        if _is_buffer(name, entry):
            buffers += count
            continue
        parameters += count
        dtypes[entry.dtype] = dtypes.get(entry.dtype, 0) + count
        if get_dtype(entry.dtype).is_float:
            floating += count

    return ModelAnalysis(
        framework=_framework(snapshot, config),
        tensor_count=len(snapshot.tensors),
        parameters=parameters,
        trainable_parameters=_trainable(snapshot, trainable, parameters, floating, warnings),
        buffer_elements=buffers,
        dtypes=dtypes,
        logical_bytes=snapshot.nbytes,
        stored_bytes=snapshot.stored_bytes,
        architecture=_architecture(snapshot, config, warnings),
        warnings=tuple(warnings),
    )


# -- counts ----------------------------------------------------------------------------


def _elements(entry: TensorEntry) -> int:
    count = 1
    for dim in entry.shape:
        count *= dim
    return count


def _is_buffer(name: str, entry: TensorEntry) -> bool:
    parts = name.split(".")
    if parts[-1] in _BUFFER_LEAVES:
        return True
    # GPT-2 checkpoints before transformers 4.x saved the causal mask as ``attn.bias``
    return parts[-2:] == ["attn", "bias"] and len(entry.shape) == 4


def _trainable(
    snapshot: Snapshot,
    trainable: int | Collection[str] | None,
    parameters: int,
    floating: int,
    warnings: list[str],
) -> int:
    if trainable is None:
        return floating
    if isinstance(trainable, (bool, str)):
        raise ValidationError(
            f"trainable must be a count or a collection of tensor names, got {trainable!r}"
        )
    if isinstance(trainable, int):
        if not 0 <= trainable <= parameters:
            raise ValidationError(
                f"trainable parameter count {trainable} is not between 0 and the model's "
                f"{parameters} parameters",
                trainable=trainable,
            )
        return trainable
    unknown = sorted(name for name in trainable if name not in snapshot.tensors)
    if unknown:
        # tied weights (an LM head sharing the embedding) are saved once, under one name
        warnings.append(
            f"{len(unknown)} trainable parameter name(s) are not tensors of the snapshot "
            f"(first: {unknown[0]!r}); they are not counted"
        )
    return sum(_elements(snapshot.tensors[name]) for name in set(trainable) - set(unknown))


def _framework(snapshot: Snapshot, config: Mapping[str, Any] | None) -> str:
    declared = snapshot.metadata.get("framework")
    if declared in FRAMEWORKS:
        return declared
    if config is not None and isinstance(config.get("model_type"), str):
        return "transformers"
    kinds = {entry.kind for entry in snapshot.files.values()}
    source_format = snapshot.metadata.get("format")
    if source_format == "torch" or "torch" in kinds:
        return "pytorch"
    if source_format == "safetensors" or "safetensors" in kinds:
        return "safetensors"
    return "numpy"


def _read_config(
    store: TensorStore, snapshot: Snapshot, warnings: list[str]
) -> Mapping[str, Any] | None:
    try:
        loaded = json.loads(store.file_bytes(snapshot, "config.json"))
    except (ValueError, UnicodeDecodeError) as exc:
        warnings.append(f"config.json is not valid JSON ({exc}); architecture not read")
        return None
    if not isinstance(loaded, dict):
        warnings.append("config.json is not a JSON object; architecture not read")
        return None
    return loaded


# -- architecture ----------------------------------------------------------------------------


def _config_int(config: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


@dataclass(frozen=True, slots=True)
class _Sizes:
    hidden: int | None
    heads: int | None
    kv_heads: int | None
    head_dim: int | None


def _config_architecture(config: Mapping[str, Any]) -> Architecture:
    # multimodal configs (LLaVA, …) keep the language model's sizes in text_config
    text = config.get("text_config")
    source = text if isinstance(text, dict) and "hidden_size" not in config else config
    hidden = _config_int(source, "hidden_size", "n_embd", "d_model", "dim", "embed_dim")
    heads = _config_int(
        source, "num_attention_heads", "n_head", "num_heads", "n_heads", "encoder_attention_heads"
    )
    kv_heads = _config_int(source, "num_key_value_heads", "n_kv_heads", "num_kv_heads")
    if kv_heads is None and source.get("multi_query") is True:
        kv_heads = 1  # Falcon-7B: one K/V head shared by all query heads
    if kv_heads is None:
        kv_heads = heads
    head_dim = _config_int(source, "head_dim", "d_kv", "attention_head_size")
    if head_dim is None and hidden and heads and hidden % heads == 0:
        head_dim = hidden // heads
    intermediate = _config_int(
        source, "intermediate_size", "n_inner", "ffn_dim", "d_ff", "encoder_ffn_dim"
    )
    if intermediate is None and "n_inner" in source and hidden:
        intermediate = 4 * hidden  # GPT-2: n_inner=None means 4 * n_embd
    model_type = config.get("model_type")
    return Architecture(
        model_type=model_type if isinstance(model_type, str) else None,
        num_layers=_config_int(source, "num_hidden_layers", "n_layer", "num_layers", "n_layers"),
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=intermediate,
        vocab_size=_config_int(source, "vocab_size"),
    )


def _role(rest: str) -> str | None:
    parts = rest.split(".")
    if parts[-1] == "in_proj_weight":  # torch.nn.MultiheadAttention
        leaf, context = "in_proj", parts[:-1]
    elif parts[-1] == "weight" and len(parts) >= 2:
        leaf, context = parts[-2], parts[:-2]
    else:
        return None
    if not any(_ATTENTION.search(part) for part in context):
        return None
    if any(_CROSS_ATTENTION.search(part) for part in context):
        return None
    leaf = leaf.lower()
    for role, leaves in _ROLES.items():
        if leaf in leaves:
            return role
    return None


def _attention_tensors(snapshot: Snapshot) -> dict[tuple[str, int], dict[str, str]]:
    """(stack, layer index) → role → tensor name, for every 2-D attention weight."""
    found: dict[tuple[str, int], dict[str, str]] = {}
    for name, entry in snapshot.tensors.items():
        if len(entry.shape) != 2:
            continue
        match = _LAYER.match(name)
        if match is None:
            continue
        role = _role(match["rest"])
        if role is None:
            continue
        roles = found.setdefault((match["stack"], int(match["index"])), {})
        roles.setdefault(role, name)  # tensors iterate sorted: the first name wins
    return found


def _architecture(
    snapshot: Snapshot, config: Mapping[str, Any] | None, warnings: list[str]
) -> Architecture | None:
    base = _config_architecture(config) if config is not None else None
    found = _attention_tensors(snapshot)
    if base is None and not found:
        return None
    if base is None:
        base = Architecture(None, None, None, None, None, None, None, None)
    sizes = _Sizes(
        base.hidden_size, base.num_attention_heads, base.num_key_value_heads, base.head_dim
    )

    layers: list[LayerInfo] = []
    for (stack, index), roles in sorted(found.items()):
        layers.append(_layer(snapshot, stack, index, roles, sizes, warnings))
    if not found and base.num_layers:
        warnings.append(
            f"no attention weights found for the config's {base.num_layers} layers; "
            "their tensor names are not known"
        )
        layers = [
            LayerInfo(i, "", sizes.hidden, sizes.heads, sizes.kv_heads, sizes.head_dim, *_NO_NAMES)
            for i in range(base.num_layers)
        ]

    num_layers = base.num_layers
    per_stack: dict[str, int] = {}
    for layer in layers:
        per_stack[layer.stack] = per_stack.get(layer.stack, 0) + 1
    if num_layers is None and per_stack:
        num_layers = max(per_stack.values())
    elif found and num_layers not in per_stack.values():
        counts = ", ".join(f"{stack}: {count}" for stack, count in sorted(per_stack.items()))
        warnings.append(f"config says {num_layers} layers, the tensors hold {counts}")

    first = layers[0] if layers else None
    return Architecture(
        model_type=base.model_type,
        num_layers=num_layers,
        hidden_size=base.hidden_size or (first.hidden_size if first else None),
        num_attention_heads=base.num_attention_heads or (first.num_heads if first else None),
        num_key_value_heads=base.num_key_value_heads or (first.num_kv_heads if first else None),
        head_dim=base.head_dim or (first.head_dim if first else None),
        intermediate_size=base.intermediate_size,
        vocab_size=base.vocab_size,
        layers=tuple(layers),
    )


def _out_features(shape: tuple[int, ...], hidden: int | None) -> tuple[int | None, int | None]:
    """(hidden, output width) of a projection weight, stored (out, in) or, like GPT-2's
    Conv1D, (in, out); ``None`` where the shape does not fit ``hidden``."""
    rows, cols = shape
    if hidden is None:
        return cols, rows  # nn.Linear layout
    if cols == hidden:
        return hidden, rows
    if rows == hidden:
        return hidden, cols
    return None, None


def _layer(
    snapshot: Snapshot,
    stack: str,
    index: int,
    roles: Mapping[str, str],
    sizes: _Sizes,
    warnings: list[str],
) -> LayerInfo:
    where = f"{stack}.{index}"
    hidden, heads, kv_heads, head_dim = sizes.hidden, sizes.heads, sizes.kv_heads, sizes.head_dim
    fused = "fused" in roles and "query" not in roles

    def width(role: str) -> int | None:
        name = roles.get(role)
        if name is None:
            return None
        shape = snapshot.tensors[name].shape
        found_hidden, out = _out_features(shape, hidden)
        if found_hidden is None:
            warnings.append(
                f"{where}: {name} has shape {shape}, which does not fit hidden size {hidden}"
            )
        return out

    if fused:
        name = roles["fused"]
        shape = snapshot.tensors[name].shape
        if hidden is None:  # without a config: the side that is a third of the other
            rows, cols = shape
            hidden = cols if rows == 3 * cols else rows if cols == 3 * rows else None
        total = width("fused")
        if total is not None and head_dim and heads and kv_heads:
            if total != (heads + 2 * kv_heads) * head_dim:
                warnings.append(
                    f"{where}: {name} is {total} wide; {heads} query and {kv_heads} key/value "
                    f"heads of {head_dim} make {(heads + 2 * kv_heads) * head_dim}"
                )
        elif total is not None and head_dim and total % (3 * head_dim) == 0:
            heads = kv_heads = total // (3 * head_dim)
    else:
        if hidden is None and "query" in roles:
            hidden = snapshot.tensors[roles["query"]].shape[1]
        q_width, kv_width = width("query"), width("key")
        heads = _heads(where, "query", q_width, heads, head_dim, warnings)
        kv_heads = _heads(where, "key", kv_width, kv_heads, head_dim, warnings)
    o_width = width("output")
    if o_width is not None and heads and head_dim and o_width != heads * head_dim:
        warnings.append(
            f"{where}: {roles['output']} is {o_width} wide; {heads} heads of {head_dim} "
            f"make {heads * head_dim}"
        )
    query, key, value = (roles.get(role) for role in ("query", "key", "value"))
    if fused:
        query = key = value = roles["fused"]
    return LayerInfo(
        index=index,
        stack=stack,
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        query=query,
        key=key,
        value=value,
        output=roles.get("output"),
        fused_qkv=fused,
    )


def _heads(
    where: str,
    role: str,
    out: int | None,
    expected: int | None,
    head_dim: int | None,
    warnings: list[str],
) -> int | None:
    """Heads of a Q or K projection ``out`` wide: the shape wins where the config disagrees."""
    if out is None or not head_dim:
        return expected
    if out % head_dim:
        warnings.append(f"{where}: {role} is {out} wide, not a multiple of head size {head_dim}")
        return expected
    found = out // head_dim
    if expected is not None and found != expected:
        warnings.append(
            f"{where}: {role} has {found} heads of {head_dim}; the config says {expected}"
        )
    return found
