"""The records of ``wb.abtests``: a test with its variants and metrics, and its results.

Frozen and checked when built; ``to_dict`` gives JSON-ready values and ``from_dict`` reads
them back (the remote client rebuilds what the server answers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from weightbase.errors import ValidationError
from weightbase.serving.ab_records import (
    METRIC_KINDS,
    ABResults,
    AnalysisSettings,
    BayesianSummary,
    Comparison,
    Effect,
    MetricKind,
    PowerPlan,
    SampleRatioCheck,
    SequentialSummary,
    VariantStats,
)

__all__ = [
    "ABMetric",
    "ABTest",
    "ABTestResults",
    "ABVariant",
    "GuardrailResult",
    "ab_results_from_dict",
]

_MAX_NAME = 128


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ValidationError(f"not a time: {value!r}") from exc


@dataclass(frozen=True)
class ABMetric:
    """A metric of a test: its name, ``binary`` (0/1) or ``continuous``, and its direction."""

    name: str
    kind: MetricKind = "binary"
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > _MAX_NAME:
            raise ValidationError(
                f"a metric name must be 1 to {_MAX_NAME} characters, not {self.name!r}",
                field="metric",
            )
        if self.kind not in METRIC_KINDS:
            raise ValidationError(
                f"a metric kind must be one of {', '.join(METRIC_KINDS)}, not {self.kind!r}",
                field="kind",
            )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "higher_is_better": self.higher_is_better}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ABMetric:
        try:
            return cls(
                name=data["name"],
                kind=data.get("kind", "binary"),
                higher_is_better=bool(data.get("higher_is_better", True)),
            )
        except (KeyError, TypeError) as exc:
            raise ValidationError(f"not a metric: {exc}", field="metric") from exc


@dataclass(frozen=True)
class ABVariant:
    """A variant: its name (the ref it was created with), the model version it serves, and
    the deployment it names where it was given as one."""

    name: str
    model: str
    version: str
    deployment_id: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "deployment_id": self.deployment_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ABVariant:
        return cls(
            name=str(data["name"]),
            model=str(data["model"]),
            version=str(data["version"]),
            deployment_id=data.get("deployment_id"),
        )


@dataclass(frozen=True)
class ABTest:
    """An A/B test: variants (the first is control) with their traffic weights, the salt of
    its assignment, its primary metric and guardrails, its plan and, once stopped, its
    decision."""

    id: str
    name: str
    status: str
    variants: tuple[ABVariant, ...]
    weights: tuple[float, ...]
    salt: str
    metric: ABMetric
    guardrails: tuple[ABMetric, ...]
    planned_units: int | None
    started: datetime
    description: str | None = None
    stopped: datetime | None = None
    decision: str | None = None
    reason: str | None = None
    winner: str | None = None
    created_by: str | None = None

    @property
    def control(self) -> ABVariant:
        return self.variants[0]

    @property
    def metrics(self) -> tuple[ABMetric, ...]:
        """The primary metric, then the guardrails."""
        return (self.metric, *self.guardrails)

    def variant(self, name: str) -> ABVariant:
        """The variant called ``name``."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise ValidationError(f"test {self.name!r} has no variant {name!r}", field="variant")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "variants": [variant.to_dict() for variant in self.variants],
            "weights": list(self.weights),
            "salt": self.salt,
            "metric": self.metric.to_dict(),
            "guardrails": [metric.to_dict() for metric in self.guardrails],
            "planned_units": self.planned_units,
            "started": self.started.isoformat(),
            "description": self.description,
            "stopped": None if self.stopped is None else self.stopped.isoformat(),
            "decision": self.decision,
            "reason": self.reason,
            "winner": self.winner,
            "created_by": self.created_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ABTest:
        return cls(
            id=data["id"],
            name=data["name"],
            status=data["status"],
            variants=tuple(ABVariant.from_dict(item) for item in data["variants"]),
            weights=tuple(float(weight) for weight in data["weights"]),
            salt=data["salt"],
            metric=ABMetric.from_dict(data["metric"]),
            guardrails=tuple(ABMetric.from_dict(item) for item in data["guardrails"]),
            planned_units=data.get("planned_units"),
            started=_when(data["started"]),
            description=data.get("description"),
            stopped=None if data.get("stopped") is None else _when(data["stopped"]),
            decision=data.get("decision"),
            reason=data.get("reason"),
            winner=data.get("winner"),
            created_by=data.get("created_by"),
        )


