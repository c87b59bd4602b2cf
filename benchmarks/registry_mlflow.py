"""The registry benchmark's anchor: MLflow's model registry holding the same synthetic catalog.

The plan of ``benchmarks.registry_plan`` is bulk-inserted into the tables of an
MLflow ``SqlAlchemyStore`` (its own fresh database), then four reads are timed
against weightbase's equivalent ``wb.models`` calls on a catalog of the same
size, the two interleaved call by call, and each ratio is reported with its
range over rounds.
"""

from __future__ import annotations

import gc
import importlib
import logging
import random
import sqlite3
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, insert, text
from sqlalchemy.engine import Engine

from weightbase.catalog.schema import AliasRow, ModelRow, ModelVersionRow, TagRow

if TYPE_CHECKING:
    from benchmarks.registry_plan import CatalogPlan
    from weightbase.registry import ModelRegistry

__all__ = [
    "MLFLOW_OPERATIONS",
    "SPEEDUP_TARGET",
    "MlflowComparison",
    "compare_with_mlflow",
    "load_mlflow",
    "open_mlflow_store",
    "speedup_keys",
]

Log = Callable[[str], None]

SPEEDUP_TARGET = 2.0
PAGE = 50
_BATCH = 2000

#: The timed pairs, in report order: (key, MLflow's call, weightbase's call).
MLFLOW_OPERATIONS: tuple[tuple[str, str, str], ...] = (
    ("list", "`search_registered_models(max_results=50)`: first page", "`list(limit=50)`"),
    ("get", "`get_model_version(name, n)`", '`version("name@x.y.z")`'),
    ("versions", "`search_model_versions(\"name='…'\")`: all 10", "`versions(name)`"),
    ("alias", "`get_model_version_by_alias(name, alias)`", "`version(name, alias)`"),
)
#: Operations with a contract key ``{key}_speedup_vs_mlflow_{backend}``; ``alias`` is reported too.
CONTRACT = ("list", "get", "versions")
_STAGES = {"production": "Production", "staging": "Staging"}


@dataclass(frozen=True, slots=True)
class MlflowComparison:
    """Paired timings of weightbase and MLflow on one database, split into rounds.

    ``weightbase[key][r]`` and ``mlflow[key][r]`` hold the seconds of the calls of
    round ``r``; a round's ratio is MLflow's median over weightbase's median.
    """

    backend: str
    models: int
    versions: int
    load_seconds: float
    method: str  # how the rows went in, and the durability settings checked
    weightbase: Mapping[str, tuple[tuple[float, ...], ...]]
    mlflow: Mapping[str, tuple[tuple[float, ...], ...]]

    def ratios(self, key: str) -> tuple[float, ...]:
        return tuple(
            statistics.median(theirs) / statistics.median(ours)
            for ours, theirs in zip(self.weightbase[key], self.mlflow[key], strict=True)
        )

    def speedup(self, key: str) -> float:
        """MLflow's time ÷ weightbase's, median over rounds (above 1: weightbase faster)."""
        return statistics.median(self.ratios(key))

    def met(self, key: str) -> bool:
        """The target is met only when every round's ratio clears it."""
        return min(self.ratios(key)) >= SPEEDUP_TARGET

    def p50_ms(self, side: str, key: str) -> float:
        rounds = (self.weightbase if side == "weightbase" else self.mlflow)[key]
        return statistics.median(value for calls in rounds for value in calls) * 1e3

    def to_dict(self) -> dict[str, object]:
        return {
            "models": self.models,
            "versions": self.versions,
            "load_s": round(self.load_seconds, 3),
            "method": self.method,
            "rounds": len(self.weightbase["list"]),
            "calls_per_round": len(self.weightbase["list"][0]),
            "operations": {
                key: {
                    "speedup": round(self.speedup(key), 3),
                    "speedup_min": round(min(self.ratios(key)), 3),
                    "speedup_max": round(max(self.ratios(key)), 3),
                    "round_speedups": [round(value, 3) for value in self.ratios(key)],
                    "weightbase_p50_ms": round(self.p50_ms("weightbase", key), 3),
                    "mlflow_p50_ms": round(self.p50_ms("mlflow", key), 3),
                    "met": self.met(key),
                }
                for key, _, _ in MLFLOW_OPERATIONS
            },
        }


