"""The globals a model file may name: what ``torch.save``, NumPy and joblib write, nothing more.

A pickle can only act through the globals it names, so the scanner judges each one against
this list. It mirrors what ``torch.load(weights_only=True)`` accepts, plus NumPy's and
joblib's array reconstruction and a few harmless ``builtins``; every other global is a
finding, however innocent it looks, because a denylist of dangerous ones is always one
callable short.
"""

from __future__ import annotations

import _compat_pickle

__all__ = ["ALLOWLIST", "is_allowed", "resolve_global"]

# torch's rebuild functions: each turns storages and metadata into a tensor, nothing else.
_TORCH_REBUILD = {
    "torch._utils": (
        "_rebuild_tensor",
        "_rebuild_tensor_v2",
        "_rebuild_tensor_v3",
        "_rebuild_parameter",
        "_rebuild_parameter_with_state",
        "_rebuild_qtensor",
        "_rebuild_sparse_tensor",
        "_rebuild_nested_tensor",
        "_rebuild_meta_tensor_no_storage",
        "_rebuild_wrapper_subclass",
        "_rebuild_device_tensor_from_cpu_tensor",
        "_rebuild_device_tensor_from_numpy",
    ),
    # tensor subclasses: calls one of the above, then the subclass (itself judged by name)
    "torch._tensor": ("_rebuild_from_type_v2",),
    "torch.serialization": ("_get_layout",),
    "torch.nn.parameter": ("Parameter",),
    "torch.storage": ("TypedStorage", "UntypedStorage"),
}

_TORCH_DTYPES = (
    "bool",
    *(f"uint{bits}" for bits in (1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64)),
    *(f"int{bits}" for bits in (1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64)),
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex32",
    "complex64",
    "complex128",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e5m2",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "float4_e2m1fn_x2",
    "bits1x8",
    "bits2x4",
    "bits4x2",
    "bits8",
    "bits16",
    "qint8",
    "quint8",
    "qint32",
    "quint4x2",
    "quint2x4",
)

_TORCH_OTHER = (
    "Size",
    "Tensor",
    "device",
    # quantization schemes, as stored with quantized tensors
    "per_tensor_affine",
    "per_tensor_symmetric",
    "per_channel_affine",
    "per_channel_symmetric",
    "per_channel_affine_float_qparams",
)

# torch's legacy typed storages and tensor types, as old files and the legacy format name them
_SPARSE_KINDS = ("BFloat16", "Byte", "Char", "Double", "Float", "Half", "Int", "Long", "Short")
_LEGACY_KINDS = (*_SPARSE_KINDS, "Bool", "ComplexDouble", "ComplexFloat")
_QUANTIZED_STORAGES = ("QInt32", "QInt8", "QUInt2x4", "QUInt4x2", "QUInt8")


def _torch_names() -> set[str]:
    names = {f"{module}.{name}" for module, group in _TORCH_REBUILD.items() for name in group}
    names |= {f"torch.{name}" for name in (*_TORCH_DTYPES, *_TORCH_OTHER)}
    for prefix in ("torch", "torch.cuda"):
        names |= {f"{prefix}.{kind}Storage" for kind in _LEGACY_KINDS}
        names |= {f"{prefix}.{kind}Tensor" for kind in _LEGACY_KINDS if "Complex" not in kind}
    names |= {f"torch.{kind}Storage" for kind in _QUANTIZED_STORAGES}
    for prefix in ("torch.sparse", "torch.cuda.sparse"):
        names |= {f"{prefix}.{kind}Tensor" for kind in _SPARSE_KINDS}
    return names


_NUMPY = {
    # ndarray.__reduce__ and the dtype it names; numpy 2 moved the module to numpy._core
    f"{core}.{name}"
    for core in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {
    # protocol 5 pickles of contiguous arrays rebuild from a buffer
    "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer",
    "numpy.ndarray",
    "numpy.dtype",
}

_OTHER = {
    # joblib's array placeholder: joblib reads the raw array bytes that follow it in the
    # file (the scanner skips them the same way); it holds no callable of its own
    "joblib.numpy_pickle.NumpyArrayWrapper",
    # containers whose reconstruction only stores the items it is given
    "collections.OrderedDict",
    "collections.Counter",
    "collections.defaultdict",  # its default_factory is another global, judged by name
    # the pickle protocol's own helpers: copyreg rebuilds an object of a class that is
    # itself named (and judged) in the file; _codecs.encode is how protocols 0-2 write bytes
    "copyreg._reconstructor",
    "copyreg.__newobj__",
    "copyreg.__newobj_ex__",
    "_codecs.encode",
    # Lightning stores hyperparameters as this dict subclass
    "lightning.fabric.utilities.data.AttributeDict",
    "pytorch_lightning.utilities.parsing.AttributeDict",
}

# builtins that only construct a value from the values they are given
_BUILTINS = {
    f"builtins.{name}"
    for name in (
        "bool",
        "bytearray",
        "bytes",
        "complex",
        "dict",
        "float",
        "frozenset",
        "int",
        "list",
        "range",
        "set",
        "slice",
        "str",
        "tuple",
    )
}

ALLOWLIST: frozenset[str] = frozenset(_torch_names() | _NUMPY | _OTHER | _BUILTINS)
"""Every ``module.name`` a model file may reference; the scanner flags all others."""


def resolve_global(module: str, name: str, protocol: int) -> tuple[str, str]:
    """The global Python's unpickler would import for ``module`` and ``name``.

    Pickles of protocols 0-2 may use Python 2 names (``__builtin__``, ``copy_reg``), which
    the unpickler maps to Python 3 ones before importing; the scanner judges what is imported.
    """
    if protocol >= 3:
        return module, name
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def is_allowed(module: str, name: str) -> bool:
    """Whether ``module.name`` is on the allowlist."""
    return f"{module}.{name}" in ALLOWLIST
