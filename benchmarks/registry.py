"""The registry benchmark: catalog reads at 10,000 models and 100,000 versions, and a diff.

The synthetic catalog of ``benchmarks.registry_plan`` is bulk-inserted into the
tables of a catalog that ``weightbase.open()`` migrated, on SQLite and on
PostgreSQL, and then read through the public ``wb.models`` calls, four of them
paired with MLflow's model registry holding the same catalog in a database of
its own (``benchmarks.registry_mlflow``); a diff of two all-MiniLM-L6-v2
versions is timed against loading both safetensors files and comparing them
with NumPy.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy.engine import make_url

import weightbase
from benchmarks.registry_databases import database, postgres_problem, server_version
from benchmarks.registry_mlflow import (
    MlflowComparison,
    compare_with_mlflow,
    load_mlflow,
    open_mlflow_store,
    speedup_keys,
)
from benchmarks.registry_plan import CatalogPlan, load_catalog, plan_catalog
from benchmarks.timing import Stopwatch, Timing, interleave
from weightbase.samples import minilm_folder

if TYPE_CHECKING:
    from weightbase.registry import ModelRegistry
    from weightbase.registry.diff import SnapshotDiff

__all__ = [
    "BACKENDS",
    "DEFAULT_POSTGRES_URL",
    "OPERATIONS",
    "POSTGRES_URL_VARIABLE",
    "TARGET_P50_MS",
    "BackendResult",
    "DiffResult",
    "RegistryConfig",
    "RegistryResults",
    "measure_diff",
    "measure_reads",
    "run_registry",
]

Log = Callable[[str], None]

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
    mlflow_rounds: int = 10  # rounds of paired calls against MLflow's registry
    mlflow_calls: int = 20  # paired calls of each operation per round
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
                mlflow_rounds=3,
                mlflow_calls=5,
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
    mlflow: MlflowComparison | None = None  # the same reads against MLflow's registry

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
            "mlflow": self.mlflow.to_dict() if self.mlflow is not None else None,
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
        comparisons = {
            name: result.mlflow if result is not None else None
            for name, result in self.backends.items()
        }
        out.update(speedup_keys(comparisons, BACKENDS))
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


def _measure_backend(
    backend: str, url: str, plan: CatalogPlan, config: RegistryConfig, log: Log
) -> BackendResult:
    home = config.workdir / f"home-{backend}"
    store_url = str(home / "store")
    with weightbase.open(home, catalog_url=url, store_url=store_url) as wb:
        start = time.perf_counter()
        load_catalog(wb.catalog.engine, plan)
        load_seconds = time.perf_counter() - start
        server = server_version(wb.catalog.engine)
    rows = sum(plan.counts().values())
    log(f"  {backend}: {rows:,} rows inserted in {load_seconds:.1f} s ({server})")
    # a fresh handle, as a reader process would have
    with weightbase.open(home, catalog_url=url, store_url=store_url) as wb:
        samples = measure_reads(
            wb.models, plan, samples=config.samples, warmup=config.warmup, seed=config.seed + 1
        )
        shown = ", ".join(
            f"{key} {np.percentile(samples[key], 50) * 1e3:.1f}" for key, _ in OPERATIONS
        )
        log(f"  {backend} p50 ms: {shown}")
        mlflow = _measure_mlflow(backend, wb.models, plan, config, log)
    return BackendResult(backend, server, load_seconds, samples, mlflow)


def _measure_mlflow(
    backend: str, models: ModelRegistry, plan: CatalogPlan, config: RegistryConfig, log: Log
) -> MlflowComparison:
    """Load the same catalog into MLflow's registry on its own database; time the pairs."""
    counts = plan.counts()
    with database(backend, config, mlflow=True) as url, open_mlflow_store(url) as store:
        start = time.perf_counter()
        method = load_mlflow(store, plan)
        load_seconds = time.perf_counter() - start
        log(f"  {backend}: MLflow's registry loaded in {load_seconds:.1f} s ({method})")
        ours, theirs = compare_with_mlflow(
            models,
            store,
            plan,
            rounds=config.mlflow_rounds,
            calls=config.mlflow_calls,
            warmup=config.warmup,
            seed=config.seed + 2,
        )
    comparison = MlflowComparison(
        backend,
        counts["models"],
        counts["model_versions"],
        load_seconds,
        method,
        ours,
        theirs,
    )
    shown = ", ".join(
        f"{key} {comparison.speedup(key):.2f}x ({min(comparison.ratios(key)):.2f}-"
        f"{max(comparison.ratios(key)):.2f})"
        for key in ours
    )
    log(f"  {backend} MLflow time / weightbase time: {shown}")
    return comparison


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
                else postgres_problem(config.postgres_url)
            )
        if problem is not None:
            warn(f"warning: skipping PostgreSQL, the postgres keys are null: {problem}")
            backends[backend], skipped[backend] = None, problem
            continue
        log(f"[2/3] {backend}: load, then {config.samples} timed calls per operation")
        with database(backend, config) as url:
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
