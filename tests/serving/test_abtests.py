"""``wb.abtests``: A/B tests created, assigned, fed outcomes, analysed, stopped and promoted.

Every test runs embedded and through a live server (``remote_or_embedded``), on SQLite and
PostgreSQL; results are checked against the statistical core (``analyze``) on the same sums.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import remote_variants
from tests.remote_support import LiveServer

import weightbase
from weightbase.errors import ApprovalRequired, Conflict, NotFound, ValidationError
from weightbase.serving.ab_assign import Allocation, allocate, assign_many, reweight
from weightbase.serving.ab_records import AnalysisSettings, VariantSummary
from weightbase.serving.ab_stats import analyze, summarize
from weightbase.serving.abtest_records import ABMetric, ABTest, ABTestResults
from weightbase.workspace import Workspace

A, B = "ranker@0.1.0", "ranker@0.2.0"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    remote_variants(metafunc)


@pytest.fixture
def wb(remote_or_embedded: Workspace) -> Workspace:
    """``ranker`` at 0.1.0 and 0.2.0."""
    rng = np.random.default_rng(0)
    for _ in range(2):
        remote_or_embedded.models.push("ranker", {"w": rng.standard_normal(4).astype(np.float32)})
    return remote_or_embedded


def _binary(wb: Workspace, name: str = "ranker-v2", **options: Any) -> ABTest:
    return wb.abtests.create(name, variants=[A, B], metric="click", kind="binary", **options)


def _audit(wb: Workspace, test_id: str, action: str) -> list[dict[str, Any]]:
    """The test's audit entries of ``action``, from the workspace or through the API."""
    connection = getattr(wb, "connection", None)
    if connection is None:
        return [e.to_dict() for e in wb.audit.entries("ab_test", test_id, action=action)]
    found = connection.get("/api/v1/audit", entity_kind="ab_test", entity_id=test_id, action=action)
    return list(found["items"])


def _clicks(rate: float, count: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(count) < rate).astype(float)


def test_a_test_is_created_read_and_listed(wb: Workspace) -> None:
    test = _binary(wb, weights=[1, 3], planned_units=5000, description="new ranker")
    assert test.status == "running"
    assert [v.name for v in test.variants] == [A, B]
    assert (test.control.model, test.control.version) == ("ranker", "0.1.0")
    assert test.weights == (1.0, 3.0)
    assert test.salt == test.id
    assert test.metric == ABMetric("click", "binary", True)
    assert wb.abtests.get(test.id) == test
    assert wb.abtests.get("ranker-v2") == test
    assert [t.id for t in wb.abtests.list()] == [test.id]
    assert wb.abtests.list(status="stopped") == []
    with pytest.raises(Conflict, match="is running"):
        _binary(wb)
    assert ABTest.from_dict(test.to_dict()) == test


def test_assignment_is_sticky_across_calls_and_after_a_reweight(wb: Workspace) -> None:
    test = _binary(wb, salt="fixed-salt")
    units = [f"user-{i}" for i in range(60)]
    first = [wb.abtests.assign(test.id, unit) for unit in units]
    assert first == [wb.abtests.assign("ranker-v2", unit) for unit in units]
    # the same buckets the core computes, GrowthBook's hash of the salt and id
    expected = assign_many(allocate([1, 1]), "fixed-salt", units)
    assert first == [test.variants[int(i)].name for i in expected]
    moved = wb.abtests.reweight(test.id, [1, 3], reason="ramp up")
    assert moved.weights == (1.0, 3.0)
    after = [wb.abtests.assign(test.id, unit) for unit in units]
    # units already in the treatment stay there; only control's extra buckets moved
    assert all(a == B for b, a in zip(first, after, strict=True) if b == B)
    core = reweight(allocate([1, 1]), [1, 3])
    assert after == [test.variants[int(i)].name for i in assign_many(core, "fixed-salt", units)]
    with pytest.raises(ValidationError, match="one weight per variant"):
        wb.abtests.reweight(test.id, [1, 1, 1])


