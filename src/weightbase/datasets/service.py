"""``wb.datasets``: dataset versions in the tensor store, their statistics, quality and splits.

    content = from_numpy(digits.data, digits.target)
    v1 = wb.datasets.register("digits", content, split=SplitSpec(seed=0, stratify=True))
    v1.quality_score, v1.statistics.sample_count
    x_train, y_train = wb.datasets.arrays("digits@1.0.0", "train")

A version's arrays are one snapshot in the tensor store (deduplicated chunk by
chunk like any model's weights), pinned by the ref
``registry/dataset-versions/<id>``; its split indices are a second, small
snapshot (``registry/dataset-splits/<id>``), so the content digest depends on
the data alone. Statistics, the quality report, the split spec and the
preprocessing steps are computed once, at registration, and kept in the
catalog row.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from weightbase.catalog.rows import add_tag
from weightbase.catalog.schema import DatasetRow, DatasetVersionRow, TagRow, utcnow
from weightbase.datasets.content import DatasetContent, DatasetFormat, DatasetKind
from weightbase.datasets.parts import check_part, inputs_and_targets
from weightbase.datasets.quality import QualityReport, assess_quality
from weightbase.datasets.records import (
    Dataset,
    DatasetVersion,
    DatasetVersionLike,
    to_datasets,
    to_version,
)
from weightbase.datasets.splits import Preprocessing, Splits, SplitSpec
from weightbase.datasets.stats import DatasetStatistics, compute_statistics
from weightbase.datasets.write import (
    check_content,
    check_samples,
    draw_splits,
    write_dataset,
    write_splits,
)
from weightbase.errors import (
    Conflict,
    MalformedFileError,
    NotFound,
    ValidationError,
    WeightbaseError,
)
from weightbase.lineage import Node
from weightbase.names import check_entity_name, check_tag, split_version
from weightbase.tensors.manifest import Snapshot
from weightbase.versioning.named import NamedEntities
from weightbase.versioning.pages import Page
from weightbase.versioning.publish import (
    Pin,
    content_digest,
    next_number,
    publish_snapshot,
    same_content,
)
from weightbase.versioning.semver import (
    BumpPart,
    canonical_version,
    latest_version,
    version_columns,
    version_key,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.governance.audit import AuditEntry
    from weightbase.lineage import LineageService
    from weightbase.tensors import TensorStore

__all__ = ["Dataset", "DatasetRegistry", "DatasetVersion"]

_NODE = "dataset_version"


def dataset_version_ref(version_id: int) -> str:
    """The tensor-store ref that pins a dataset version's arrays."""
    return f"registry/dataset-versions/{version_id}"


def split_ref_name(version_id: int) -> str:
    """The tensor-store ref that pins a dataset version's split indices."""
    return f"registry/dataset-splits/{version_id}"


_LIVE = DatasetVersionRow.deleted_at.is_(None)

#: Where dataset versions reference snapshots, for finishing interrupted publishes.
PINS = (
    Pin(DatasetVersionRow.snapshot_id, DatasetVersionRow.id, _LIVE, dataset_version_ref),
    Pin(DatasetVersionRow.splits_snapshot_id, DatasetVersionRow.id, _LIVE, split_ref_name),
)


