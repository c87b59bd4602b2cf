"""``wb.compliance``: policies as data, evaluated per model version into a stored report.

    policies = load_policies("policy.yaml")      # or a list of dicts, or of Policy records
    report = wb.compliance.check("bert@1.2.0", policies,
                                 fairness=FairnessEvidence(predictions, labels, groups))
    report.risk_level, report.passed           # "low" … "high"; every check and its figures
    wb.compliance.history("bert@1.2.0")        # every report, oldest first

A policy file is a list of checks, each a mapping with a ``check`` and its
settings:

    - check: licence                          # the model names a licence
    - check: model_card                       # the model has a model card
    - check: metric                           # a metric logged on the version …
      metric: accuracy
      at_least: 0.9                           # … at or above a threshold
      dataset: digits@1.0.0                   # … measured on this dataset (optional)
    - check: fairness                         # a gap across groups below a limit
      metric: demographic_parity_difference   # or equalized_odds_difference, accuracy_gap
      below: 0.1
    - check: scan                             # the latest security scan is clean
    - check: ethics_review                    # the latest ethics review approved it

Each check has a severity (``severity:`` overrides it): licence, fairness,
scan and ethics review are ``high``, metric ``medium``, model card ``low``.
The report's risk level is the highest severity among the checks that failed
or could not be evaluated (a fairness check with no evidence, a scan never
run, a version never reviewed), ``low`` when all passed. Reports are stored
with the version, so its history shows how its compliance changed. Fairness
metrics are computed with fairlearn (``weightbase[governance]``).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from weightbase.catalog.schema import (
    RISK_LEVELS,
    ComplianceReportRow,
    ModelRow,
    ScanResultRow,
    VersionMetricRow,
)
from weightbase.errors import MissingExtraError, ValidationError
from weightbase.governance.ethics import ethics_check

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.registry import ModelRegistry, ModelVersion

__all__ = [
    "CHECKS",
    "CheckResult",
    "Compliance",
    "ComplianceReport",
    "FairnessEvidence",
    "Policy",
    "load_policies",
]

#: Each check and the severity it has unless its policy says otherwise.
CHECKS = {
    "licence": "high",
    "model_card": "low",
    "metric": "medium",
    "fairness": "high",
    "scan": "high",
    "ethics_review": "high",
}
FAIRNESS_METRICS = ("demographic_parity_difference", "equalized_odds_difference", "accuracy_gap")


@dataclass(frozen=True, slots=True)
class Policy:
    """One check to evaluate, with its settings (see the module docstring)."""

    check: str
    severity: str = ""
    metric: str | None = None
    at_least: float | None = None
    below: float | None = None
    dataset: str | None = None

    def __post_init__(self) -> None:
        if self.check not in CHECKS:
            raise ValidationError(
                f"unknown check {self.check!r}; choose one of {', '.join(CHECKS)}", check=self.check
            )
        severity = self.severity or CHECKS[self.check]
        if severity not in RISK_LEVELS:
            raise ValidationError(f"severity must be one of {', '.join(RISK_LEVELS)}")
        object.__setattr__(self, "severity", severity)
        if self.check == "metric" and (not self.metric or self.at_least is None):
            raise ValidationError("a metric check needs 'metric' and 'at_least'")
        if self.check == "fairness" and (self.metric not in FAIRNESS_METRICS or self.below is None):
            raise ValidationError(
                f"a fairness check needs 'below' and a 'metric' among {', '.join(FAIRNESS_METRICS)}"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        if not isinstance(data, Mapping) or "check" not in data:
            raise ValidationError(f"a policy is a mapping with a 'check', not {data!r}")
        unknown = set(data) - {"check", "severity", "metric", "at_least", "below", "dataset"}
        if unknown:
            raise ValidationError(f"unknown policy settings: {', '.join(sorted(unknown))}")
        numbers = {
            key: float(data[key]) for key in ("at_least", "below") if data.get(key) is not None
        }
        return cls(
            check=str(data["check"]),
            severity=str(data.get("severity") or ""),
            metric=data.get("metric"),
            dataset=data.get("dataset"),
            **numbers,
        )


@dataclass(frozen=True, slots=True)
class FairnessEvidence:
    """Predictions, true labels and each sample's group (a sensitive feature), aligned."""

    predictions: Any
    labels: Any
    groups: Any

    def arrays(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        arrays = tuple(np.asarray(value) for value in (self.predictions, self.labels, self.groups))
        if (
            len({len(a) for a in arrays}) != 1
            or any(a.ndim != 1 for a in arrays)
            or not len(arrays[0])
        ):
            raise ValidationError(
                "fairness evidence needs three non-empty 1-D arrays of one length"
            )
        return arrays  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome: passed, failed, or not evaluated (``passed`` None), and why."""

    check: str
    severity: str
    passed: bool | None
    detail: str
    figures: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "passed": self.passed,
            "detail": self.detail,
            "figures": dict(self.figures),
        }


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    """A version's policies evaluated at one moment, and the risk level they give."""

    model: str
    version: str
    risk_level: str
    results: tuple[CheckResult, ...]
    created_at: datetime | None = None
    created_by: str | None = None

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "risk_level": self.risk_level,
            "passed": self.passed,
            "results": [result.to_dict() for result in self.results],
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
            "created_by": self.created_by,
        }