def test_outcomes_give_the_results_analyze_gives_on_the_same_sums(wb: Workspace) -> None:
    test = wb.abtests.create(
        "latency",
        variants=[A, B],
        metric="rating",
        kind="continuous",
        planned_units=4000,
        salt="s",
    )
    rng = np.random.default_rng(1)
    units = [f"u{i}" for i in range(800)]
    values = rng.normal(3.0, 1.0, size=len(units)).round(3)
    by_variant = [(B, "rating", 3.5), (A, "rating", 2.5)]
    recorded = wb.abtests.record(
        test.id, [(u, "rating", float(v)) for u, v in zip(units, values, strict=True)]
    )
    assert recorded == len(units)
    assert wb.abtests.record(test.id, by_variant) == 2
    index = assign_many(Allocation.from_dict(allocate([1, 1]).to_dict()), "s", units)
    all_index = np.concatenate([index, [1, 0]])
    all_values = np.concatenate([values, [3.5, 2.5]])
    sums = summarize(all_index, all_values, [A, B])
    expected = analyze(
        sums, AnalysisSettings(kind="continuous"), weights=(1.0, 1.0), planned_units=4000
    )
    found = wb.abtests.results(test.id)
    assert isinstance(found, ABTestResults)
    assert [v.count for v in found.results.variants] == [v.count for v in expected.variants]
    for got, want in zip(found.results.variants, expected.variants, strict=True):
        assert got.mean == pytest.approx(want.mean, rel=1e-12)
        assert got.variance == pytest.approx(want.variance, rel=1e-9)
    [got_c], [want_c] = found.results.comparisons, expected.comparisons
    assert got_c.absolute.estimate == pytest.approx(want_c.absolute.estimate, rel=1e-9)
    assert got_c.absolute.ci_low == pytest.approx(want_c.absolute.ci_low, rel=1e-9)
    assert got_c.absolute.p_value == pytest.approx(want_c.absolute.p_value, rel=1e-9)
    assert got_c.bayesian.chance_to_beat_control == pytest.approx(
        want_c.bayesian.chance_to_beat_control, rel=1e-9
    )
    assert got_c.sequential.p_value == pytest.approx(want_c.sequential.p_value, rel=1e-9)
    assert found.results.sample_ratio.p_value == pytest.approx(
        expected.sample_ratio.p_value, rel=1e-9
    )
    assert found.results.power is not None
    assert expected.power is not None
    assert found.results.power.mde_absolute[0] == pytest.approx(
        expected.power.mde_absolute[0], rel=1e-9
    )
    # the always-valid p-value is the lowest over the looks, never above this look's
    assert found.always_valid_p[0] <= got_c.sequential.p_value
    assert "Keep running" in found.recommendation
    assert ABTestResults.from_dict(found.to_dict()) == found


def test_a_skewed_split_is_flagged_as_a_sample_ratio_mismatch(wb: Workspace) -> None:
    test = _binary(wb)
    outcomes = [(A, "click", float(v)) for v in _clicks(0.1, 1000, 2)]
    outcomes += [(B, "click", float(v)) for v in _clicks(0.3, 700, 3)]
    wb.abtests.record(test.id, outcomes)
    found = wb.abtests.results(test.id)
    assert found.results.sample_ratio.mismatch
    assert found.results.sample_ratio.observed == (1000, 700)
    assert found.winner is None
    assert found.recommendation.startswith("Sample ratio mismatch")


def _winning(wb: Workspace, **options: Any) -> ABTest:
    test = _binary(wb, **options)
    for look in range(4):  # four batches: four looks of the sequential test
        batch = [(A, "click", float(v)) for v in _clicks(0.10, 600, 10 + look)]
        batch += [(B, "click", float(v)) for v in _clicks(0.20, 600, 20 + look)]
        wb.abtests.record(test.id, batch)
    return test


