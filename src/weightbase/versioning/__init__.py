"""What every versioned entity shares: names, semantic versions, pages, and publishing.

Models and datasets (and later adapters and pipeline outputs) are named,
soft-deleted entities (:mod:`~weightbase.versioning.named`) whose versions
follow SemVer (:mod:`~weightbase.versioning.semver`), are listed a page at a
time (:class:`Page`) and are published from tensor-store snapshots by one
protocol (:mod:`~weightbase.versioning.publish`).
"""

from weightbase.versioning.pages import Page
from weightbase.versioning.publish import (
    Pin,
    Publication,
    RecoveryReport,
    content_digest,
    publish_snapshot,
    recover_pending,
)
from weightbase.versioning.semver import (
    BumpPart,
    bump,
    canonical_version,
    latest_version,
    next_version,
    version_key,
)

__all__ = [
    "BumpPart",
    "Page",
    "Pin",
    "Publication",
    "RecoveryReport",
    "bump",
    "canonical_version",
    "content_digest",
    "latest_version",
    "next_version",
    "publish_snapshot",
    "recover_pending",
    "version_key",
]
