"""The model registry: semantic versions, model analysis and snapshot diffs.

The registry service (models, versions, aliases) builds on these pure parts.
"""

from weightbase.registry.analysis import Architecture, LayerInfo, ModelAnalysis, analyse
from weightbase.registry.diff import (
    MetricChange,
    SnapshotDiff,
    TensorChange,
    TensorSummary,
    ValueDiff,
    diff_snapshots,
)
from weightbase.registry.semver import bump, canonical_version, latest_version, version_key

__all__ = [
    "Architecture",
    "LayerInfo",
    "MetricChange",
    "ModelAnalysis",
    "SnapshotDiff",
    "TensorChange",
    "TensorSummary",
    "ValueDiff",
    "analyse",
    "bump",
    "canonical_version",
    "diff_snapshots",
    "latest_version",
    "version_key",
]