def test_a_clear_winner_is_recommended_and_promoted_to_production(wb: Workspace) -> None:
    test = _winning(wb)
    found = wb.abtests.results(test.id)
    assert found.winner == B
    assert found.recommendation.startswith(f"Promote {B}")
    assert found.always_valid_p[0] < 0.05
    promoted = wb.abtests.promote(test.id, reason="clicks up")
    assert (promoted.status, promoted.decision, promoted.winner) == ("stopped", "promoted", B)
    assert wb.models.version("ranker@production").version == "0.2.0"
    [entry] = _audit(wb, test.id, "abtest.promote")
    assert entry["after"]["version"] == "0.2.0"
    assert entry["after"]["results"]["always_valid_p"] == pytest.approx(found.always_valid_p[0])


def _promotion_needs_approval(local: Workspace, wb: Workspace) -> None:
    local.approvals.set_policy(
        "ranker", approvers=["ana"], required_approvals=1, require_approval_for_production=True
    )
    test = _winning(wb)
    with pytest.raises(ApprovalRequired, match=r"ranker@0\.2\.0 needs an approved request"):
        wb.abtests.promote(test.id)
    assert wb.abtests.get(test.id).status == "running"
    with pytest.raises(NotFound):
        wb.models.version("ranker@production")
    request = local.approvals.request(B, requested_by="dee")
    local.approvals.decide(request.id, "approved", approver="ana")
    assert wb.abtests.promote(test.id).winner == B
    assert wb.models.version("ranker@production").version == "0.2.0"


@pytest.mark.embedded_only
def test_promotion_needs_the_approval_production_needs(wb: Workspace) -> None:
    _promotion_needs_approval(wb, wb)


def test_promotion_through_a_server_needs_the_approval_too(
    live_server: LiveServer, catalog_url: str, weightbase_home: Path
) -> None:
    local = weightbase.open(weightbase_home, catalog_url=catalog_url)
    try:
        rng = np.random.default_rng(0)
        for _ in range(2):
            local.models.push("ranker", {"w": rng.standard_normal(4).astype(np.float32)})
        with live_server.serving(local) as remote:
            _promotion_needs_approval(local, remote)
    finally:
        local.close()


def test_promote_without_a_winner_names_the_variant_or_is_refused(wb: Workspace) -> None:
    test = _binary(wb)
    with pytest.raises(ValidationError):
        wb.abtests.promote(test.id)
    assert wb.abtests.promote(test.id, A).winner == A
    assert wb.models.version("ranker@production").version == "0.1.0"


def test_stop_records_the_decision_and_frees_the_name(wb: Workspace) -> None:
    test = _binary(wb)
    stopped = wb.abtests.stop(test.id, decision="inconclusive", reason="budget")
    assert (stopped.status, stopped.decision, stopped.reason) == (
        "stopped",
        "inconclusive",
        "budget",
    )
    assert stopped.stopped is not None
    with pytest.raises(Conflict, match="already stopped"):
        wb.abtests.stop(test.id, decision="again")
    with pytest.raises(Conflict, match="stopped"):
        wb.abtests.record(test.id, [(A, "click", 1)])
    again = _binary(wb)
    assert wb.abtests.get("ranker-v2").id == again.id
    assert [t.id for t in wb.abtests.list(status="stopped")] == [test.id]
    [entry] = _audit(wb, test.id, "abtest.stop")
    assert entry["reason"] == "budget"