class DatasetRegistry:
    """Datasets and their versions, with statistics, a quality score and reproducible splits."""

    def __init__(
        self,
        catalog: Catalog,
        store: TensorStore,
        *,
        recorder: ChangeRecorder,
        lineage: LineageService,
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._recorder = recorder
        self._lineage = lineage
        self._named = NamedEntities(DatasetRow, "dataset", recorder=recorder)

    # -- registering -----------------------------------------------------------------------

    def register(
        self,
        name: str,
        content: DatasetContent | Snapshot,
        *,
        version: str | None = None,
        bump: BumpPart = "minor",
        description: str | None = None,
        split: SplitSpec | Splits | None = None,
        preprocessing: Preprocessing | None = None,
        tags: Iterable[str] = (),
        derived_from: DatasetVersionLike | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> DatasetVersion:
        """Store ``content`` as a new version of dataset ``name``; compute its statistics.

        ``split`` (default: 80/10/10, seed 0, stratified when the data has
        class labels) is drawn once and stored with the version; ``Splits``
        drawn already are stored as given, if they partition the samples.
        Content equal to a live version's is not stored twice: that version is
        returned with ``created=False`` and the tags given applied to it.

        ``content`` may be a ``Snapshot`` already in the store, holding a
        dataset's arrays and layout (what a remote workspace uploads): the
        statistics and quality are computed from its stored arrays here, as
        for new content.
        """
        check_entity_name(name, what="dataset")
        stored = self._store.snapshot(content.id) if isinstance(content, Snapshot) else None
        if stored is not None:
            content = DatasetContent.from_stored(self._store.read(stored), stored.metadata)
            check_samples(content)
        content = check_content(name, content)
        tag_list = [check_tag(tag) for tag in tags]
        explicit = self._named.check_new_version(
            self._catalog, DatasetVersionRow, name, version, bump
        )
        parent = self.version(derived_from) if derived_from is not None else None
        steps = preprocessing or Preprocessing()
        splits, statistics, quality = _derive(content, split, stored)

        with publish_snapshot(self._store, "datasets") as publication:
            if stored is None:
                snapshot, split_snapshot = write_dataset(
                    self._store,
                    content,
                    splits,
                    ref=publication.pending_ref(),
                    splits_ref=publication.pending_ref("splits"),
                    progress=progress,
                )
            else:
                snapshot = publication.hold(stored)
                split_snapshot = write_splits(
                    self._store, splits, ref=publication.pending_ref("splits")
                )
            digest = content_digest(snapshot, described=content.metadata)
            actor = self._recorder.actor

            def work(session: Session) -> tuple[int, bool]:
                dataset = self._named.live(session, name, lock=True) or self._named.insert(
                    session, name
                )
                row = same_content(
                    session, DatasetVersionRow, DatasetVersionRow.dataset_id == dataset.id, digest
                )
                created = row is None
                if row is not None and explicit is not None and explicit != row.version:
                    raise Conflict(
                        f"this data is already {name}@{row.version}; it cannot also be {explicit}",
                        dataset=name,
                    )
                if row is None:
                    number = next_number(
                        session,
                        DatasetVersionRow,
                        DatasetVersionRow.dataset_id == dataset.id,
                        explicit,
                        bump,
                        what=dataset.name,
                    )
                    row = self._insert_version(
                        session,
                        dataset,
                        number,
                        snapshot=snapshot,
                        split_snapshot=split_snapshot,
                        digest=digest,
                        content=content,
                        statistics=statistics,
                        quality=quality,
                        splits=splits,
                        preprocessing=steps,
                        description=description,
                        actor=actor,
                    )
                    dataset.kind = dataset.kind or content.kind.value
                    dataset.format = dataset.format or content.format.value
                    if parent is not None:
                        self._recorder.link(
                            session,
                            Node(_NODE, str(row.id)),
                            Node(_NODE, str(parent.id)),
                            "derived_from",
                        )
                dataset.updated_at = utcnow()
                for tag in tag_list:
                    add_tag(session, _NODE, row.id, tag)
                return row.id, created

            version_id, created = self._catalog.write(work, attempts=8)
            if created:
                publication.pin(
                    {
                        dataset_version_ref(version_id): snapshot,
                        split_ref_name(version_id): split_snapshot,
                    }
                )
        found = self._by_id(version_id)
        return found if created else replace(found, created=False)

    # -- reading ---------------------------------------------------------------------------

    def get(self, name: str) -> Dataset:
        with self._catalog.session() as session:
            return to_datasets(session, [self._named.require(session, name)])[0]

    def list(
        self,
        *,
        name: str | None = None,
        kind: str | None = None,
        format: str | None = None,
        tag: str | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> Page[Dataset]:
        """Live datasets by name, filtered by a name substring, kind, format or version tag."""
        query = self._named.matching(name, limit=limit)
        if kind is not None:
            query = query.where(DatasetRow.kind == _member(DatasetKind, kind, "kind"))
        if format is not None:
            query = query.where(DatasetRow.format == _member(DatasetFormat, format, "format"))
        if tag is not None:
            tagged = (
                select(DatasetVersionRow.dataset_id)
                .join(TagRow, TagRow.entity_id == DatasetVersionRow.id)
                .where(TagRow.entity_kind == _NODE, TagRow.tag == tag)
            )
            query = query.where(DatasetRow.id.in_(tagged))
        with self._catalog.session() as session:
            return self._named.page(session, query, limit=limit, after=after, records=to_datasets)

    def version(self, ref: DatasetVersionLike, version: str | None = None) -> DatasetVersion:
        """``version("digits@1.0.0")``, ``version("digits", "latest")``, or a record again."""
        if isinstance(ref, DatasetVersion):
            return self._by_id(ref.id)
        name, part = split_version(ref, version)
        with self._catalog.session() as session:
            dataset = self._named.require(session, name)
            return to_version(session, dataset, self._resolve(session, dataset, part))

    def versions(self, name: str) -> builtins.list[DatasetVersion]:
        """Every live version of a dataset, oldest first by SemVer precedence."""

        with self._catalog.session() as session:
            dataset = self._named.require(session, name)
            rows = session.scalars(
                select(DatasetVersionRow).where(
                    DatasetVersionRow.dataset_id == dataset.id,
                    DatasetVersionRow.deleted_at.is_(None),
                )
            ).all()
            found = [to_version(session, dataset, row) for row in rows]
        return sorted(found, key=lambda item: version_key(item.version))

    def load(self, ref: DatasetVersionLike, version: str | None = None) -> DatasetContent:
        """A version's content, as registered."""
        found = self.version(ref, version)
        snapshot = self._store.snapshot(found.snapshot_id)
        return DatasetContent.from_stored(self._store.read(snapshot), snapshot.metadata)

    def splits(self, ref: DatasetVersionLike, version: str | None = None) -> Splits:
        """The train/validation/test indices drawn at registration."""
        found = self.version(ref, version)
        if found.splits_snapshot_id is None or found.split_spec is None:
            raise NotFound(f"{found.ref} has no splits")
        return Splits.from_arrays(
            found.split_spec,
            self._store.read(found.splits_snapshot_id),
            duplicate_groups=found.split_duplicate_groups,
        )

    def arrays(
        self, ref: DatasetVersionLike, part: str | None = None, *, version: str | None = None
    ) -> tuple[Any, Any]:
        """Inputs and targets, all or one split (``train``…), in the dataset's natural form.

        NumPy arrays for tensors, a pandas DataFrame and Series for tables (indexed
        by sample number), and so on by format: see :func:`inputs_and_targets`.
        """
        check_part(part)
        found = self.version(ref, version)
        content = self.load(found)
        indices = None if part is None else getattr(self.splits(found), part)
        return inputs_and_targets(content, indices)

    def history(
        self, name: str, *, limit: int = 1000, since_id: int | None = None
    ) -> builtins.list[AuditEntry]:
        """Every change to a dataset, oldest first; ``since_id``: after the entry with that id."""
        with self._catalog.session() as session:
            dataset = self._named.require(session, name)
            return self._recorder.audit.entries(
                "dataset", dataset.id, since_id=since_id, limit=limit, session=session
            )

    def node(self, ref: DatasetVersionLike) -> Node:
        """The lineage node of a dataset version (what ``trained_on`` edges point at)."""
        return Node(_NODE, str(self.version(ref).id))

    def describe(self, nodes: Iterable[Node]) -> dict[Node, str]:
        """``name@version`` for each of ``nodes`` that is a dataset version (others left out)."""
        ids = {row for n in nodes if n.kind == _NODE and (row := n.row_id) is not None}
        if not ids:
            return {}
        with self._catalog.session() as session:
            names = self._named.version_names(session, DatasetVersionRow, ids)
        return {Node(_NODE, str(row_id)): name for row_id, name in names.items()}

    def tag(self, ref: DatasetVersionLike, *tags: str) -> None:
        """Tag a dataset version."""
        found = self.version(ref)
        checked = [check_tag(tag) for tag in tags]

        def work(session: Session) -> None:
            added = [tag for tag in checked if add_tag(session, _NODE, found.id, tag)]
            if added:
                self._named.record(
                    session,
                    found.dataset_id,
                    "tag.add",
                    after={"version": found.version, "tags": added},
                )

        self._catalog.write(work)

    def delete(self, name: str, *, reason: str | None = None) -> None:
        """Soft-delete a dataset; its versions' arrays are unpinned for the store's gc."""

        def work(session: Session) -> builtins.list[int]:
            dataset = self._named.require(session, name, lock=True)
            dataset.deleted_at = utcnow()
            self._named.record(session, dataset.id, "dataset.delete", reason=reason)
            return list(
                session.scalars(
                    select(DatasetVersionRow.id).where(
                        DatasetVersionRow.dataset_id == dataset.id,
                        DatasetVersionRow.deleted_at.is_(None),
                    )
                )
            )

        for version_id in self._catalog.write(work):
            for ref in (
                dataset_version_ref(version_id),
                split_ref_name(version_id),
            ):
                with contextlib.suppress(NotFound):
                    self._store.delete_ref(ref)

    # -- rows ------------------------------------------------------------------------------

    def _insert_version(
        self,
        session: Session,
        dataset: DatasetRow,
        number: str,
        *,
        snapshot: Snapshot,
        split_snapshot: Snapshot,
        digest: str,
        content: DatasetContent,
        statistics: DatasetStatistics,
        quality: QualityReport,
        splits: Splits,
        preprocessing: Preprocessing,
        description: str | None,
        actor: str,
    ) -> DatasetVersionRow:
        row = DatasetVersionRow(
            dataset_id=dataset.id,
            **version_columns(number),
            snapshot_id=snapshot.id,
            content_digest=digest,
            kind=content.kind.value,
            format=content.format.value,
            sample_count=content.sample_count,
            logical_bytes=snapshot.nbytes,
            stored_bytes=snapshot.stored_bytes,
            statistics=statistics.to_dict(),
            quality_score=quality.score,
            quality=quality.to_dict(),
            splits=splits.to_dict(),
            splits_snapshot_id=split_snapshot.id,
            preprocessing=[step.to_dict() for step in preprocessing.steps],
            description=description,
            created_at=utcnow(),
            created_by=actor,
        )
        session.add(row)
        session.flush()
        after = {
            "version": number,
            "snapshot_id": snapshot.id,
            "samples": content.sample_count,
            "quality": round(quality.score, 4),
        }
        self._named.record(
            session,
            dataset.id,
            "version.create",
            after=after,
            event="dataset_version_created",
            payload={
                "dataset": dataset.name,
                "version": number,
                "id": row.id,
                "snapshot_id": snapshot.id,
            },
        )
        return row

    def _resolve(self, session: Session, dataset: DatasetRow, ref: str | None) -> DatasetVersionRow:
        rows = session.execute(
            select(DatasetVersionRow.version, DatasetVersionRow.id).where(
                DatasetVersionRow.dataset_id == dataset.id,
                DatasetVersionRow.deleted_at.is_(None),
            )
        ).all()
        numbers = {number: row_id for number, row_id in rows}
        if ref is None or ref == "latest":
            newest = latest_version(numbers)
            if newest is None:
                raise NotFound(f"dataset {dataset.name!r} has no versions", dataset=dataset.name)
            return session.get_one(DatasetVersionRow, numbers[newest])
        number = canonical_version(ref)
        if number not in numbers:
            raise NotFound(f"no version {dataset.name}@{number}", dataset=dataset.name)
        return session.get_one(DatasetVersionRow, numbers[number])

    def _by_id(self, version_id: int) -> DatasetVersion:
        with self._catalog.session() as session:
            row = session.get_one(DatasetVersionRow, version_id)
            return to_version(session, session.get_one(DatasetRow, row.dataset_id), row)


def _derive(
    content: DatasetContent, split: SplitSpec | Splits | None, stored: Snapshot | None
) -> tuple[Splits, DatasetStatistics, QualityReport]:
    """The splits, statistics and quality of ``content`` (read from ``stored``, if given)."""
    try:
        return draw_splits(content, split), compute_statistics(content), assess_quality(content)
    except WeightbaseError:
        raise
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        if stored is None:
            raise
        # A stored layout that disagrees with its arrays (e.g. fewer rows than samples).
        raise MalformedFileError(
            f"snapshot {stored.id} is not a well-formed dataset: {exc}", snapshot=stored.id
        ) from exc


def _member(choices: type[StrEnum], value: str, what: str) -> str:
    """``value`` if it names one of ``choices``; ``ValidationError`` naming them otherwise."""
    try:
        return choices(value).value
    except ValueError:
        allowed = [choice.value for choice in choices]
        raise ValidationError(
            f"unknown dataset {what} {value!r}; one of {', '.join(allowed)}",
            **{what: value, "allowed": allowed},
        ) from None
