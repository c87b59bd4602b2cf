"""PyTorch tensors and files: conversion, safe loading, and export with ``torch.save``.

A ``.pt``/``.bin`` file is only ever opened with ``torch.load(weights_only=True)``,
which refuses arbitrary pickled objects; a file it refuses is refused here too. A
training checkpoint is kept as its tensors plus its tree (:mod:`.tree`), in a
``torch`` file entry of the snapshot, and written back with ``torch.save``.
"""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from weightbase.errors import MissingExtraError, UnsafeFormatError, ValidationError
from weightbase.tensors.formats._files import atomic_file
from weightbase.tensors.formats.tree import build_tree, encode_tree
from weightbase.tensors.write import FileSource

if TYPE_CHECKING:
    import torch

    from weightbase.tensors.manifest import Snapshot
    from weightbase.tensors.store import TensorStore

__all__ = [
    "TORCH_SUFFIXES",
    "TorchFileTensors",
    "checkpoint_file",
    "checkpoint_layouts",
    "export_torch",
    "load_torch_file",
    "read_checkpoint",
    "read_content",
    "require_torch",
    "to_torch",
    "torch_file_layout",
]

TORCH_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def require_torch() -> Any:
    """Import torch, or say which extra provides it."""
    try:
        import torch
    except ImportError:
        raise MissingExtraError(
            "this needs PyTorch: pip install torch==2.13.0 (or pip install 'weightbase[torch]')",
            extra="torch",
        ) from None
    return torch


def to_torch(array: np.ndarray[Any, Any], dtype_name: str) -> torch.Tensor:
    """A CPU torch tensor with the bytes of ``array`` (bf16 and fp8 included)."""
    require_torch()
    import torch

    from weightbase.tensors.dtypes import get_dtype

    dtype = get_dtype(dtype_name)
    if dtype.torch_name is None:
        raise ValidationError(f"dtype {dtype} has no torch equivalent")
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    if not flat.flags.writeable:
        flat = flat.copy()  # torch wants writable memory; mapped chunks are read-only
    tensor = torch.from_numpy(flat).view(getattr(torch, dtype.torch_name))
    return tensor.reshape(array.shape)


class TorchFileTensors(dict[str, "torch.Tensor"]):
    """The tensors of a torch file by name, in file order.

    ``tree`` is the encoded rest of a checkpoint (:mod:`~weightbase.tensors.formats.tree`):
    None for a plain state dict (a dict of str to tensors), which is stored as its tensors
    alone, exactly as it always was.
    """

    tree: bytes | None = None


def load_torch_file(path: str | Path) -> TorchFileTensors:
    """The tensors of a torch file, loaded without unpickling arbitrary objects.

    A plain state dict gives its tensors under their keys. Anything else (a training
    checkpoint with an optimizer state and counters, nested dicts, lists) gives its
    tensors named by their paths in the tree, and the tree itself as ``tree``; a value
    of any type a checkpoint cannot hold is refused, naming its path.
    """
    torch = require_torch()
    try:
        loaded = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeFormatError(
            f"{path} holds objects that need unpickling arbitrary code; refusing to load it. "
            f"Convert it to safetensors where it was made. ({str(exc).splitlines()[0]})",
            path=str(path),
        ) from None
    except (RuntimeError, EOFError, ValueError) as exc:
        raise ValidationError(f"{path} is not a readable torch file: {exc}") from None
    out = TorchFileTensors()
    if _is_state_dict(loaded, torch):
        found = dict(loaded)
    else:
        out.tree, found = encode_tree(
            loaded, is_tensor=lambda value: isinstance(value, torch.Tensor), where=str(path)
        )
    for name, tensor in found.items():
        if tensor.layout != torch.strided:  # .contiguous() would raise a bare RuntimeError
            raise ValidationError(
                f"{path}: tensor {name!r} has layout {tensor.layout}; only dense tensors "
                "can be stored (call .to_dense() where the file was made)",
                path=name,
            )
        out[name] = tensor.contiguous()
    return out


def _is_state_dict(loaded: Any, torch: Any) -> bool:
    return type(loaded) in (dict, OrderedDict) and all(
        type(key) is str and isinstance(value, torch.Tensor) for key, value in loaded.items()
    )


def torch_file_layout(name: str, tensors: Mapping[str, Any], size: int) -> FileSource:
    """How a torch file inside a snapshot is kept: its tensors' names, and a checkpoint's tree."""
    tree = getattr(tensors, "tree", None)
    return FileSource(name, tree or b"", tuple(tensors), kind="torch", size=size)


def checkpoint_layouts(path: Path, tensors: Mapping[str, Any]) -> list[FileSource]:
    """The files a snapshot of the single torch file ``path`` keeps: none for a state dict."""
    if getattr(tensors, "tree", None) is None:
        return []
    return [torch_file_layout(path.name, tensors, path.stat().st_size)]


def checkpoint_file(snapshot: Snapshot) -> str | None:
    """The name of the checkpoint a snapshot was made from, if it was made from one alone."""
    if len(snapshot.files) != 1:
        return None
    ((name, entry),) = snapshot.files.items()
    if entry.kind == "torch" and entry.chunks and set(entry.tensors) == set(snapshot.tensors):
        return name
    return None


def read_content(
    store: TensorStore,
    snapshot: Snapshot | str,
    names: Iterable[str] | None = None,
    *,
    as_torch: bool,
) -> Any:
    """What a pull gives: tensors by name (all, or ``names``) as torch tensors or NumPy arrays.

    Without ``names``, a snapshot made from one training checkpoint gives that
    checkpoint's whole object instead (``read_checkpoint``).
    """
    snap = store.snapshot(snapshot)
    if names is None:
        file = checkpoint_file(snap)
        if file is not None:
            return read_checkpoint(store, snap, file, as_torch=as_torch)
    if as_torch:
        return store.read_torch(snap, names)
    return store.read(snap, names)


def read_checkpoint(
    store: TensorStore, snapshot: Snapshot, file: str, *, as_torch: bool = True
) -> Any:
    """The object the torch file ``file`` of a snapshot held: torch tensors or NumPy arrays.

    A torch file kept as a plain state dict gives its tensors by name.
    """
    entry = snapshot.files[file]
    if as_torch:
        tensors: Mapping[str, Any] = store.read_torch(snapshot, entry.tensors)
    else:
        tensors = store.read(snapshot, entry.tensors)
    if not entry.chunks:
        return dict(tensors)
    return build_tree(store.file_bytes(snapshot, file), tensors)


def export_torch(
    store: TensorStore,
    snapshot: Snapshot,
    path: str | Path,
    names: Iterable[str] | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    file: str | None = None,
) -> Path:
    """Write a snapshot's tensors (or ``names`` of them) with ``torch.save``, crash-safely.

    The torch file ``file`` of the snapshot (by default the checkpoint it was made
    from, if it was made from one) is written whole: its tree with its tensors.
    ``progress`` hears of the tensors' bytes once they are read (all at once:
    reading them together decodes each pack of small tensors once).
    """
    torch = require_torch()
    target = Path(path)
    if file is None and names is None:
        file = checkpoint_file(snapshot)
    if file is not None:
        content = read_checkpoint(store, snapshot, file)
        tensor_names: Iterable[str] = snapshot.files[file].tensors
    else:
        content = store.read_torch(snapshot, names)
        tensor_names = content
    if progress is not None:
        progress(sum(snapshot.tensors[name].nbytes for name in tensor_names))
    with atomic_file(target) as handle:
        torch.save(content, handle)
    return target