def test_a_deployment_is_a_variant_and_guardrails_are_analysed(wb: Workspace) -> None:
    deployment = wb.deployments.deploy(A, environment="staging")
    test = wb.abtests.create(
        "guarded",
        variants=[deployment.id, B],
        metric="click",
        guardrails=[ABMetric("latency_ms", "continuous", higher_is_better=False)],
    )
    assert test.control.deployment_id == deployment.id
    assert test.control.ref == A
    outcomes: list[tuple[str, str, float]] = []
    for look in range(3):
        outcomes = [(deployment.id, "click", float(v)) for v in _clicks(0.1, 600, look)]
        outcomes += [(B, "click", float(v)) for v in _clicks(0.2, 600, 5 + look)]
        rng = np.random.default_rng(look)
        outcomes += [(deployment.id, "latency_ms", float(v)) for v in rng.normal(20, 2, 300)]
        outcomes += [(B, "latency_ms", float(v)) for v in rng.normal(40, 2, 300)]
        wb.abtests.record(test.id, outcomes)
    found = wb.abtests.results(test.id)
    [guard] = found.guardrails
    assert guard.results is not None
    assert guard.results.comparisons[0].absolute.estimate > 15
    assert found.winner is None
    assert "harms latency_ms" in found.recommendation


def test_bad_requests_are_refused(wb: Workspace) -> None:
    with pytest.raises(NotFound):
        wb.abtests.get("nothing")
    with pytest.raises(NotFound):
        wb.abtests.create("t", variants=[A, "ranker@9.9.9"])
    with pytest.raises(NotFound):
        wb.abtests.create("t", variants=[A, "f" * 32])  # no such deployment
    with pytest.raises(ValidationError, match="at least 2"):
        wb.abtests.create("t", variants=[A])
    with pytest.raises(ValidationError, match="one weight"):
        wb.abtests.create("t", variants=[A, B], weights=[1])
    with pytest.raises(ValidationError, match="kind"):
        wb.abtests.create("t", variants=[A, B], kind="ordinal")
    test = _binary(wb)
    with pytest.raises(ValidationError, match="not a metric"):
        wb.abtests.record(test.id, [(A, "revenue", 1.0)])
    with pytest.raises(ValidationError, match="0 or 1"):
        wb.abtests.record(test.id, [(A, "click", 2.0)])
    with pytest.raises(ValidationError):
        wb.abtests.results(test.id)  # no outcomes yet
    with pytest.raises(NotFound):
        wb.abtests.assign("nothing", "u1")
    # a refused batch left nothing behind
    wb.abtests.record(test.id, [(A, "click", 1.0), (A, "click", 0.0), (B, "click", 1.0)] * 2)
    assert [v.count for v in wb.abtests.results(test.id).results.variants] == [4, 2]


def test_the_rest_api_answers_404_409_and_422(
    live_server: LiveServer, catalog_url: str, weightbase_home: Path
) -> None:
    local = weightbase.open(weightbase_home, catalog_url=catalog_url)
    try:
        rng = np.random.default_rng(0)
        for _ in range(2):
            local.models.push("ranker", {"w": rng.standard_normal(4).astype(np.float32)})
        with live_server.serving(local) as remote:
            _statuses(remote)
    finally:
        local.close()


def _statuses(wb: Any) -> None:
    client = wb.connection._client
    assert client.get("/api/v1/ab-tests/nothing").status_code == 404
    assert client.post("/api/v1/ab-tests/nothing/assign", json={"unit_id": "u"}).status_code == 404
    bad = client.post("/api/v1/ab-tests", json={"name": "t", "variants": [A]})
    assert bad.status_code == 422
    test = _binary(wb)
    answer = client.post(f"/api/v1/ab-tests/{test.id}/assign", json={"unit_id": "u1"})
    assert answer.status_code == 200
    assert answer.json()["variant"] == wb.abtests.assign(test.id, "u1")
    outcome = {"variant": A, "metric": "click", "value": 3}
    bad_value = client.post(f"/api/v1/ab-tests/{test.id}/outcomes", json={"outcomes": [outcome]})
    assert bad_value.status_code == 422
    taken = client.post("/api/v1/ab-tests", json={"name": "ranker-v2", "variants": [A, B]})
    assert taken.status_code == 409


