"""The synthetic catalog the registry benchmark reads: its plan, and loading it.

A deterministic plan of models, versions, aliases, tags, metrics, lineage edges
and audit entries, shaped like the rows ``wb.models`` writes, and the bulk insert
that puts it into the tables of a catalog ``weightbase.open()`` migrated.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, text

from weightbase.catalog.schema import (
    AliasRow,
    AuditLogRow,
    LineageEdgeRow,
    ModelRow,
    ModelVersionRow,
    TagRow,
    VersionMetricRow,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["CatalogPlan", "load_catalog", "plan_catalog"]

Row = dict[str, Any]

_ORGS = (
    "acme", "aurora-labs", "bluefin", "cedar-ai", "deepwell", "eastwind", "fjord", "granite",
    "helix", "ionic", "juniper", "kestrel", "lumen", "meridian", "nimbus", "orchid", "pioneer",
    "quartz", "redwood", "sable", "tidal", "umbra", "vertex", "willow", "xenon", "yarrow",
    "zephyr", "atlas-research", "brightline", "corvid",
)  # fmt: skip

# family, model_type (None: not a recognised transformer), sizes as
# (layers, hidden size, attention heads, vocabulary), dtype, layer stack
_FAMILIES: tuple[tuple[str, str | None, tuple[tuple[int, int, int, int], ...], str, str], ...] = (
    ("bert", "bert", ((12, 768, 12, 30522), (24, 1024, 16, 30522)), "F32", "encoder.layer"),
    ("minilm", "bert", ((6, 384, 12, 30522), (12, 384, 12, 30522)), "F32", "encoder.layer"),
    ("roberta", "roberta", ((12, 768, 12, 50265), (24, 1024, 16, 50265)), "F32", "encoder.layer"),
    ("distilbert", "distilbert", ((6, 768, 12, 30522),), "F32", "transformer.layer"),
    ("gpt2", "gpt2", ((12, 768, 12, 50257), (24, 1024, 16, 50257)), "F32", "h"),
    ("llama", "llama", ((16, 2048, 32, 128256), (32, 4096, 32, 128256)), "BF16", "model.layers"),
    ("mistral", "mistral", ((32, 4096, 32, 32768),), "BF16", "model.layers"),
    ("qwen2", "qwen2", ((24, 896, 14, 151936), (28, 1536, 12, 151936)), "BF16", "model.layers"),
    ("t5", "t5", ((6, 512, 8, 32128), (12, 768, 12, 32128)), "F32", "encoder.block"),
    ("vit", "vit", ((12, 768, 12, 0), (24, 1024, 16, 0)), "F32", "encoder.layer"),
    ("whisper", "whisper", ((4, 384, 6, 51865), (12, 768, 12, 51865)), "F16", "encoder.layers"),
    ("clip", "clip", ((12, 512, 8, 49408),), "F32", "text_model.encoder.layers"),
    ("resnet", None, ((50, 2048, 0, 0),), "F32", ""),
    ("unet", None, ((16, 1280, 0, 0),), "F16", ""),
    ("yolo", None, ((24, 512, 0, 0),), "F32", ""),
    ("efficientnet", None, ((7, 1280, 0, 0),), "F32", ""),
)
_TASKS = (
    "base", "chat", "instruct", "ner", "qa", "sentiment", "embed", "summarize", "detect",
    "segment", "asr", "classify", "rerank", "code",
)  # fmt: skip
_FRAMEWORKS = (("pytorch", 55), ("safetensors", 20), ("numpy", 5), ("jax", 8), ("onnx", 7))
_MODEL_TAGS = (
    ("nlp", 30), ("vision", 20), ("audio", 8), ("multimodal", 6), ("experimental", 15),
    ("internal", 20), ("public", 12), ("quantized", 8), ("distilled", 6), ("baseline", 10),
    ("gdpr-reviewed", 0.5), ("customer-x", 0.3), ("benchmark-2024", 1),
)  # fmt: skip
_VERSION_TAGS = (("validated", 40), ("candidate", 30), ("release", 20), ("rollback-safe", 2))
_ACTORS = (
    "alice", "bob", "carol", "dmitri", "erin", "farah", "gustavo", "hana", "ines", "jun",
    "ci-bot", "release-bot", "trainer-svc",
)  # fmt: skip
_LICENCES = ("apache-2.0", "mit", "cc-by-4.0", "llama3", "proprietary")
_START = datetime(2024, 1, 1, tzinfo=UTC)
_BATCH = 2000


@dataclass(frozen=True, slots=True)
class CatalogPlan:
    """The rows to insert, table by table, and the values the timed calls draw from.

    Deterministic for a seed, so SQLite and PostgreSQL hold the same catalog.
    """

    tables: tuple[tuple[type[Any], tuple[Row, ...]], ...]
    names: tuple[str, ...]
    versions: tuple[tuple[str, ...], ...]  # per model, oldest first, as ``names``
    ancestors: Mapping[str, int]  # "name@version" -> how many ancestors lineage finds
    tags: tuple[str, ...]
    frameworks: tuple[str, ...]
    architectures: tuple[str, ...]
    aliases: tuple[str, ...]
    name_fragments: tuple[str, ...]

    def counts(self) -> dict[str, int]:
        return {table.__tablename__: len(rows) for table, rows in self.tables}


def plan_catalog(models: int, versions_per_model: int, seed: int = 0) -> CatalogPlan:
    """A catalog of ``models`` models with ``versions_per_model`` versions each.

    Rows look like those ``wb.models`` writes: semantic versions mostly bumped by
    minor, an analysis per version, ~10% of models with a ``production`` alias,
    tags on models and versions, metrics on half the versions, each version
    ``derived_from`` its predecessor, a third of the models ``fine_tuned_from`` a
    version of a base model, and the audit entries of all that (the model's
    history), every table's ids in the order the changes happened.
    """
    rng = random.Random(seed)
    span_days = 700.0
    model_rows: list[Row] = []
    version_events: list[tuple[datetime, int, int, Row]] = []  # (at, model, index, row)
    names: list[str] = []
    model_family: list[int] = []
    model_type_of: list[str | None] = []
    for index in range(models):
        family = rng.randrange(len(_FAMILIES))
        family_name, model_type, _sizes, _dtype, _stack = _FAMILIES[family]
        org, task = rng.choice(_ORGS), rng.choice(_TASKS)
        name = f"{org}/{family_name}-{task}-{index:05d}"
        created = _START + timedelta(days=rng.uniform(0, span_days))
        framework = _weighted(rng, _FRAMEWORKS) if rng.random() > 0.05 else None
        model_rows.append(
            {
                "name": name,
                "description": f"{family_name} for {task}, by {org}"
                if rng.random() < 0.7
                else None,
                "licence": rng.choice(_LICENCES) if rng.random() < 0.6 else None,
                "model_card": _model_card(name, family_name, task) if rng.random() < 0.3 else None,
                "framework": framework,
                "owner": rng.choice(_ACTORS),
                "created_at": created,
                "updated_at": created,
                "deleted_at": None,
            }
        )
        names.append(name)
        model_family.append(family)
        model_type_of.append(model_type)

    # model ids in creation order, as the service would have assigned them
    by_creation = sorted(range(models), key=lambda m: model_rows[m]["created_at"])
    model_id = [0] * models
    for rank, model in enumerate(by_creation):
        model_id[model] = rank + 1
        model_rows[model]["id"] = rank + 1

    numbers: list[tuple[str, ...]] = []
    for model in range(models):
        family_name, model_type, sizes, dtype, stack = _FAMILIES[model_family[model]]
        size = rng.choice(sizes)
        at = model_rows[model]["created_at"]
        model_numbers = _version_numbers(rng, versions_per_model)
        numbers.append(model_numbers)
        parameters = _parameters(size, model_type)
        shared_analysis = _analysis(model_type, size, dtype, stack)
        framework = model_rows[model]["framework"]
        for position, number in enumerate(model_numbers):
            at = at + timedelta(hours=rng.uniform(2, 24 * 14))
            major, minor, patch = (int(part) for part in number.split("."))
            logical = parameters * (2 if dtype in ("BF16", "F16") else 4)
            stored = int(
                logical * (rng.uniform(0.78, 0.9) if position == 0 else rng.uniform(0.2, 0.5))
            )
            row: Row = {
                "model_id": model_id[model],
                "version": number,
                "major": major,
                "minor": minor,
                "patch": patch,
                "prerelease": None,
                "snapshot_id": f"{rng.getrandbits(256):064x}",
                "content_digest": f"{rng.getrandbits(256):064x}",
                "stage": "development",
                "description": f"run {rng.randrange(10**6)}" if rng.random() < 0.3 else None,
                "framework": framework,
                "model_type": model_type,
                "num_layers": size[0] if model_type else None,
                "hidden_size": size[1] if model_type else None,
                "num_attention_heads": size[2] if model_type else None,
                "head_dim": size[1] // size[2] if model_type else None,
                "total_params": parameters,
                "trainable_params": parameters,
                "logical_bytes": logical,
                "stored_bytes": stored,
                "dtypes": {dtype: parameters},
                "analysis": {
                    **shared_analysis,
                    "framework": framework,
                    "parameters": parameters,
                    "trainable_parameters": parameters,
                    "dtypes": {dtype: parameters},
                    "logical_bytes": logical,
                    "stored_bytes": stored,
                },
                "created_at": at,
                "created_by": rng.choice(_ACTORS),
                "deleted_at": None,
            }
            version_events.append((at, model, position, row))
        model_rows[model]["updated_at"] = at

    # version ids in creation order across all models, as pushes interleave
    version_events.sort(key=lambda event: event[0])
    version_id = [[0] * versions_per_model for _ in range(models)]
    version_rows: list[Row] = []
    for rank, (_at, model, position, row) in enumerate(version_events):
        row["id"] = rank + 1
        version_id[model][position] = rank + 1
        version_rows.append(row)
    version_row = {row["id"]: row for row in version_rows}

    audit: list[tuple[datetime, Row]] = []

    def record(
        at: datetime, action: str, kind: str, entity: int, before: Row | None, after: Row | None
    ) -> None:
        audit.append(
            (
                at,
                {
                    "at": at,
                    "actor": rng.choice(_ACTORS),
                    "action": action,
                    "entity_kind": kind,
                    "entity_id": str(entity),
                    "before": before,
                    "after": after,
                    "reason": None,
                },
            )
        )

    for model in range(models):
        record(
            model_rows[model]["created_at"],
            "model.create",
            "model",
            model_id[model],
            None,
            {"name": names[model]},
        )
    for row in version_rows:
        after = {
            "version": row["version"],
            "snapshot_id": row["snapshot_id"],
            "stage": "development",
            "parameters": row["total_params"],
        }
        record(row["created_at"], "version.create", "model", row["model_id"], None, after)

    # lineage: each version derived_from its predecessor; a third of the models
    # start from a version of a base model (fine_tuned_from), which is what makes
    # walks cross models. Base models never start from another, so depth stays bounded.
    base_models = [m for m in range(models) if rng.random() < 0.15] or [0]
    base_set = set(base_models)
    edges: list[Row] = []
    first_parent: dict[int, tuple[int, int]] = {}  # model -> (base model, its version index)
    for model in range(models):
        ids = version_id[model]
        for position in range(1, versions_per_model):
            edges.append(_edge(ids[position], ids[position - 1], "derived_from", version_row))
        if model not in base_set and rng.random() < 0.4:
            base = rng.choice(base_models)
            base_position = rng.randrange(versions_per_model)
            first_parent[model] = (base, base_position)
            edges.append(
                _edge(ids[0], version_id[base][base_position], "fine_tuned_from", version_row)
            )
    edges.sort(key=lambda edge: edge["created_at"])
    for rank, edge in enumerate(edges):
        edge["id"] = rank + 1
        after = {
            "source": {"kind": "model_version", "id": edge["source_id"]},
            "target": {"kind": "model_version", "id": edge["target_id"]},
            "relation": edge["relation"],
            "created_at": edge["created_at"].isoformat(),
        }
        record(
            edge["created_at"] + timedelta(microseconds=1),
            "lineage.add_edge",
            "lineage_edge",
            rank + 1,
            None,
            after,
        )
    ancestors: dict[str, int] = {}
    for model in range(models):
        extra = 0
        if model in first_parent:
            _base, base_position = first_parent[model]
            extra = 1 + base_position
        for position, number in enumerate(numbers[model]):
            ancestors[f"{names[model]}@{number}"] = position + extra

    # aliases: production on ~10% of models (moving a version to stage production),
    # staging on ~5% (its latest version)
    alias_rows: list[Row] = []
    for model in range(models):
        for alias, share, positions in (
            ("production", 0.10, range(versions_per_model // 2, versions_per_model)),
            ("staging", 0.05, range(versions_per_model - 1, versions_per_model)),
        ):
            if rng.random() >= share:
                continue
            target = version_row[version_id[model][rng.choice(positions)]]
            at = target["created_at"] + timedelta(hours=rng.uniform(1, 48))
            alias_rows.append(
                {
                    "model_id": model_id[model],
                    "alias": alias,
                    "version_id": target["id"],
                    "updated_at": at,
                }
            )
            pair = {"alias": alias, "version": target["version"]}
            record(at, "alias.set", "model", model_id[model], None, pair)
            target["stage"] = alias
            record(
                at + timedelta(seconds=1),
                "version.stage",
                "model",
                model_id[model],
                {"version": target["version"], "stage": "development"},
                {"version": target["version"], "stage": alias},
            )
    alias_rows.sort(key=lambda row: row["updated_at"])
    for rank, alias_row in enumerate(alias_rows):
        alias_row["id"] = rank + 1

    tag_rows: list[Row] = []
    for model in range(models):
        for tag in {_weighted(rng, _MODEL_TAGS) for _ in range(rng.randrange(4))}:
            tag_rows.append({"entity_kind": "model", "entity_id": model_id[model], "tag": tag})
    metric_rows: list[Row] = []
    for row in version_rows:
        if rng.random() < 0.2:
            tag = _weighted(rng, _VERSION_TAGS)
            tag_rows.append({"entity_kind": "model_version", "entity_id": row["id"], "tag": tag})
        if rng.random() < 0.5:
            for metric, value in (("accuracy", rng.uniform(0.6, 0.95)), ("loss", rng.random())):
                metric_rows.append(
                    {
                        "version_id": row["id"],
                        "name": metric,
                        "value": value,
                        "dataset": "eval" if rng.random() < 0.5 else None,
                        "step": None,
                        "created_at": row["created_at"],
                    }
                )
    for rank, tag_row in enumerate(tag_rows):
        tag_row["id"] = rank + 1
    for rank, metric_row in enumerate(metric_rows):
        metric_row["id"] = rank + 1

    audit.sort(key=lambda entry: entry[0])
    audit_rows = []
    for rank, (_at, audit_row) in enumerate(audit):
        audit_row["id"] = rank + 1
        audit_rows.append(audit_row)

    model_rows.sort(key=lambda row: row["id"])
    # list(tag=…) filters models by their own tags
    used_tags = sorted({row["tag"] for row in tag_rows if row["entity_kind"] == "model"})
    return CatalogPlan(
        tables=(
            (ModelRow, tuple(model_rows)),
            (ModelVersionRow, tuple(version_rows)),
            (AliasRow, tuple(alias_rows)),
            (TagRow, tuple(tag_rows)),
            (VersionMetricRow, tuple(metric_rows)),
            (LineageEdgeRow, tuple(edges)),
            (AuditLogRow, tuple(audit_rows)),
        ),
        names=tuple(names),
        versions=tuple(numbers),
        ancestors=ancestors,
        tags=tuple(used_tags),
        frameworks=tuple(sorted({f for f, _ in _FRAMEWORKS})),
        architectures=tuple(sorted({t for _, t, _, _, _ in _FAMILIES if t is not None})),
        aliases=("production", "staging"),
        name_fragments=tuple(
            sorted({family for family, *_ in _FAMILIES} | set(_TASKS) | set(_ORGS))
        ),
    )


def _weighted(rng: random.Random, choices: Sequence[tuple[str, float]]) -> str:
    return rng.choices([value for value, _ in choices], [weight for _, weight in choices])[0]


def _version_numbers(rng: random.Random, count: int) -> tuple[str, ...]:
    major, minor, patch = 0, 1, 0
    numbers = []
    for _ in range(count):
        numbers.append(f"{major}.{minor}.{patch}")
        roll = rng.random()
        if roll < 0.05:
            major, minor, patch = major + 1, 0, 0
        elif roll < 0.3:
            patch += 1
        else:
            minor, patch = minor + 1, 0
    return tuple(numbers)


def _parameters(size: tuple[int, int, int, int], model_type: str | None) -> int:
    layers, hidden, _heads, vocab = size
    if model_type is None:
        return layers * hidden * hidden // 4
    return 12 * layers * hidden * hidden + vocab * hidden


def _analysis(
    model_type: str | None, size: tuple[int, int, int, int], dtype: str, stack: str
) -> Row:
    """The parts of a version's stored analysis that its size decides (shared, never mutated)."""
    layers, hidden, heads, vocab = size
    architecture = None
    if model_type is not None:
        architecture = {
            "model_type": model_type,
            "num_layers": layers,
            "hidden_size": hidden,
            "num_attention_heads": heads,
            "num_key_value_heads": heads,
            "head_dim": hidden // heads,
            "intermediate_size": 4 * hidden,
            "vocab_size": vocab or None,
            "layers": [
                {
                    "index": index,
                    "stack": stack,
                    "hidden_size": hidden,
                    "num_heads": heads,
                    "num_kv_heads": heads,
                    "head_dim": hidden // heads,
                    "query": f"{stack}.{index}.attention.self.query.weight",
                    "key": f"{stack}.{index}.attention.self.key.weight",
                    "value": f"{stack}.{index}.attention.self.value.weight",
                    "output": f"{stack}.{index}.attention.output.dense.weight",
                    "fused_qkv": False,
                }
                for index in range(layers)
            ],
        }
    return {
        "tensor_count": layers * 16 + 5,
        "buffer_elements": 512,
        "architecture": architecture,
        "warnings": [],
        "dtype": dtype,
    }


