"""``wb.abtests`` of a remote workspace: A/B tests on a weightbase server.

Every public method of :class:`~weightbase.serving.abtests.ABTests` is overridden (a test
checks that none is inherited) and answers from ``/api/v1/ab-tests``.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from weightbase.errors import ValidationError
from weightbase.serving.ab_assign import Allocation
from weightbase.serving.abtest_records import ABTest, ABTestResults
from weightbase.serving.abtest_rows import MetricLike, Outcome, metric_of
from weightbase.serving.abtests import ABTests

if TYPE_CHECKING:
    from weightbase.remote.http import Connection

__all__ = ["RemoteABTests"]

_AB = "/api/v1/ab-tests"


def _outcome(outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, Mapping):
        return dict(outcome)
    if not isinstance(outcome, tuple | list) or len(outcome) != 3:
        raise ValidationError(
            f"an outcome is (unit id or variant, metric, value), not {outcome!r}",
            field="outcomes",
        )
    return {"key": str(outcome[0]), "metric": outcome[1], "value": outcome[2]}


class RemoteABTests(ABTests):
    """A/B tests kept by the server: the same records, over HTTP."""

    def __init__(self, connection: Connection) -> None:  # no catalog: the server has it
        self._http = connection

    def _path(self, test: str, tail: str = "") -> str:
        if not isinstance(test, str) or not test:
            raise ValidationError(f"a test is named by its id or name, not {test!r}")
        return f"{_AB}/{quote(test, safe='')}{tail}"

    def create(
        self,
        name: str,
        *,
        variants: Sequence[str],
        weights: Sequence[float] | None = None,
        metric: str = "conversion",
        kind: str = "binary",
        higher_is_better: bool = True,
        guardrails: Sequence[MetricLike] = (),
        planned_units: int | None = None,
        salt: str | None = None,
        description: str | None = None,
    ) -> ABTest:
        body = {
            "name": name,
            "variants": list(variants),
            "weights": None if weights is None else list(weights),
            "metric": metric,
            "kind": kind,
            "higher_is_better": higher_is_better,
            "guardrails": [metric_of(item).to_dict() for item in guardrails],
            "planned_units": planned_units,
            "salt": salt,
            "description": description,
        }
        return ABTest.from_dict(self._http.post(_AB, body))

    def record(self, test: str, outcomes: Sequence[Outcome]) -> int:
        if isinstance(outcomes, str | bytes | Mapping):
            raise ValidationError("outcomes are a list", field="outcomes")
        body = {"outcomes": [_outcome(item) for item in outcomes]}
        return int(self._http.post(self._path(test, "/outcomes"), body)["recorded"])

    def reweight(self, test: str, weights: Sequence[float], *, reason: str | None = None) -> ABTest:
        body = {"weights": list(weights), "reason": reason}
        return ABTest.from_dict(self._http.post(self._path(test, "/weights"), body))

    def stop(
        self,
        test: str,
        *,
        decision: str,
        reason: str | None = None,
        winner: str | None = None,
    ) -> ABTest:
        body = {"decision": decision, "reason": reason, "winner": winner}
        return ABTest.from_dict(self._http.post(self._path(test, "/stop"), body))

    def promote(
        self, test: str, variant: str | None = None, *, reason: str | None = None
    ) -> ABTest:
        body = {"variant": variant, "reason": reason}
        return ABTest.from_dict(self._http.post(self._path(test, "/promote"), body))

    def get(self, test: str) -> ABTest:
        return ABTest.from_dict(self._http.get(self._path(test)))

    def list(self, *, status: str | None = None) -> builtins.list[ABTest]:
        found = self._http.get(_AB, status=status)
        return [ABTest.from_dict(item) for item in found["items"]]

    def allocation(self, test: str) -> tuple[ABTest, Allocation]:
        found = self._http.get(self._path(test, "/allocation"))
        return ABTest.from_dict(found["test"]), Allocation.from_dict(found["allocation"])

    def assign(self, test: str, unit_id: str) -> str:
        found = self._http.post(self._path(test, "/assign"), {"unit_id": str(unit_id)})
        return str(found["variant"])

    def results(self, test: str) -> ABTestResults:
        return ABTestResults.from_dict(self._http.get(self._path(test, "/results")))