def load_policies(source: str | Path | Sequence[Mapping[str, Any] | Policy]) -> tuple[Policy, ...]:
    """Policies from a YAML or JSON file, or from a list of mappings or records."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise ValidationError(f"no policy file {path}")
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValidationError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(data, list):
            raise ValidationError(f"{path} must hold a list of checks")
        source = data
    policies = tuple(p if isinstance(p, Policy) else Policy.from_dict(p) for p in source)
    if not policies:
        raise ValidationError("no policies to evaluate")
    return policies


class Compliance:
    """Evaluate policies on model versions; keep every report with its version."""

    def __init__(
        self, catalog: Catalog, *, recorder: ChangeRecorder, models: ModelRegistry
    ) -> None:
        self._catalog = catalog
        self._recorder = recorder
        self._models = models

    def check(
        self,
        ref: ModelVersion | str,
        policies: str | Path | Sequence[Mapping[str, Any] | Policy],
        *,
        fairness: FairnessEvidence | None = None,
    ) -> ComplianceReport:
        """Evaluate ``policies`` on the version ``ref``; store and return the report."""
        rules = load_policies(policies)
        found = self._models.version(ref)
        actor = self._recorder.actor

        def work(session: Session) -> ComplianceReport:
            model = session.get_one(ModelRow, found.model_id)
            results = tuple(_evaluate(session, rule, model, found, fairness) for rule in rules)
            failed = [r.severity for r in results if not r.passed]
            risk = max(failed, key=RISK_LEVELS.index) if failed else "low"
            report = ComplianceReport(found.model, found.version, risk, results, None, actor)
            row = ComplianceReportRow(
                version_id=found.id, report=report.to_dict(), risk_level=risk, created_by=actor
            )
            session.add(row)
            session.flush()
            after = {"version": found.version, "risk_level": risk, "passed": report.passed}
            self._recorder.record(
                session,
                "compliance.check",
                "model",
                found.model_id,
                after=after,
                event="compliance_checked",
                payload={"model": found.model, **after},
            )
            return _stored(row)

        return self._catalog.write(work)

    def history(self, ref: ModelVersion | str) -> builtins.list[ComplianceReport]:
        """Every report of a version, oldest first."""
        found = self._models.version(ref)
        with self._catalog.session() as session:
            rows = session.scalars(
                select(ComplianceReportRow)
                .where(ComplianceReportRow.version_id == found.id)
                .order_by(ComplianceReportRow.id)
            )
            return [_stored(row) for row in rows]


def _evaluate(
    session: Session,
    rule: Policy,
    model: ModelRow,
    version: ModelVersion,
    fairness: FairnessEvidence | None,
) -> CheckResult:
    def result(passed: bool | None, detail: str, **figures: Any) -> CheckResult:
        return CheckResult(rule.check, rule.severity, passed, detail, figures)

    if rule.check == "licence":
        return result(bool(model.licence), model.licence or "no licence named")
    if rule.check == "model_card":
        card = model.model_card or ""
        return result(bool(card.strip()), f"{len(card)} characters" if card else "no model card")
    if rule.check == "metric":
        query = (
            select(VersionMetricRow.value)
            .where(VersionMetricRow.version_id == version.id, VersionMetricRow.name == rule.metric)
            .order_by(VersionMetricRow.id.desc())
            .limit(1)
        )
        if rule.dataset is not None:
            query = query.where(VersionMetricRow.dataset == rule.dataset)
        value = session.scalar(query)
        where = f" on {rule.dataset}" if rule.dataset else ""
        if value is None:
            return result(None, f"no {rule.metric} logged{where}")
        passed = value >= (rule.at_least or 0.0)
        return result(
            passed,
            f"{rule.metric}{where} = {value:.4g} (at least {rule.at_least})",
            value=value,
            at_least=rule.at_least,
        )
    if rule.check == "fairness":
        if fairness is None:
            return result(None, "no predictions, labels and groups given")
        gap, per_group = _fairness_gap(rule.metric or "", fairness)
        passed = gap < (rule.below or 0.0)
        return result(
            passed,
            f"{rule.metric} = {gap:.4g} (below {rule.below})",
            value=gap,
            below=rule.below,
            per_group_accuracy=per_group,
        )
    if rule.check == "ethics_review":
        approved, summary, figures = ethics_check(session, version.id)
        return result(approved, summary, **figures)
    scan = session.scalars(
        select(ScanResultRow)
        .where(ScanResultRow.version_id == version.id)
        .order_by(ScanResultRow.id.desc())
        .limit(1)
    ).first()
    if scan is None:
        return result(None, "the version's files were never scanned")
    return result(bool(scan.clean), "clean" if scan.clean else "findings in the last scan")


def _fairness_gap(metric: str, evidence: FairnessEvidence) -> tuple[float, dict[str, float]]:
    try:
        from fairlearn.metrics import (
            MetricFrame,
            demographic_parity_difference,
            equalized_odds_difference,
        )
        from sklearn.metrics import accuracy_score
    except ImportError as exc:
        raise MissingExtraError(
            "fairness checks need fairlearn: pip install 'weightbase[governance]'"
        ) from exc
    predictions, labels, groups = evidence.arrays()
    frame = MetricFrame(
        metrics=accuracy_score, y_true=labels, y_pred=predictions, sensitive_features=groups
    )
    per_group = {str(group): float(value) for group, value in frame.by_group.items()}
    if metric == "demographic_parity_difference":
        gap = demographic_parity_difference(labels, predictions, sensitive_features=groups)
    elif metric == "equalized_odds_difference":
        gap = equalized_odds_difference(labels, predictions, sensitive_features=groups)
    else:
        gap = frame.difference()
    return float(gap), per_group


def _stored(row: ComplianceReportRow) -> ComplianceReport:
    data = dict(row.report)
    results = tuple(
        CheckResult(r["check"], r["severity"], r["passed"], r["detail"], r.get("figures", {}))
        for r in data["results"]
    )
    return ComplianceReport(
        data["model"], data["version"], row.risk_level, results, row.created_at, row.created_by
    )