def speedup_keys(
    comparisons: Mapping[str, MlflowComparison | None], backends: tuple[str, ...]
) -> dict[str, float | None]:
    """``{op}_speedup_vs_mlflow_{backend}`` (median) with ``…_min``/``…_max`` beside each."""
    out: dict[str, float | None] = {}
    for key, _, _ in MLFLOW_OPERATIONS:
        for backend in backends:
            found = comparisons.get(backend)
            name = f"{key}_speedup_vs_mlflow_{backend}"
            out[name] = round(found.speedup(key), 3) if found else None
            out[f"{name}_min"] = round(min(found.ratios(key)), 3) if found else None
            out[f"{name}_max"] = round(max(found.ratios(key)), 3) if found else None
    return out


# -- the store -----------------------------------------------------------------------------


def _quiet_mlflow() -> None:
    # MLflow logs every migration it runs and warns about its own deprecations;
    # neither is part of what is measured.
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", category=FutureWarning)
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def open_mlflow_store(url: str) -> Iterator[Any]:
    """MLflow's registry store on an empty database at ``url`` (its migrations run here).

    A SQLite file gets weightbase's catalog settings on every connection MLflow
    opens (a connect event): WAL and ``synchronous=FULL``. The engine MLflow caches
    per URL is disposed and forgotten afterwards, so a dropped database leaves no pool.
    """
    _quiet_mlflow()
    store_module = importlib.import_module("mlflow.store.model_registry.sqlalchemy_store")
    _quiet_mlflow()  # again: importing MLflow sets up its own logging
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None

    def settings(dbapi_connection: Any, _record: Any) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        files = [row[2] for row in dbapi_connection.execute("PRAGMA database_list")]
        if path is not None and any(file and file.endswith(path) for file in files):
            dbapi_connection.execute("PRAGMA journal_mode = WAL")
            dbapi_connection.execute("PRAGMA synchronous = FULL")

    if path is not None:
        event.listen(Engine, "connect", settings)
    store_class = store_module.SqlAlchemyStore
    try:
        store = store_class(url)
        try:
            yield store
        finally:
            store.engine.dispose()
            store_class._engine_map.pop(url, None)
    finally:
        if path is not None and event.contains(Engine, "connect", settings):
            event.remove(Engine, "connect", settings)


def _durability(engine: Engine) -> str:
    """What a connection of ``engine`` really runs with (read back, not assumed)."""
    if engine.dialect.name != "sqlite":
        with engine.connect() as connection:
            commit = connection.execute(text("SHOW synchronous_commit")).scalar_one()
        return f"synchronous_commit={commit}"
    with engine.connect() as connection:
        journal = connection.execute(text("PRAGMA journal_mode")).scalar_one()
        synchronous = connection.execute(text("PRAGMA synchronous")).scalar_one()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return f"journal_mode={journal}, synchronous={names.get(int(synchronous), synchronous)}"


def mlflow_name(name: str) -> str:
    """The name MLflow holds for a weightbase model: ``org.model`` for ``org/model``.

    MLflow refuses '/' in a model name. No organisation's name is a prefix of
    another's, so the order by name is the same on both sides.
    """
    return name.replace("/", ".")


