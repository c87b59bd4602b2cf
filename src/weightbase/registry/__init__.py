"""The model registry: ``wb.models`` and the parts it stands on.

:class:`ModelRegistry` (``service``) is the front; each part owns one job and
shares a :class:`~weightbase.registry.context.RegistryContext`:

- ``push``: storing a source's weights and publishing them as a version;
- ``queries``: models, pages of them, versions by ``name@ref``, history;
- ``aliases``: aliases, rollback and stages (``promote``);
- ``tags`` and ``metrics``: what is attached to a model or version later;
- ``models``: creating, updating and deleting models and versions;
- ``rows``: a version written as rows, rows read as records.

Pure parts under them: model analysis (``analysis``), snapshot diffs
(``diff``) and the records (``records``); semantic versions, pages and the
publish protocol live in :mod:`weightbase.versioning`.
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
from weightbase.registry.service import ModelRegistry
from weightbase.versioning.semver import bump, canonical_version, latest_version, version_key

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
