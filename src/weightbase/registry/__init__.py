"""The model registry: ``wb.models`` and the parts it stands on.

:class:`ModelRegistry` (models, versions, aliases, stages, diff, rollback,
lineage) builds on pure parts: semantic versions, model analysis and snapshot diffs.
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
from weightbase.registry.records import Model, ModelVersion, Page
from weightbase.versioning.semver import bump, canonical_version, latest_version, version_key
from weightbase.registry.service import ModelRegistry

__all__ = [
    "Architecture",
    "Model",
    "ModelRegistry",
    "ModelVersion",
    "Page",
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