def _millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _mlflow_rows(plan: CatalogPlan) -> dict[str, list[dict[str, Any]]]:
    """The plan's models, versions, tags and aliases as MLflow's registry rows.

    Versions are numbered 1, 2, … in SemVer order per model (MLflow numbers them
    by creation); weightbase's tags become keys with empty values; an alias's
    stage becomes MLflow's stage of the same name.
    """
    tables = {table: rows for table, rows in plan.tables}
    model_name = {row["id"]: mlflow_name(row["name"]) for row in tables[ModelRow]}
    number_of = {
        mlflow_name(name): {version: index + 1 for index, version in enumerate(numbers)}
        for name, numbers in zip(plan.names, plan.versions, strict=True)
    }
    version_key: dict[int, tuple[str, int]] = {}
    models = [
        {
            "name": mlflow_name(row["name"]),
            "description": row["description"],
            "creation_time": _millis(row["created_at"]),
            "last_updated_time": _millis(row["updated_at"]),
        }
        for row in tables[ModelRow]
    ]
    versions = []
    for row in tables[ModelVersionRow]:
        name = model_name[row["model_id"]]
        number = number_of[name][row["version"]]
        version_key[row["id"]] = (name, number)
        location = f"s3://bench-artifacts/{row['snapshot_id'][:32]}/model"
        versions.append(
            {
                "name": name,
                "version": number,
                "creation_time": _millis(row["created_at"]),
                "last_updated_time": _millis(row["created_at"]),
                "description": row["description"],
                "user_id": row["created_by"],
                "current_stage": _STAGES.get(row["stage"], "None"),
                "source": location,
                "storage_location": location,
                "run_id": row["content_digest"][:32],
                "run_link": None,
                "status": "READY",
                "status_message": None,
            }
        )
    model_tags, version_tags = [], []
    for row in tables[TagRow]:
        if row["entity_kind"] == "model":
            model_tags.append(
                {"name": model_name[row["entity_id"]], "key": row["tag"], "value": ""}
            )
        else:
            name, number = version_key[row["entity_id"]]
            version_tags.append({"name": name, "version": number, "key": row["tag"], "value": ""})
    aliases = [
        {"name": model_name[row["model_id"]], "alias": row["alias"]}
        | {"version": version_key[row["version_id"]][1]}
        for row in tables[AliasRow]
    ]
    return {
        "registered_models": models,
        "model_versions": versions,
        "registered_model_tags": model_tags,
        "model_version_tags": version_tags,
        "registered_model_aliases": aliases,
    }


def load_mlflow(store: Any, plan: CatalogPlan) -> str:
    """Insert the plan into the store's empty tables in one transaction; say how.

    The rows go in through MLflow's own table definitions (SQLAlchemy Core
    inserts of 2,000 rows), not ``create_model_version`` one call at a time,
    which commits a transaction per version. Statistics are gathered as for
    weightbase's catalog: VACUUM ANALYZE on PostgreSQL, ANALYZE on SQLite.
    """
    models = importlib.import_module("mlflow.store.model_registry.dbmodels.models")
    tables = {
        "registered_models": models.SqlRegisteredModel,
        "model_versions": models.SqlModelVersion,
        "registered_model_tags": models.SqlRegisteredModelTag,
        "model_version_tags": models.SqlModelVersionTag,
        "registered_model_aliases": models.SqlRegisteredModelAlias,
    }
    engine: Engine = store.engine
    with engine.begin() as connection:
        for name, rows in _mlflow_rows(plan).items():
            for start in range(0, len(rows), _BATCH):
                connection.execute(insert(tables[name].__table__), rows[start : start + _BATCH])
    with engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        autocommit.execute(text("VACUUM ANALYZE" if engine.dialect.name != "sqlite" else "ANALYZE"))
    return (
        "bulk-inserted through MLflow's SQLAlchemy table definitions (Core inserts), "
        f"then {'VACUUM ANALYZE' if engine.dialect.name != 'sqlite' else 'ANALYZE'}; "
        f"reads ran with {_durability(engine)}"
    )


# -- the timed pairs -----------------------------------------------------------------------

Pair = tuple[Callable[[], object], Callable[[], object]]  # (weightbase, MLflow)


def _pairs(
    models: ModelRegistry, store: Any, plan: CatalogPlan
) -> dict[str, Callable[[random.Random], Pair]]:
    """For each operation: given a random source, the two calls with the same arguments."""
    aliased = _aliased(plan)

    def version(rng: random.Random) -> Pair:
        model = rng.randrange(len(plan.names))
        name, numbers = plan.names[model], plan.versions[model]
        position = rng.randrange(len(numbers))
        return (
            lambda: models.version(f"{name}@{numbers[position]}"),
            lambda: store.get_model_version(mlflow_name(name), str(position + 1)),
        )

    def versions(rng: random.Random) -> Pair:
        name = rng.choice(plan.names)
        return (
            lambda: models.versions(name),
            lambda: store.search_model_versions(f"name='{mlflow_name(name)}'"),
        )

    def alias(rng: random.Random) -> Pair:
        name, label = rng.choice(aliased)
        return (
            lambda: models.version(name, label),
            lambda: store.get_model_version_by_alias(mlflow_name(name), label),
        )

    return {
        "list": lambda rng: (
            lambda: models.list(limit=PAGE),
            lambda: store.search_registered_models(max_results=PAGE),
        ),
        "get": version,
        "versions": versions,
        "alias": alias,
    }


