"""Formats in and out of the tensor store: NumPy, PyTorch, safetensors, Hugging Face folders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from weightbase.errors import ValidationError
from weightbase.tensors.dtypes import get_dtype
from weightbase.tensors.formats._refusals import check_inside, check_regular_file

if TYPE_CHECKING:
    from weightbase.tensors.manifest import Snapshot
    from weightbase.tensors.store import TensorStore
    from weightbase.tensors.write import WriteStats

__all__ = [
    "EXPORT_FORMATS",
    "check_inside",
    "check_regular_file",
    "export_path",
    "import_path",
]

EXPORT_FORMATS = ("safetensors", "torch", "folder", "npz")
#: The name a torch file kept as a plain state dict is written under in a folder.
PLAIN_TORCH_NAME = "model.pt"
# dtypes NumPy knows only through ml_dtypes: np.load could not restore them from an npz
_NOT_IN_NPZ = frozenset(
    {
        "BF16",
        "F8_E4M3",
        "F8_E5M2",
        "F8_E4M3FNUZ",
        "F8_E5M2FNUZ",
        "F8_E8M0",
        "F4_E2M1_X2",
        "B8",
        "B16",
    }
)


def import_path(
    store: TensorStore,
    path: str | Path,
    *,
    ref: str | None = None,
    parent: Snapshot | str | None = None,
    codec: str | None = None,
    metadata: Mapping[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
    stats: WriteStats | None = None,
    allow_empty: bool = False,
) -> Snapshot:
    """Store a safetensors file, a torch file (safely) or a model folder.

    What the write cost is added into ``stats``, when given (see ``TensorStore.write``).
    A source with no tensors is refused unless ``allow_empty`` (a folder of plain files).
    Only regular files are read, and a folder's symlinks only where they stay inside it.
    """
    from weightbase.tensors.formats._refusals import check_regular_file, load_torch_weights
    from weightbase.tensors.formats.hf import import_folder
    from weightbase.tensors.formats.safetensors import open_safetensors
    from weightbase.tensors.formats.torch import TORCH_SUFFIXES, checkpoint_layouts

    source = Path(path)
    if source.is_dir():
        return import_folder(
            store,
            source,
            ref=ref,
            parent=parent,
            codec=codec,
            metadata=metadata,
            progress=progress,
            stats=stats,
            allow_empty=allow_empty,
        )
    if not source.exists():
        raise ValidationError(f"{source} does not exist")
    check_regular_file(source)  # a FIFO or device would block the reader for ever
    if source.suffix == ".safetensors":
        with open_safetensors(source) as (sources, layout):
            if not sources and not allow_empty:
                raise ValidationError(f"{source} holds no tensors", path=str(source))
            return store.write(
                sources,
                ref=ref,
                parent=parent,
                files=[layout],
                codec=codec,
                metadata={"format": "safetensors", **(metadata or {})},
                progress=progress,
                stats=stats,
            )
    if source.suffix in TORCH_SUFFIXES:
        state = load_torch_weights(source)
        if not state and not allow_empty:
            raise ValidationError(f"{source} holds no tensors", path=str(source))
        return store.write(
            state,
            ref=ref,
            parent=parent,
            files=checkpoint_layouts(source, state),
            codec=codec,
            metadata={"format": "torch", **(metadata or {})},
            progress=progress,
            stats=stats,
        )
    raise ValidationError(
        f"{source}: unknown weights format; expected a .safetensors file, a torch file "
        f"({', '.join(TORCH_SUFFIXES)}) or a model folder"
    )


def export_path(
    store: TensorStore,
    snapshot: Snapshot | str,
    path: str | Path,
    *,
    format: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write a snapshot out as ``format`` (by default guessed from the snapshot and path).

    ``progress`` is called with counts of tensor bytes as they are written.
    """
    import numpy as np

    from weightbase.tensors.formats._files import atomic_file
    from weightbase.tensors.formats.hf import export_folder
    from weightbase.tensors.formats.safetensors import export_safetensors
    from weightbase.tensors.formats.torch import TORCH_SUFFIXES, export_torch

    snap = store.snapshot(snapshot)
    target = Path(path)
    if format is None:
        if target.suffix == ".safetensors":
            format = "safetensors"
        elif target.suffix in TORCH_SUFFIXES:
            format = "torch"
        elif target.suffix == ".npz":
            format = "npz"
        else:
            format = "folder"
    if format in ("safetensors", "torch", "npz"):
        # as a folder export does, create the folder a file export goes into
        target.parent.mkdir(parents=True, exist_ok=True)
    if format == "safetensors":
        return export_safetensors(store, snap, target, progress)
    if format == "torch":
        return export_torch(store, snap, target, progress=progress)
    if format == "folder":
        if not snap.files and snap.metadata.get("format") == "torch":
            # a plain state dict file is kept as its tensors alone, without its name
            target.mkdir(parents=True, exist_ok=True)
            export_torch(store, snap, target / PLAIN_TORCH_NAME, progress=progress)
            return target
        if not snap.files:
            raise ValidationError("this snapshot was not made from a folder; export a file instead")
        return export_folder(store, snap, target, progress)
    if format == "npz":
        exotic = sorted(
            {e.dtype for e in snap.tensors.values() if get_dtype(e.dtype).numpy.kind == "V"}
            | {e.dtype for e in snap.tensors.values() if e.dtype in _NOT_IN_NPZ}
        )
        if exotic:
            raise ValidationError(
                f"npz cannot hold {', '.join(exotic)} tensors (NumPy has no such dtype); "
                "export to safetensors or torch instead"
            )
        arrays = store.read(snap)
        if progress is not None:
            progress(snap.nbytes)
        # through a handle, so NumPy writes to ``target`` itself rather than ``target.npz``
        with atomic_file(target) as handle:
            np.savez(handle, **arrays)
        return target
    raise ValidationError(f"unknown export format {format!r}; choose one of {EXPORT_FORMATS}")
