"""What a dataset version stores: its arrays and layout, and its split indices, in a tensor store.

One encoding for both ways of registering: ``wb.datasets.register`` writes
through these functions into the workspace's store, a remote workspace into
its staging store before uploading what the server lacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from weightbase.datasets.content import DatasetContent
from weightbase.datasets.digests import sample_digests
from weightbase.datasets.splits import Splits, SplitSpec
from weightbase.datasets.splits import split as split_samples
from weightbase.errors import MalformedFileError, ValidationError

if TYPE_CHECKING:
    from weightbase.tensors import Snapshot, TensorStore

__all__ = ["check_content", "check_samples", "draw_splits", "write_dataset", "write_splits"]

#: Arrays with one row per sample, and arrays of offsets with one more entry than samples.
_PER_SAMPLE = (
    "x",
    "y",
    "images",
    "labels",
    "node_features",
    "node_labels",
    "audio.sample_rates",
    "audio.sample_widths",
)
_OFFSETS = ("text.offsets", "files.offsets", "audio.offsets")


def check_content(name: str, content: object) -> DatasetContent:
    """``content`` if it is a ``DatasetContent`` with samples; ``ValidationError`` otherwise."""
    if not isinstance(content, DatasetContent):
        raise ValidationError(
            f"register takes a DatasetContent (from weightbase.datasets.from_numpy, "
            f"from_pandas, from_image_folder…), not a {type(content).__name__}"
        )
    if content.sample_count == 0:
        raise ValidationError(f"dataset {name!r} has no samples")
    return content


def check_samples(content: DatasetContent) -> None:
    """``MalformedFileError`` unless the arrays hold as many samples as the layout says.

    Content from the loaders always does; content read back from a snapshot a
    client uploaded is checked before anything is computed from it (tables
    are checked column by column as they are decoded).
    """
    count = content.sample_count
    arrays = content.arrays
    found = {name: _rows(arrays[name]) for name in _PER_SAMPLE if name in arrays}
    found.update({name: _rows(arrays[name]) - 1 for name in _OFFSETS if name in arrays})
    wrong = {name: rows for name, rows in found.items() if rows != count}
    if wrong:
        held = ", ".join(f"{name} holds {rows}" for name, rows in sorted(wrong.items()))
        raise MalformedFileError(f"the layout says {count} samples but {held}", samples=count)
    edges = arrays.get("edge_index")
    if edges is not None and edges.size and (edges.min() < 0 or edges.max() >= count):
        raise MalformedFileError(f"edges name nodes outside 0..{count - 1}", samples=count)


def draw_splits(content: DatasetContent, split: SplitSpec | Splits | None) -> Splits:
    """The splits a version stores: ``split`` drawn, or checked if drawn already.

    The default spec is 80/10/10, seed 0, stratified when the labels are classes,
    with copies of one sample (equal input digests) kept in one split. Splits
    drawn already whose spec groups duplicates must keep each group whole.
    """
    labels = content.labels()
    if isinstance(split, Splits):
        if split.spec.stratify and labels is None:
            raise ValidationError("a stratified split needs class labels; this dataset has none")
        _check_partition(split, content.sample_count)
        return _check_groups(split, content)
    spec = split or SplitSpec(stratify=labels is not None and _is_classes(labels))
    if spec.stratify and labels is None:
        raise ValidationError("a stratified split needs class labels; this dataset has none")
    return split_samples(
        content.sample_count,
        spec,
        labels=labels if spec.stratify else None,
        groups=_duplicate_keys(content, spec),
    )


def write_dataset(
    store: TensorStore,
    content: DatasetContent,
    splits: Splits,
    *,
    ref: str,
    splits_ref: str,
    progress: Callable[[int], None] | None = None,
) -> tuple[Snapshot, Snapshot]:
    """Write a version's arrays (with their layout) and its split indices to ``store``.

    The one encoding of a dataset version: a registration writes through it
    into the workspace's store, a remote workspace into its staging store.
    """
    snapshot = store.write(
        dict(content.arrays), ref=ref, metadata=content.metadata, progress=progress
    )
    return snapshot, write_splits(store, splits, ref=splits_ref)


def write_splits(store: TensorStore, splits: Splits, *, ref: str) -> Snapshot:
    """Write a version's split indices (``split.train``, ``split.validation``, ``split.test``)."""
    return store.write(splits.to_arrays(), ref=ref)


def _rows(array: np.ndarray[Any, Any]) -> int:
    return int(array.shape[0]) if array.ndim else 0


def _check_partition(splits: Splits, count: int) -> None:
    every = np.concatenate([splits.train, splits.validation, splits.test])
    if not np.array_equal(np.sort(every), np.arange(count)):
        raise ValidationError(
            f"the splits must hold each of the {count} samples exactly once",
            samples=count,
            sizes=splits.sizes,
        )


def _is_classes(labels: np.ndarray[Any, Any]) -> bool:
    """Labels look like classes (integers or strings), not a regression target."""
    return labels.dtype.kind in "iubUSO"


def _duplicate_keys(content: DatasetContent, spec: SplitSpec) -> list[bytes] | None:
    if not spec.group_duplicates:
        return None
    return sample_digests(content, decimals=spec.near_duplicate_decimals)


def _check_groups(splits: Splits, content: DatasetContent) -> Splits:
    """``splits`` with its duplicate groups counted; refused if one straddles two parts."""
    keys = _duplicate_keys(content, splits.spec)
    if keys is None:
        return replace(splits, duplicate_groups=None)
    where = np.empty(content.sample_count, dtype=np.int8)
    for position, part in enumerate((splits.train, splits.validation, splits.test)):
        where[part] = position
    seen: dict[bytes, int] = {}
    sizes: dict[bytes, int] = {}
    for index, key in enumerate(keys):
        first = seen.setdefault(key, index)
        sizes[key] = sizes.get(key, 0) + 1
        if where[first] != where[index]:
            raise ValidationError(
                f"samples {first} and {index} are copies of one sample but the splits put them "
                "in different parts; keep them together, or draw with "
                "SplitSpec(group_duplicates=False)",
                samples=[first, index],
            )
    return replace(splits, duplicate_groups=sum(1 for size in sizes.values() if size > 1))
