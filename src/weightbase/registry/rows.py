"""The registry's rows and its records: a pushed version written as rows, rows read as records.

Reading batches: the records of any number of rows cost one query more (a
model's tags, aliases and version numbers; a version's tags, aliases and
metrics). A version's stored analysis (a JSON document with an entry
per layer) is no part of its record, so reads that build records defer it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BindParameter,
    Float,
    Integer,
    Select,
    String,
    bindparam,
    cast,
    literal_column,
    null,
    select,
)
from sqlalchemy.orm import defer

from weightbase.catalog.schema import (
    AliasRow,
    ModelRow,
    ModelVersionLayerRow,
    ModelVersionRow,
    TagRow,
    VersionMetricRow,
    utcnow,
)
from weightbase.registry.records import Model, ModelVersion
from weightbase.versioning.semver import latest_version, version_columns

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.registry.analysis import ModelAnalysis
    from weightbase.registry.context import RegistryContext
    from weightbase.tensors.manifest import Snapshot

__all__ = [
    "WITHOUT_ANALYSIS",
    "insert_version",
    "load_model",
    "load_version",
    "to_models",
    "to_versions",
]

#: Loader option for reads that build records: the analysis stays in the database.
WITHOUT_ANALYSIS = defer(ModelVersionRow.analysis)

# The record fields that are a row's columns, copied as they are.
_MODEL_COLUMNS = "id name description licence model_card framework owner created_at updated_at"
_VERSION_COLUMNS = (
    "id version snapshot_id content_digest stage description framework model_type num_layers "
    "hidden_size num_attention_heads head_dim total_params trainable_params logical_bytes "
    "stored_bytes created_at created_by"
)


def insert_version(
    session: Session,
    model: ModelRow,
    number: str,
    snapshot: Snapshot,
    digest: str,
    analysis: ModelAnalysis,
    actor: str,
) -> ModelVersionRow:
    """Add version ``number`` of ``model`` with what the push found, its attention layers too."""
    arch = analysis.architecture
    row = ModelVersionRow(
        model_id=model.id,
        **version_columns(number),
        snapshot_id=snapshot.id,
        content_digest=digest,
        framework=analysis.framework,
        model_type=arch.model_type if arch else None,
        num_layers=arch.num_layers if arch else None,
        hidden_size=arch.hidden_size if arch else None,
        num_attention_heads=arch.num_attention_heads if arch else None,
        head_dim=arch.head_dim if arch else None,
        total_params=analysis.parameters,
        trainable_params=analysis.trainable_parameters,
        logical_bytes=analysis.logical_bytes,
        stored_bytes=analysis.stored_bytes,
        dtypes=dict(analysis.dtypes),
        analysis=analysis.to_dict(),
        created_at=utcnow(),
        created_by=actor,
    )
    session.add(row)
    session.flush()
    for layer in analysis.layers:
        session.add(
            ModelVersionLayerRow(
                version_id=row.id,
                stack=layer.stack,
                layer_index=layer.index,
                fused_qkv=layer.fused_qkv,
                hidden_size=layer.hidden_size,
                num_heads=layer.num_heads,
                num_kv_heads=layer.num_kv_heads,
                head_dim=layer.head_dim,
                q_tensor=layer.query,
                k_tensor=layer.key,
                v_tensor=layer.value,
                o_tensor=layer.output,
            )
        )
    return row


def load_model(context: RegistryContext, model_id: int) -> Model:
    """The record of model ``model_id``, read in a session of its own."""
    with context.catalog.session() as session:
        return to_models(session, [session.get_one(ModelRow, model_id)])[0]


def load_version(context: RegistryContext, version_id: int) -> ModelVersion:
    """The record of version ``version_id``, read in a session of its own."""
    with context.catalog.session() as session:
        row = session.get_one(ModelVersionRow, version_id)
        model = session.get_one(ModelRow, row.model_id)
        return to_versions(session, model, [row])[0]


def _model_extras() -> Any:
    """Tags, aliases and live version numbers of the models ``:ids`` in one statement.

    Rows are (kind, model id, label, version, major, minor, patch): kind 0 a
    tag, 1 an alias and the version it points at, 2 a live version's number and
    its parts; tags and aliases by label.
    """
    ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
    text, number = cast(null(), String), cast(null(), Integer)
    tags: Select[*tuple[Any, ...]] = select(
        literal_column("0").label("kind"),
        TagRow.entity_id.label("model_id"),
        TagRow.tag.label("label"),
        text.label("version"),
        number.label("major"),
        number.label("minor"),
        number.label("patch"),
    ).where(TagRow.entity_kind == "model", TagRow.entity_id.in_(ids))
    aliases: Select[*tuple[Any, ...]] = (
        select(
            literal_column("1"),
            AliasRow.model_id,
            AliasRow.alias,
            ModelVersionRow.version,
            number,
            number,
            number,
        )
        .join(ModelVersionRow, ModelVersionRow.id == AliasRow.version_id)
        .where(AliasRow.model_id.in_(ids))
    )
    numbers: Select[*tuple[Any, ...]] = select(
        literal_column("2"),
        ModelVersionRow.model_id,
        ModelVersionRow.version,
        text,
        ModelVersionRow.major,
        ModelVersionRow.minor,
        ModelVersionRow.patch,
    ).where(ModelVersionRow.model_id.in_(ids), ModelVersionRow.deleted_at.is_(None))
    union = tags.union_all(aliases, numbers).subquery()
    return select(union).order_by(union.c.kind, union.c.label)


_MODEL_EXTRAS = _model_extras()


def to_models(session: Session, rows: Sequence[ModelRow]) -> list[Model]:
    """Records for ``rows``, with tags, aliases and latest versions in one query."""
    ids = [row.id for row in rows]
    if not ids:
        return []
    tags: dict[int, list[str]] = {}
    aliases: dict[int, dict[str, str]] = {}
    numbers: dict[int, list[tuple[tuple[int, int, int], str]]] = {}
    for kind, model_id, label, version, *parts in session.execute(_MODEL_EXTRAS, {"ids": ids}):
        if kind == 0:
            tags.setdefault(model_id, []).append(label)
        elif kind == 1:
            aliases.setdefault(model_id, {})[label] = version
        else:
            numbers.setdefault(model_id, []).append((tuple(parts), label))
    return [
        Model(
            **_columns(row, _MODEL_COLUMNS),
            tags=tuple(tags.get(row.id, ())),
            aliases=aliases.get(row.id, {}),
            latest_version=_latest(numbers.get(row.id, ())),
            version_count=len(numbers.get(row.id, ())),
        )
        for row in rows
    ]


def _version_extras() -> Any:
    """Tags, aliases and metrics of the versions ``:ids`` in one statement, built once.

    Rows are (kind, version id, label, value, dataset, position): kind 0 a tag,
    1 an alias, 2 a metric; tags and aliases come by label, metrics in the order
    they were logged (their position is their id; the others have none).
    """
    ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
    none = null()
    tags: Select[*tuple[Any, ...]] = select(
        literal_column("0").label("kind"),
        TagRow.entity_id.label("version_id"),
        TagRow.tag.label("label"),
        cast(none, Float).label("value"),
        cast(none, String).label("dataset"),
        cast(none, Integer).label("position"),
    ).where(TagRow.entity_kind == "model_version", TagRow.entity_id.in_(ids))
    aliases: Select[*tuple[Any, ...]] = select(
        literal_column("1"),
        AliasRow.version_id,
        AliasRow.alias,
        cast(none, Float),
        cast(none, String),
        cast(none, Integer),
    ).where(AliasRow.version_id.in_(ids))
    metrics: Select[*tuple[Any, ...]] = select(
        literal_column("2"),
        VersionMetricRow.version_id,
        VersionMetricRow.name,
        VersionMetricRow.value,
        VersionMetricRow.dataset,
        VersionMetricRow.id,
    ).where(VersionMetricRow.version_id.in_(ids))
    union = tags.union_all(aliases, metrics).subquery()
    return select(union).order_by(union.c.kind, union.c.position, union.c.label)


_VERSION_EXTRAS = _version_extras()


def to_versions(
    session: Session, model: ModelRow, rows: Sequence[ModelVersionRow]
) -> list[ModelVersion]:
    """Records for ``rows`` of ``model``, with tags, aliases and metrics in one query."""
    ids = [row.id for row in rows]
    if not ids:
        return []
    tags: dict[int, list[str]] = {}
    aliases: dict[int, list[str]] = {}
    metrics: dict[int, dict[str, float]] = {}
    # one value per (metric, dataset): a metric measured on two datasets keeps both
    by_dataset: dict[int, dict[str, dict[str, float]]] = {}
    for kind, version_id, label, value, dataset, _position in session.execute(
        _VERSION_EXTRAS, {"ids": ids}
    ):
        if kind == 0:
            tags.setdefault(version_id, []).append(label)
        elif kind == 1:
            aliases.setdefault(version_id, []).append(label)
        else:
            metrics.setdefault(version_id, {})[label] = value  # the latest value wins
            if dataset is not None:
                by_dataset.setdefault(version_id, {}).setdefault(dataset, {})[label] = value
    return [
        ModelVersion(
            **_columns(row, _VERSION_COLUMNS),
            model=model.name,
            model_id=model.id,
            dtypes=row.dtypes or {},
            aliases=tuple(aliases.get(row.id, ())),
            tags=tuple(tags.get(row.id, ())),
            metrics=metrics.get(row.id, {}),
            dataset_metrics=dict(sorted(by_dataset.get(row.id, {}).items())),
        )
        for row in rows
    ]


def _latest(numbers: Sequence[tuple[tuple[int, int, int], str]]) -> str | None:
    """The newest version by SemVer precedence, from the major, minor, patch columns first.

    Only versions tied on all three (pre-releases of one release) are parsed.
    """
    if not numbers:
        return None
    top = max(parts for parts, _ in numbers)
    tied = [text for parts, text in numbers if parts == top]
    return tied[0] if len(tied) == 1 else latest_version(tied)


def _columns(row: ModelRow | ModelVersionRow, names: str) -> dict[str, Any]:
    """The columns ``names`` (space-separated) of ``row``, by name."""
    return {name: getattr(row, name) for name in names.split()}
