"""Compliance policies evaluated per version: each check, the risk level, stored history."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from weightbase.catalog.schema import ScanResultRow
from weightbase.errors import NotFound, ValidationError
from weightbase.governance.compliance import FairnessEvidence, Policy, load_policies
from weightbase.workspace import Workspace

POLICIES = [
    {"check": "licence"},
    {"check": "model_card"},
    {"check": "metric", "metric": "accuracy", "at_least": 0.9, "dataset": "digits@1.0.0"},
    {"check": "fairness", "metric": "demographic_parity_difference", "below": 0.1},
    {"check": "scan"},
]


@pytest.fixture
def version(workspace: Workspace) -> str:
    weights = {"w": np.ones((4, 4), dtype=np.float32)}
    return workspace.models.push("clf", weights).ref


def _evidence(gap: float, n: int = 400) -> FairnessEvidence:
    """Two groups; group "b" gets positive predictions ``gap`` more often than group "a"."""
    rng = np.random.default_rng(0)
    groups = np.array(["a", "b"] * (n // 2))
    labels = rng.integers(0, 2, n)
    base = rng.random(n)
    predictions = (base < np.where(groups == "a", 0.5, 0.5 + gap)).astype(int)
    return FairnessEvidence(predictions, labels, groups)


def test_a_bare_version_is_high_risk_and_says_why(workspace: Workspace, version: str) -> None:
    report = workspace.compliance.check(version, POLICIES)
    assert report.risk_level == "high"
    assert not report.passed
    by_check = {result.check: result for result in report.results}
    assert by_check["licence"].passed is False
    assert by_check["model_card"].passed is False
    assert by_check["metric"].passed is None
    assert "no accuracy logged on digits@1.0.0" in by_check["metric"].detail
    assert by_check["fairness"].passed is None
    assert by_check["scan"].passed is None
    assert "never scanned" in by_check["scan"].detail


def test_a_version_that_meets_every_policy_is_low_risk(workspace: Workspace, version: str) -> None:
    workspace.models.update("clf", licence="Apache-2.0", model_card="# clf\nA classifier.")
    workspace.models.log_metrics(version, {"accuracy": 0.93}, dataset="digits@1.0.0")
    found = workspace.models.version(version)
    with workspace.catalog.transaction() as session:
        session.add(ScanResultRow(version_id=found.id, report={"findings": []}, clean=True))
    report = workspace.compliance.check(version, POLICIES, fairness=_evidence(0.0))
    assert [r.passed for r in report.results] == [True] * 5
    assert report.risk_level == "low"
    fairness = report.results[3]
    assert fairness.figures["value"] < 0.1
    assert set(fairness.figures["per_group_accuracy"]) == {"a", "b"}


def test_the_risk_is_the_worst_failed_severity(workspace: Workspace, version: str) -> None:
    workspace.models.update("clf", licence="MIT")
    workspace.models.log_metrics(version, {"accuracy": 0.5})
    medium = workspace.compliance.check(
        version, [{"check": "licence"}, {"check": "metric", "metric": "accuracy", "at_least": 0.9}]
    )
    assert medium.risk_level == "medium"
    assert "accuracy = 0.5 (at least 0.9)" in medium.results[1].detail
    low = workspace.compliance.check(version, [{"check": "model_card"}])
    assert low.risk_level == "low"  # a failed low-severity check
    raised = workspace.compliance.check(version, [{"check": "model_card", "severity": "high"}])
    assert raised.risk_level == "high"


def test_fairness_gaps_are_measured(workspace: Workspace, version: str) -> None:
    unfair = _evidence(0.4)
    for metric in ("demographic_parity_difference", "equalized_odds_difference", "accuracy_gap"):
        report = workspace.compliance.check(
            version, [{"check": "fairness", "metric": metric, "below": 0.05}], fairness=unfair
        )
        (result,) = report.results
        assert result.passed is (result.figures["value"] < 0.05)
    parity = workspace.compliance.check(
        version,
        [{"check": "fairness", "metric": "demographic_parity_difference", "below": 0.1}],
        fairness=unfair,
    )
    assert parity.results[0].passed is False
    predictions, _, groups = unfair.arrays()
    rates = [predictions[groups == group].mean() for group in ("a", "b")]
    assert parity.results[0].figures["value"] == pytest.approx(abs(rates[1] - rates[0]))
    with pytest.raises(ValidationError, match="1-D arrays"):
        workspace.compliance.check(
            version,
            [{"check": "fairness", "metric": "accuracy_gap", "below": 0.1}],
            fairness=FairnessEvidence([1, 0], [1], ["a", "b"]),
        )


def test_reports_are_kept_with_the_version(workspace: Workspace, version: str) -> None:
    first = workspace.compliance.check(version, [{"check": "licence"}])
    workspace.models.update("clf", licence="MIT")
    second = workspace.compliance.check(version, [{"check": "licence"}])
    history = workspace.compliance.history(version)
    assert [r.risk_level for r in history] == ["high", "low"]
    assert [r.to_dict()["results"] for r in history] == [
        first.to_dict()["results"],
        second.to_dict()["results"],
    ]
    assert history[0].created_at is not None
    assert "compliance.check" in [e.action for e in workspace.models.history("clf")]
    with pytest.raises(NotFound):
        workspace.compliance.history("clf@9.9.9")


def test_policy_files_and_bad_policies(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "- check: licence\n- check: metric\n  metric: f1\n  at_least: 0.8\n"
    )
    (tmp_path / "p.json").write_text(json.dumps([{"check": "scan", "severity": "medium"}]))
    assert [p.check for p in load_policies(tmp_path / "p.yaml")] == ["licence", "metric"]
    assert load_policies(str(tmp_path / "p.json")) == (Policy("scan", "medium"),)
    (tmp_path / "bad.yaml").write_text("check: [unclosed")
    (tmp_path / "map.yaml").write_text("check: licence\n")
    with pytest.raises(ValidationError, match="not valid YAML"):
        load_policies(tmp_path / "bad.yaml")
    with pytest.raises(ValidationError, match="list of checks"):
        load_policies(tmp_path / "map.yaml")
    with pytest.raises(ValidationError, match="no policy file"):
        load_policies(tmp_path / "absent.yaml")
    bad = [
        ({"check": "vibes"}, "unknown check"),
        ({"check": "licence", "severity": "dire"}, "severity"),
        ({"check": "metric", "metric": "f1"}, "at_least"),
        ({"check": "fairness", "metric": "luck", "below": 0.1}, "fairness check"),
        ({"check": "licence", "colour": "red"}, "unknown policy settings"),
        ("licence", "a mapping"),
    ]
    for policy, message in bad:
        with pytest.raises(ValidationError, match=message):
            load_policies([policy])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="no policies"):
        load_policies([])


def test_the_compliance_commands(
    workspace: Workspace, version: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from weightbase.cli import app

    url = workspace.catalog.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("WEIGHTBASE_CATALOG_URL", url)
    monkeypatch.setenv("WEIGHTBASE_HOME", str(workspace.home))
    policy = tmp_path / "policy.yaml"
    policy.write_text("- check: licence\n- check: fairness\n  metric: accuracy_gap\n  below: 0.5\n")
    evidence = _evidence(0.0)
    np.savez(
        tmp_path / "fair.npz",
        **dict(zip(["predictions", "labels", "groups"], evidence.arrays(), strict=True)),
    )
    np.savez(tmp_path / "partial.npz", predictions=np.zeros(3))
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["compliance", *args])
        return result.exit_code, result.stdout

    code, out = run("check", version, "--policy", str(policy))
    assert code == 1
    assert "risk high" in out
    assert "not evaluated" in out
    workspace.models.update("clf", licence="MIT")
    fair = str(tmp_path / "fair.npz")
    code, out = run("check", version, "--policy", str(policy), "--fairness", fair, "--json")
    assert code == 0
    assert json.loads(out)["risk_level"] == "low"
    assert run("check", version, "--policy", str(policy), "--fairness", "absent.npz")[0] == 2
    partial = str(tmp_path / "partial.npz")
    assert run("check", version, "--policy", str(policy), "--fairness", partial)[0] == 2
    code, out = run("history", version)
    assert code == 0
    assert "licence, fairness" in out
    assert [r["risk_level"] for r in json.loads(run("history", version, "--json")[1])] == [
        "high",
        "low",
    ]
