"""How the remote datasets tests compare two workspaces.

Each test runs against ``live_server`` (``tests/remote_support.py``) on its own
fresh workspace. The same calls on a second, unrelated embedded workspace give
what the remote ones must equal: the same records but for ids and times, the
same snapshots, the same arrays bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from weightbase.datasets import DatasetContent, DatasetVersion

__all__ = ["assert_same_arrays", "assert_same_content", "assert_same_version"]

#: What differs between two workspaces holding the same data: ids and times.
_OWN_FIELDS = ("id", "dataset_id", "created_at")


def _comparable(version: DatasetVersion) -> dict[str, Any]:
    data = version.to_dict()
    for name in _OWN_FIELDS:
        data.pop(name, None)
    data["splits_snapshot_id"] = version.splits_snapshot_id
    return data


def assert_same_version(remote: DatasetVersion, embedded: DatasetVersion) -> None:
    """The same version in two workspaces: every field but the ids and the creation time."""
    assert type(remote) is DatasetVersion
    assert _comparable(remote) == _comparable(embedded)
    assert remote.statistics == embedded.statistics
    assert remote.quality == embedded.quality
    assert remote.split_spec == embedded.split_spec
    assert remote.preprocessing == embedded.preprocessing


def assert_same_arrays(first: Mapping[str, Any], second: Mapping[str, Any]) -> None:
    """The same arrays under the same names, bit for bit (dtype, shape and bytes)."""
    assert sorted(first) == sorted(second)
    for name, array in first.items():
        other = second[name]
        assert (array.dtype, array.shape) == (other.dtype, other.shape), name
        assert np.ascontiguousarray(array).tobytes() == np.ascontiguousarray(other).tobytes(), name


def assert_same_content(remote: DatasetContent, embedded: DatasetContent) -> None:
    """The same dataset content: layout and arrays."""
    assert remote.metadata == embedded.metadata
    assert_same_arrays(remote.arrays, embedded.arrays)
