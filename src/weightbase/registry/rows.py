"""The registry's rows and its records: a pushed version written as rows, rows read as records.

Reading batches: the records of any number of rows cost a fixed number of
queries (tags, aliases, and latest versions or metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from weightbase.catalog.rows import tags_of
from weightbase.catalog.schema import (
    AliasRow,
    ModelRow,
    ModelVersionLayerRow,
    ModelVersionRow,
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

__all__ = ["insert_version", "load_model", "load_version", "to_models", "to_versions"]

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


def to_models(session: Session, rows: Sequence[ModelRow]) -> list[Model]:
    """Records for ``rows``, with tags, aliases and latest versions in three queries."""
    ids = [row.id for row in rows]
    if not ids:
        return []
    tags = tags_of(session, "model", ids)
    aliases: dict[int, dict[str, str]] = {}
    for model_id, alias, version in session.execute(
        select(AliasRow.model_id, AliasRow.alias, ModelVersionRow.version)
        .join(ModelVersionRow, ModelVersionRow.id == AliasRow.version_id)
        .where(AliasRow.model_id.in_(ids))
        .order_by(AliasRow.alias)
    ):
        aliases.setdefault(model_id, {})[alias] = version
    numbers: dict[int, list[str]] = {}
    for model_id, version in session.execute(
        select(ModelVersionRow.model_id, ModelVersionRow.version).where(
            ModelVersionRow.model_id.in_(ids), ModelVersionRow.deleted_at.is_(None)
        )
    ):
        numbers.setdefault(model_id, []).append(version)
    return [
        Model(
            **_columns(row, _MODEL_COLUMNS),
            tags=tuple(tags.get(row.id, ())),
            aliases=aliases.get(row.id, {}),
            latest_version=latest_version(numbers.get(row.id, ())),
            version_count=len(numbers.get(row.id, ())),
        )
        for row in rows
    ]


def to_versions(
    session: Session, model: ModelRow, rows: Sequence[ModelVersionRow]
) -> list[ModelVersion]:
    """Records for ``rows`` of ``model``, with tags, aliases and metrics in three queries."""
    ids = [row.id for row in rows]
    if not ids:
        return []
    tags = tags_of(session, "model_version", ids)
    aliases: dict[int, list[str]] = {}
    for version_id, alias in session.execute(
        select(AliasRow.version_id, AliasRow.alias)
        .where(AliasRow.version_id.in_(ids))
        .order_by(AliasRow.alias)
    ):
        aliases.setdefault(version_id, []).append(alias)
    metrics: dict[int, dict[str, float]] = {}
    # one value per (metric, dataset): a metric measured on two datasets keeps both
    by_dataset: dict[int, dict[str, dict[str, float]]] = {}
    for version_id, metric, value, dataset in session.execute(
        select(
            VersionMetricRow.version_id,
            VersionMetricRow.name,
            VersionMetricRow.value,
            VersionMetricRow.dataset,
        )
        .where(VersionMetricRow.version_id.in_(ids))
        .order_by(VersionMetricRow.id)
    ):
        metrics.setdefault(version_id, {})[metric] = value  # the latest value wins
        if dataset is not None:
            by_dataset.setdefault(version_id, {}).setdefault(dataset, {})[metric] = value
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


def _columns(row: ModelRow | ModelVersionRow, names: str) -> dict[str, Any]:
    """The columns ``names`` (space-separated) of ``row``, by name."""
    return {name: getattr(row, name) for name in names.split()}
