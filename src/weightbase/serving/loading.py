"""Reading a version for serving: its weights onto a device, its small files into a folder.

Weights are read through the store's verified read path (``TensorStore.read`` with a
device: pinned staging buffers and straight copies for CUDA), and loaded into a module
with a check that says which names do not fit.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightbase.errors import MissingExtraError, ValidationError

if TYPE_CHECKING:
    from weightbase.tensors import TensorStore
    from weightbase.tensors.manifest import Snapshot

__all__ = ["load_weights", "read_json_file", "read_weights", "require_torch", "snapshot_folder"]

# Files a tokenizer or config may need; the weights themselves are read as tensors.
_LARGEST_FILE = 64 * 1024 * 1024


def require_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingExtraError(
            "serving a model needs torch; install it with: pip install 'weightbase[torch]'",
            module="torch",
            extra="torch",
        ) from None
    return torch


def read_weights(store: TensorStore, snapshot: Snapshot, device: str) -> dict[str, Any]:
    """Every tensor of ``snapshot`` as a torch tensor on ``device``, each chunk verified."""
    return store.read(snapshot, device=device)


def read_json_file(store: TensorStore, snapshot: Snapshot, name: str) -> Any:
    """A JSON file of the snapshot, or None where it has none."""
    if name not in snapshot.files:
        return None
    try:
        return json.loads(store.file_bytes(snapshot, name))
    except ValueError as exc:
        raise ValidationError(f"{name} of the version is not valid JSON ({exc})") from None


@contextlib.contextmanager
def snapshot_folder(store: TensorStore, snapshot: Snapshot) -> Iterator[Path]:
    """A temporary folder holding the snapshot's small plain files (config, tokenizer…)."""
    with tempfile.TemporaryDirectory(prefix="weightbase-serve-") as folder:
        root = Path(folder)
        for name, entry in snapshot.files.items():
            if entry.kind != "blob" or entry.size > _LARGEST_FILE:
                continue
            target = (root / name).resolve()
            if root.resolve() not in target.parents:  # pragma: no cover - names are checked
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(store.file_bytes(snapshot, name))
        yield root


def load_weights(module: Any, state: Mapping[str, Any], *, what: str) -> None:
    """Load ``state`` into ``module``: every parameter and persistent buffer, nothing else.

    Names the module shares (tied weights) may be given once; buffers the module does
    not save (``position_ids``) may be given or not. Anything else that does not fit is a
    ``ValidationError`` naming it.
    """
    try:
        result = module.load_state_dict(dict(state), strict=False)
    except RuntimeError as exc:  # torch's shape mismatches, one per line
        raise ValidationError(f"the weights do not fit {what}: {exc}") from None
    loaded = {id(value) for name, value in _tensors(module) if name in state}
    missing = [
        name for name in result.missing_keys if id(dict(_tensors(module)).get(name)) not in loaded
    ]
    transient = {name for name, _ in module.named_buffers()} - set(module.state_dict())
    unexpected = [name for name in result.unexpected_keys if name not in transient]
    if missing or unexpected:
        raise ValidationError(
            f"the weights do not fit {what}: "
            + "; ".join(
                part
                for part in (
                    _listed("missing", missing),
                    _listed("unexpected", unexpected),
                )
                if part
            ),
            missing=tuple(missing),
            unexpected=tuple(unexpected),
        )


def _tensors(module: Any) -> list[tuple[str, Any]]:
    params = list(module.named_parameters(remove_duplicate=False))
    return params + list(module.named_buffers(remove_duplicate=False))


def _listed(kind: str, names: list[str]) -> str:
    if not names:
        return ""
    shown = ", ".join(names[:5])
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return f"{kind} {shown}{more}"