def _aliased(plan: CatalogPlan) -> list[tuple[str, str]]:
    tables = {table: rows for table, rows in plan.tables}
    name_of = {row["id"]: row["name"] for row in tables[ModelRow]}
    return sorted((name_of[row["model_id"]], row["alias"]) for row in tables[AliasRow]) or [
        (plan.names[0], "production")
    ]


def _check(models: ModelRegistry, store: Any, plan: CatalogPlan, rng: random.Random) -> None:
    """Both registries must give the same answers, or the comparison is void."""
    ours = [mlflow_name(model.name) for model in models.list(limit=PAGE).items]
    theirs = [model.name for model in store.search_registered_models(max_results=PAGE)]
    if ours != theirs or len(ours) != min(PAGE, len(plan.names)):
        raise RuntimeError("MLflow's first page of models differs from weightbase's")
    for _ in range(5):
        model = rng.randrange(len(plan.names))
        name, numbers = plan.names[model], plan.versions[model]
        found = store.search_model_versions(f"name='{mlflow_name(name)}'")
        if sorted(int(item.version) for item in found) != list(range(1, len(numbers) + 1)):
            raise RuntimeError(f"{name}: MLflow holds other versions than planned")
        if [item.version for item in models.versions(name)] != list(numbers):
            raise RuntimeError(f"{name}: weightbase holds other versions than planned")
    for name, label in _aliased(plan)[:5]:
        position = int(store.get_model_version_by_alias(mlflow_name(name), label).version) - 1
        numbers = plan.versions[plan.names.index(name)]
        if models.version(name, label).version != numbers[position]:
            raise RuntimeError(f"{name}@{label}: the registries disagree on the version")


def compare_with_mlflow(
    models: ModelRegistry,
    store: Any,
    plan: CatalogPlan,
    *,
    rounds: int,
    calls: int,
    warmup: int,
    seed: int,
) -> tuple[dict[str, tuple[tuple[float, ...], ...]], dict[str, tuple[tuple[float, ...], ...]]]:
    """Seconds of ``calls`` paired calls per operation in each of ``rounds`` rounds.

    Each pair draws fresh arguments outside the timed region and runs weightbase
    and MLflow back to back, alternating which goes first; operations rotate per
    round. Returns (weightbase, MLflow) timings by operation, then by round.
    """
    rng = random.Random(seed)
    _check(models, store, plan, rng)
    draws = _pairs(models, store, plan)
    keys = list(draws)
    for _ in range(warmup):
        for key in keys:
            ours, theirs = draws[key](rng)
            ours()
            theirs()
    weightbase: dict[str, list[tuple[float, ...]]] = {key: [] for key in keys}
    mlflow: dict[str, list[tuple[float, ...]]] = {key: [] for key in keys}
    gc.collect()
    gc.freeze()  # the plan's rows are not what a collection inside a call should scan
    try:
        for round_index in range(rounds):
            shift = round_index % len(keys)
            for key in keys[shift:] + keys[:shift]:
                ours_s: list[float] = []
                theirs_s: list[float] = []
                for call_index in range(calls):
                    pair = draws[key](rng)
                    order = (0, 1) if (round_index + call_index) % 2 == 0 else (1, 0)
                    for side in order:
                        start = time.perf_counter()
                        pair[side]()
                        elapsed = time.perf_counter() - start
                        (ours_s if side == 0 else theirs_s).append(elapsed)
                weightbase[key].append(tuple(ours_s))
                mlflow[key].append(tuple(theirs_s))
    finally:
        gc.unfreeze()
    return (
        {key: tuple(values) for key, values in weightbase.items()},
        {key: tuple(values) for key, values in mlflow.items()},
    )