def test_every_public_method_of_the_service_is_overridden_remotely() -> None:
    from weightbase.remote.abtests import RemoteABTests
    from weightbase.serving.abtests import ABTests

    public = {
        name
        for name in dir(ABTests)
        if not name.startswith("_") and callable(getattr(ABTests, name))
    }
    assert public == {
        "create",
        "get",
        "list",
        "allocation",
        "assign",
        "record",
        "reweight",
        "results",
        "stop",
        "promote",
    }
    assert sorted(name for name in public if name not in vars(RemoteABTests)) == []
    for name in public:
        remote = inspect.signature(getattr(RemoteABTests, name))
        assert remote == inspect.signature(getattr(ABTests, name)), name


def test_summaries_check_binary_sums() -> None:
    with pytest.raises(ValidationError):
        VariantSummary("a", 2, 3.0, 3.0).check_binary()


@pytest.mark.embedded_only
def test_batches_recorded_at_once_all_count(wb: Workspace) -> None:
    from concurrent.futures import ThreadPoolExecutor

    test = wb.abtests.create("busy", variants=[A, B], metric="rating", kind="continuous")

    def send(worker: int) -> int:
        batch = [(f"w{worker}-u{i}", "rating", float(i % 5)) for i in range(200)]
        return sum(wb.abtests.record(test.id, batch[j : j + 20]) for j in range(0, 200, 20))

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(send, range(4))) == 800
    found = wb.abtests.results(test.id).results
    assert sum(v.count for v in found.variants) == 800
    # the sums are exact: 800 outcomes of 0-4, 160 of each value
    means = [v.mean * v.count for v in found.variants]
    assert sum(means) == pytest.approx(160 * (0 + 1 + 2 + 3 + 4))


def test_a_reweight_mid_test_is_not_a_sample_ratio_mismatch(wb: Workspace) -> None:
    test = wb.abtests.create("ramp", variants=[A, B], metric="rating", kind="continuous")
    rng = np.random.default_rng(4)

    def batch(units: int, share_b: float) -> list[tuple[str, str, float]]:
        to_b = int(units * share_b)
        values = rng.normal(3, 1, units)
        return [(B if i < to_b else A, "rating", float(v)) for i, v in enumerate(values)]

    wb.abtests.record(test.id, batch(4000, 0.5))
    wb.abtests.reweight(test.id, [1, 3])
    wb.abtests.record(test.id, batch(4000, 0.75))
    found = wb.abtests.results(test.id).results.sample_ratio
    # 2000 + 1000 in control, 2000 + 3000 in the treatment: what the two stretches promised
    assert found.observed == (3000, 5000)
    assert found.expected == pytest.approx((3000.0, 5000.0))
    assert not found.mismatch
    # against the latest weights alone (1:3) it would be flagged
    from weightbase.serving.ab_power import sample_ratio_check

    assert sample_ratio_check([3000, 5000], [1, 3]).mismatch


def test_the_allocation_read_by_servers_assigns_as_the_catalog_does(wb: Workspace) -> None:
    created = _binary(wb, weights=[1, 3])
    wb.abtests.reweight(created.id, [1, 1])
    test, allocation = wb.abtests.allocation(created.name)
    assert test == wb.abtests.get(created.id)
    assert allocation.weights == (1.0, 1.0)
    units = [f"unit-{k}" for k in range(50)]
    indices = assign_many(allocation, test.salt, units)
    assert [test.variants[i].name for i in indices] == [
        wb.abtests.assign(test.id, u) for u in units
    ]


@pytest.mark.embedded_only
def test_a_promotion_that_fails_midway_moves_no_alias(
    wb: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    test = _binary(wb)  # embedded alone: the fault is injected into this process's service

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the process died after the alias moved")

    monkeypatch.setattr("weightbase.serving.abtests.ABTests._change", crash)
    with pytest.raises(RuntimeError):
        wb.abtests.promote(test.id, B)
    with pytest.raises(NotFound):
        wb.models.version("ranker@production")  # rolled back with the test's change
    assert wb.abtests.get(test.id).status == "running"
    monkeypatch.undo()
    assert wb.abtests.promote(test.id, B).winner == B
    assert wb.models.version("ranker@production").version == "0.2.0"