def _model_card(name: str, family: str, task: str) -> str:
    lines = [f"# {name}", "", f"A {family} model fine-tuned for {task}.", ""]
    lines += [
        f"- evaluation {index}: {index * 0.37:.2f} on the held-out split" for index in range(40)
    ]
    return "\n".join(lines)


def _edge(source: int, target: int, relation: str, versions: Mapping[int, Row]) -> Row:
    return {
        "source_kind": "model_version",
        "source_id": str(source),
        "target_kind": "model_version",
        "target_id": str(target),
        "relation": relation,
        "created_at": versions[source]["created_at"],
    }


def load_catalog(engine: Engine, plan: CatalogPlan) -> None:
    """Insert the plan's rows in one transaction (a migrated, empty catalog assumed).

    On PostgreSQL the id sequences then move past the ids inserted, and VACUUM
    ANALYZE leaves what autovacuum would on a live server: planner statistics and
    a visibility map (so index-only scans skip the heap).
    SQLite gets no ANALYZE here; the benchmark's reader then opens the catalog
    with ``weightbase.open``, whose ``Catalog.open`` analyses a catalog of
    ``ANALYZE_MIN_ROWS`` (2,000) model versions and runs or more that lacks
    statistics (sampled: ``analysis_limit = 400``), as it would for a user.
    """
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        for table, rows in plan.tables:
            for start in range(0, len(rows), _BATCH):
                connection.execute(insert(table), list(rows[start : start + _BATCH]))
        if postgres:
            for table, rows in plan.tables:
                if rows:
                    name = table.__tablename__
                    connection.execute(
                        text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), :last)"),
                        {"last": len(rows)},
                    )
    if postgres:
        with engine.connect() as connection:
            autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
            autocommit.execute(text("VACUUM ANALYZE"))