@dataclass(frozen=True)
class GuardrailResult:
    """A guardrail metric's results (``None`` until its outcomes allow an analysis)."""

    metric: ABMetric
    results: ABResults | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric.to_dict(),
            "results": None if self.results is None else self.results.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuardrailResult:
        found = data.get("results")
        return cls(
            metric=ABMetric.from_dict(data["metric"]),
            results=None if found is None else ab_results_from_dict(found),
        )


@dataclass(frozen=True)
class ABTestResults:
    """A test's results: the primary metric's (per-variant statistics, each treatment against
    control, the sample-ratio check, the power plan), the guardrails', the always-valid
    p-value of each treatment (the running minimum over every look so far), the winner if
    there is one yet, and what to do."""

    test_id: str
    name: str
    results: ABResults
    guardrails: tuple[GuardrailResult, ...]
    always_valid_p: tuple[float, ...]
    winner: str | None
    recommendation: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "test_id": self.test_id,
            "name": self.name,
            "results": self.results.to_dict(),
            "guardrails": [item.to_dict() for item in self.guardrails],
            "always_valid_p": list(self.always_valid_p),
            "winner": self.winner,
            "recommendation": self.recommendation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ABTestResults:
        return cls(
            test_id=data["test_id"],
            name=data["name"],
            results=ab_results_from_dict(data["results"]),
            guardrails=tuple(GuardrailResult.from_dict(item) for item in data["guardrails"]),
            always_valid_p=tuple(float(p) for p in data["always_valid_p"]),
            winner=data.get("winner"),
            recommendation=data["recommendation"],
        )


def _tuple(values: Any) -> tuple[Any, ...]:
    return tuple(values)


def _effect(data: Mapping[str, Any] | None) -> Effect | None:
    return None if data is None else Effect(**data)


def ab_results_from_dict(data: Mapping[str, Any]) -> ABResults:
    """The :class:`~weightbase.serving.ab_records.ABResults` its ``to_dict`` wrote."""
    try:
        comparisons = []
        for item in data["comparisons"]:
            comparisons.append(
                Comparison(
                    variant=item["variant"],
                    control=item["control"],
                    absolute=Effect(**item["absolute"]),
                    relative=_effect(item["relative"]),
                    bayesian=BayesianSummary(**item["bayesian"]),
                    sequential=SequentialSummary(**item["sequential"]),
                )
            )
        ratio = data["sample_ratio"]
        power = data.get("power")
        return ABResults(
            settings=AnalysisSettings(**data["settings"]),
            variants=tuple(VariantStats(**item) for item in data["variants"]),
            comparisons=tuple(comparisons),
            sample_ratio=SampleRatioCheck(
                observed=_tuple(ratio["observed"]),
                expected=_tuple(ratio["expected"]),
                chi_square=ratio["chi_square"],
                p_value=ratio["p_value"],
                mismatch=ratio["mismatch"],
            ),
            power=None
            if power is None
            else PowerPlan(
                planned_units=power["planned_units"],
                alpha=power["alpha"],
                power=power["power"],
                std_dev=power["std_dev"],
                mde_absolute=_tuple(power["mde_absolute"]),
                mde_relative=_tuple(power["mde_relative"]),
            ),
        )
    except (KeyError, TypeError) as exc:
        raise ValidationError(f"not A/B results: {exc}") from exc
