"""Hugging Face model folders: config, tokenizer and (sharded) weights, in and out.

Every file of the folder is kept: safetensors shards as tensors plus their
headers (so each shard is rebuilt bit for bit), torch weight files and
checkpoints through the safe loader (their tensors, and a checkpoint's tree),
everything else as a blob. A sharded checkpoint's index must name
shards that exist, or nothing is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from weightbase.errors import MalformedFileError, ValidationError
from weightbase.tensors.formats._files import atomic_file
from weightbase.tensors.formats._refusals import (
    check_inside,
    check_regular_file,
    load_torch_weights,
)
from weightbase.tensors.formats.safetensors import open_safetensors, write_safetensors_file
from weightbase.tensors.formats.torch import TORCH_SUFFIXES, export_torch, torch_file_layout
from weightbase.tensors.manifest import Snapshot
from weightbase.tensors.sources import TensorSource, sources_from_torch
from weightbase.tensors.write import FileSource, WriteStats

if TYPE_CHECKING:
    from weightbase.tensors.store import TensorStore

__all__ = ["export_folder", "import_folder"]

_SKIP_DIRS = {".git", ".cache", "__pycache__"}


def _walk(root: Path) -> list[Path]:
    """The folder's files in order; nothing outside ``root`` is ever among them.

    A symlink is followed only when it resolves inside the folder; one that leads out of it,
    dangles or loops is refused, as is anything that is not a regular file. A linked folder
    inside is not walked twice: its files are found where they really are.
    """
    real_root = os.path.realpath(root)
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=_walk_error):
        kept = []
        for name in sorted(d for d in dirnames if d not in _SKIP_DIRS):
            folder = Path(dirpath, name)
            if folder.is_symlink():
                check_inside(root, folder, real_root=real_root)
            else:
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            file = Path(dirpath, name)
            if file.is_symlink():
                check_inside(root, file, real_root=real_root)
            check_regular_file(file)
            found.append(file)
    return found


def _walk_error(error: OSError) -> None:
    raise ValidationError(
        f"cannot read {error.filename}: {error.strerror or error}", path=str(error.filename)
    )


def _check_index(root: Path, index_path: Path, shards: Mapping[str, tuple[str, ...]]) -> None:
    try:
        index = json.loads(index_path.read_bytes())
        weight_map = index["weight_map"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise MalformedFileError(
            f"{index_path}: not a valid shard index ({type(exc).__name__}: {exc})",
            path=str(index_path),
        ) from None
    if not isinstance(weight_map, dict) or not all(
        isinstance(shard, str) for shard in weight_map.values()
    ):
        raise MalformedFileError(
            f"{index_path}: not a valid shard index (its weight_map must map each tensor "
            "name to the file name of a shard)",
            path=str(index_path),
        )
    missing = sorted({f for f in weight_map.values() if f not in shards})
    if missing:
        raise MalformedFileError(
            f"{index_path.name} names shards missing from {root}: {', '.join(missing)}",
            missing=missing,
            path=str(index_path),
        )
    for tensor, shard in weight_map.items():
        if tensor not in shards[shard]:
            raise MalformedFileError(
                f"{index_path.name}: shard {shard} has no tensor {tensor!r}", path=str(index_path)
            )


def import_folder(
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
    """Store a model folder as one snapshot; check everything before writing anything.

    What the write cost is added into ``stats``, when given. A folder without weights is
    refused unless ``allow_empty``.
    """
    root = Path(path)
    if not root.is_dir():
        raise ValidationError(f"{root} is not a folder")
    files = _walk(root)
    sources: list[TensorSource] = []
    layouts: list[FileSource] = []
    owner: dict[str, str] = {}
    shards: dict[str, tuple[str, ...]] = {}
    with ExitStack() as stack:
        for file in files:
            rel = file.relative_to(root).as_posix()
            found: list[TensorSource]
            if file.name.endswith(".safetensors"):
                found, layout = stack.enter_context(open_safetensors(file, name=rel))
                shards[rel] = layout.tensors
            elif file.suffix in TORCH_SUFFIXES:
                state = load_torch_weights(file)
                found = sources_from_torch(state)
                stat = file.stat()
                layout = torch_file_layout(rel, state, stat.st_size)
            else:
                layouts.append(FileSource(rel, file.read_bytes()))
                continue
            for source in found:
                if source.name in owner:
                    raise MalformedFileError(
                        f"tensor {source.name!r} is in both {owner[source.name]} and {rel}; "
                        "keep one copy of the weights"
                    )
                owner[source.name] = rel
            sources.extend(found)
            layouts.append(layout)
        for file in files:
            if file.name.endswith(".safetensors.index.json"):
                _check_index(root, file, shards)
        if not sources and not allow_empty:
            raise ValidationError(
                f"{root} holds no tensors (no .safetensors or torch weights files); "
                "a model version needs weights",
                path=str(root),
            )
        return store.write(
            sources,
            ref=ref,
            parent=parent,
            files=layouts,
            metadata={"format": "hf-folder", **(metadata or {})},
            codec=codec,
            progress=progress,
            stats=stats,
        )


def export_folder(
    store: TensorStore,
    snapshot: Snapshot | str,
    path: str | Path,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Recreate the folder a snapshot was made from; each file is written crash-safely.

    ``progress`` is called with the number of tensor bytes written as they are.
    """
    snap = store.snapshot(snapshot)
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    for name, entry in snap.files.items():
        target = root.joinpath(*name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry.kind == "safetensors":
            header = store.file_bytes(snap, name)
            write_safetensors_file(store, snap, target, header, list(entry.tensors), progress)
        elif entry.kind == "torch":
            export_torch(store, snap, target, progress=progress, file=name)
        else:
            with atomic_file(target) as handle:
                handle.write(store.file_bytes(snap, name))
    return root
