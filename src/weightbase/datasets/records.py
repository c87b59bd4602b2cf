"""The datasets' records: what ``wb.datasets`` hands out (frozen, JSON-ready), and their rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from weightbase.catalog.rows import tags_of
from weightbase.catalog.schema import DatasetRow, DatasetVersionRow
from weightbase.datasets.quality import QualityReport
from weightbase.datasets.splits import Preprocessing, SplitSpec
from weightbase.datasets.stats import DatasetStatistics
from weightbase.versioning.semver import latest_version

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["Dataset", "DatasetVersion", "DatasetVersionLike", "to_datasets", "to_version"]


@dataclass(frozen=True, slots=True)
class Dataset:
    """A named dataset."""

    id: int
    name: str
    description: str | None
    licence: str | None
    kind: str | None
    format: str | None
    created_at: datetime
    updated_at: datetime
    tags: tuple[str, ...] = ()
    latest_version: str | None = None
    version_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "licence": self.licence,
            "kind": self.kind,
            "format": self.format,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "tags": list(self.tags),
            "latest_version": self.latest_version,
            "version_count": self.version_count,
        }


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One registered version of a dataset and what registration found in it.

    ``created`` is false when registering found this version already holding
    the same data and returned it.
    """

    id: int
    dataset: str
    dataset_id: int
    version: str
    snapshot_id: str
    content_digest: str
    kind: str
    format: str
    sample_count: int
    logical_bytes: int
    stored_bytes: int
    statistics: DatasetStatistics | None
    quality: QualityReport | None
    split_sizes: Mapping[str, int]
    split_spec: SplitSpec | None
    preprocessing: Preprocessing
    description: str | None
    created_at: datetime
    created_by: str | None
    tags: tuple[str, ...] = ()
    created: bool = True
    splits_snapshot_id: str | None = field(default=None, repr=False)
    split_duplicate_groups: int | None = None
    """Groups of copies of one sample the splits kept together (``None``: not recorded)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "split_sizes", MappingProxyType(dict(self.split_sizes)))

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.version}"

    @property
    def quality_score(self) -> float | None:
        return self.quality.score if self.quality is not None else None

    @property
    def quality_grade(self) -> str | None:
        """A to F (see ``QualityReport.grade``); ``None`` without a quality report."""
        return self.quality.grade if self.quality is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dataset": self.dataset,
            "version": self.version,
            "snapshot_id": self.snapshot_id,
            "content_digest": self.content_digest,
            "kind": self.kind,
            "format": self.format,
            "sample_count": self.sample_count,
            "logical_bytes": self.logical_bytes,
            "stored_bytes": self.stored_bytes,
            "statistics": self.statistics.to_dict() if self.statistics else None,
            "quality": self.quality.to_dict() if self.quality else None,
            "quality_grade": self.quality_grade,
            "splits": dict(self.split_sizes),
            "split_duplicate_groups": self.split_duplicate_groups,
            "split_spec": self.split_spec.to_dict() if self.split_spec else None,
            "preprocessing": self.preprocessing.to_dict()["steps"],
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "tags": list(self.tags),
            "created": self.created,
        }


#: A version: a record, or ``"name@version"`` text.
DatasetVersionLike = DatasetVersion | str


def to_version(session: Session, dataset: DatasetRow, row: DatasetVersionRow) -> DatasetVersion:
    """The record of a version row (one query for its tags)."""
    tags = tags_of(session, "dataset_version", [row.id]).get(row.id, [])
    splits = row.splits or {}
    return DatasetVersion(
        id=row.id,
        dataset=dataset.name,
        dataset_id=dataset.id,
        version=row.version,
        snapshot_id=row.snapshot_id,
        content_digest=row.content_digest,
        kind=row.kind,
        format=row.format,
        sample_count=row.sample_count,
        logical_bytes=row.logical_bytes,
        stored_bytes=row.stored_bytes,
        statistics=DatasetStatistics.from_dict(row.statistics) if row.statistics else None,
        quality=QualityReport.from_dict(row.quality) if row.quality else None,
        split_sizes=splits.get("sizes", {}),
        split_spec=SplitSpec.from_dict(splits["spec"]) if "spec" in splits else None,
        preprocessing=Preprocessing.from_dict({"steps": row.preprocessing or []}),
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        tags=tuple(tags),
        splits_snapshot_id=row.splits_snapshot_id,
        split_duplicate_groups=splits.get("duplicate_groups"),
    )


def to_datasets(session: Session, rows: Sequence[DatasetRow]) -> list[Dataset]:
    """Records for dataset rows, with their latest versions, in one query."""
    ids = [row.id for row in rows]
    numbers: dict[int, list[str]] = {}
    if ids:
        for dataset_id, number in session.execute(
            select(DatasetVersionRow.dataset_id, DatasetVersionRow.version).where(
                DatasetVersionRow.dataset_id.in_(ids), DatasetVersionRow.deleted_at.is_(None)
            )
        ):
            numbers.setdefault(dataset_id, []).append(number)
    return [
        Dataset(
            id=row.id,
            name=row.name,
            description=row.description,
            licence=row.licence,
            kind=row.kind,
            format=row.format,
            created_at=row.created_at,
            updated_at=row.updated_at,
            latest_version=latest_version(numbers.get(row.id, ())),
            version_count=len(numbers.get(row.id, ())),
        )
        for row in rows
    ]
