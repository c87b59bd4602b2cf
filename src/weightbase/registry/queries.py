"""Reading the registry: models, pages of them, versions by ``name@ref``, history and names.

A ref is a semantic version, an alias (``production``) or ``latest``, the
highest live version by SemVer precedence; :func:`resolve` is the one place
that turns a ref into a version row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import and_, bindparam, exists, select

from weightbase.catalog.schema import AliasRow, ModelRow, ModelVersionRow, TagRow
from weightbase.errors import NotFound, ValidationError
from weightbase.lineage import Node
from weightbase.names import check_entity_name, split_version
from weightbase.registry.analysis import ModelAnalysis, analyse
from weightbase.registry.context import VERSION_NODE, version_node
from weightbase.registry.records import Model, ModelVersion, Page
from weightbase.registry.rows import WITHOUT_ANALYSIS, load_version, to_models, to_versions
from weightbase.versioning.semver import canonical_version, latest_version, version_key

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.governance.audit import AuditEntry
    from weightbase.registry.context import RegistryContext

__all__ = [
    "LATEST",
    "VersionLike",
    "analysis",
    "describe",
    "find_version",
    "get",
    "history",
    "list_models",
    "resolve",
    "versions",
]

#: A version: a record, or ``"name@ref"`` text.
VersionLike = ModelVersion | str

#: The ref of a model's highest live version.
LATEST = "latest"


def resolve(session: Session, model: ModelRow, ref: str | None) -> ModelVersionRow:
    """The live version ``ref`` (a version, an alias or ``latest``) of ``model``."""
    live = and_(ModelVersionRow.model_id == model.id, ModelVersionRow.deleted_at.is_(None))
    if ref is None or ref == LATEST:
        rows = list(
            session.execute(select(ModelVersionRow.version, ModelVersionRow.id).where(live))
        )
        newest = latest_version(version for version, _ in rows)
        if newest is None:
            raise NotFound(f"model {model.name!r} has no versions", model=model.name)
        wanted = next(row_id for version, row_id in rows if version == newest)
        return session.get_one(ModelVersionRow, wanted)
    if _is_version(ref):
        number = canonical_version(ref)
        row = session.scalars(
            select(ModelVersionRow).where(live, ModelVersionRow.version == number)
        ).first()
        if row is None:
            raise NotFound(f"no version {model.name}@{number}", model=model.name, version=number)
        return row
    found = session.scalars(
        select(ModelVersionRow)
        .join(AliasRow, AliasRow.version_id == ModelVersionRow.id)
        .where(AliasRow.model_id == model.id, AliasRow.alias == ref)
    ).first()
    if found is None:
        raise NotFound(
            f"model {model.name!r} has no version or alias {ref!r}", model=model.name, ref=ref
        )
    return found


# Reads by name in one statement each, built once: a version row with its model's.
# When one finds nothing, the step-by-step path runs to say precisely what is missing.
_LIVE_MODEL_VERSIONS = (
    select(ModelVersionRow, ModelRow)
    .join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
    .where(ModelRow.name == bindparam("name"), ModelRow.deleted_at.is_(None))
    .options(WITHOUT_ANALYSIS)
)
_VERSION_BY_NUMBER = _LIVE_MODEL_VERSIONS.where(
    ModelVersionRow.version == bindparam("number"), ModelVersionRow.deleted_at.is_(None)
)
_VERSION_BY_ALIAS = _LIVE_MODEL_VERSIONS.join(
    AliasRow, AliasRow.version_id == ModelVersionRow.id
).where(AliasRow.model_id == ModelRow.id, AliasRow.alias == bindparam("alias"))
_LIVE_VERSIONS = _LIVE_MODEL_VERSIONS.where(ModelVersionRow.deleted_at.is_(None))


def _find_at_once(
    session: Session, name: str, ref: str | None
) -> tuple[ModelVersionRow, ModelRow] | None:
    """Version ``ref`` (a number or an alias) of live model ``name`` in one query, if there."""
    if ref is None or ref == LATEST:
        return None
    try:
        statement, params = _VERSION_BY_NUMBER, {"name": name, "number": canonical_version(ref)}
    except ValidationError:
        statement, params = _VERSION_BY_ALIAS, {"name": name, "alias": ref}
    found = session.execute(statement, params).first()
    return None if found is None else (found[0], found[1])


def find_version(
    context: RegistryContext, ref: VersionLike, version: str | None = None
) -> ModelVersion:
    """The version ``ref`` names (``"bert@1.0.0"``, a record), or ``version`` of model ``ref``."""
    if isinstance(ref, ModelVersion):
        return load_version(context, ref.id)
    name, part = split_version(ref, version)
    check_entity_name(name, what="model")
    with context.catalog.session() as session:
        found = _find_at_once(session, name, part)
        if found is None:  # latest, or something is missing: resolve names which
            model = context.models.require(session, name)
            found = resolve(session, model, part), model
        row, model = found
        return to_versions(session, model, [row])[0]


def versions(
    context: RegistryContext, name: str, *, include_deleted: bool = False
) -> list[ModelVersion]:
    """Every version of model ``name``, oldest first by SemVer precedence."""
    check_entity_name(name, what="model")
    with context.catalog.session() as session:
        rows = [] if include_deleted else list(session.execute(_LIVE_VERSIONS, {"name": name}))
        if rows:
            model, version_rows = rows[0][1], [row[0] for row in rows]
        else:  # deleted versions asked for, no live one, or no such model (NotFound)
            model = context.models.require(session, name)
            query = select(ModelVersionRow).where(ModelVersionRow.model_id == model.id)
            if not include_deleted:
                query = query.where(ModelVersionRow.deleted_at.is_(None))
            version_rows = list(session.scalars(query.options(WITHOUT_ANALYSIS)))
        found = to_versions(session, model, version_rows)
    return sorted(found, key=lambda item: version_key(item.version))


def get(context: RegistryContext, name: str) -> Model:
    """The live model called ``name``."""
    with context.catalog.session() as session:
        row = context.models.require(session, name)
        return to_models(session, [row])[0]


def list_models(
    context: RegistryContext,
    *,
    name: str | None,
    tag: str | None,
    alias: str | None,
    framework: str | None,
    architecture: str | None,
    limit: int,
    after: str | None,
) -> Page[Model]:
    """A page of live models, by name, filtered by every condition given."""
    query = context.models.matching(name, limit=limit)
    if tag is not None:
        tagged = select(TagRow.entity_id).where(TagRow.entity_kind == "model", TagRow.tag == tag)
        query = query.where(ModelRow.id.in_(tagged))
    if alias is not None:
        query = query.where(
            exists().where(AliasRow.model_id == ModelRow.id, AliasRow.alias == alias)
        )
    if framework is not None:
        query = query.where(ModelRow.framework == framework)
    if architecture is not None:
        typed = select(ModelVersionRow.model_id).where(
            ModelVersionRow.model_type == architecture, ModelVersionRow.deleted_at.is_(None)
        )
        query = query.where(ModelRow.id.in_(typed))
    with context.catalog.session() as session:
        return context.models.page(session, query, limit=limit, after=after, records=to_models)


def analysis(context: RegistryContext, found: ModelVersion) -> ModelAnalysis:
    """What the push found in version ``found``, as it stored it."""
    with context.catalog.session() as session:
        data = session.scalars(
            select(ModelVersionRow.analysis).where(ModelVersionRow.id == found.id)
        ).one()
    if data is None:  # pragma: no cover - every push stores one
        return analyse(found.snapshot_id, context.store)
    return ModelAnalysis.from_dict(data)


def history(
    context: RegistryContext, name: str, *, limit: int, since_id: int | None = None
) -> list[AuditEntry]:
    """Every change recorded against model ``name``, oldest first (after entry ``since_id``)."""
    with context.catalog.session() as session:
        model = context.models.require(session, name)
        return context.recorder.audit.entries(
            "model", model.id, since_id=since_id, limit=limit, session=session
        )


def describe(context: RegistryContext, nodes: Iterable[Node]) -> dict[Node, str]:
    """``name@version`` for each of ``nodes`` that is a model version."""
    ids = {row for n in nodes if n.kind == VERSION_NODE and (row := n.row_id) is not None}
    if not ids:
        return {}
    with context.catalog.session() as session:
        names = context.models.version_names(session, ModelVersionRow, ids)
    return {version_node(row_id): name for row_id, name in names.items()}


def _is_version(text: str) -> bool:
    try:
        canonical_version(text)
    except ValidationError:
        return False
    return True
