"""A/B tests served: ``weightbase serve abtest:NAME`` answers requests for ``NAME`` with the
variant each unit is assigned to.

The server serves every variant's model version, and a request for the test's name goes to
the variant of its unit: the ``X-Weightbase-Unit`` header or, on the OpenAI endpoints, the
body's ``user`` field; without either, the request is its own unit (a fresh id). The answer
names the test, the variant and the unit in ``X-Weightbase-AB-Test``,
``X-Weightbase-Variant`` and ``X-Weightbase-Unit``, so a client can send the outcome back
(``POST /api/v1/ab-tests/{id}/outcomes`` with that unit id, which the catalog assigns to the
same variant).

Assignment happens here, from the test's allocation read once and refreshed in the
background every ``refresh_s`` (a reweight reaches the server within that time; a unit keeps
its variant wherever the new weights allow). A stopped test sends everyone to its winner
(else to control); a unit outside the test's coverage gets control.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from weightbase.errors import ValidationError, WeightbaseError
from weightbase.serving.ab_assign import Allocation, assign

if TYPE_CHECKING:
    from weightbase.serving.abtest_records import ABTest

__all__ = ["AB_PREFIX", "ABRoutes", "Route"]

#: How a served ref names an A/B test: ``abtest:NAME`` (or its id).
AB_PREFIX = "abtest:"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    """Where one request for a test goes: the variant's name and model version ref, and the
    unit it was assigned as."""

    test: str
    variant: str
    ref: str
    unit: str

    def headers(self) -> dict[str, str]:
        """The response headers that tell the client what answered it."""
        return {
            "X-Weightbase-AB-Test": self.test,
            "X-Weightbase-Variant": self.variant,
            "X-Weightbase-Unit": self.unit,
        }


@dataclass(slots=True)
class _Served:
    test: ABTest
    allocation: Allocation
    read_at: float
    refreshing: bool = False


class ABRoutes:
    """The A/B tests a server serves, by name, with their allocations kept fresh."""

    def __init__(self, wb: Any, refs: Sequence[str], *, refresh_s: float = 5.0) -> None:
        """``wb``: a workspace, embedded or remote (its ``abtests``)."""
        self._wb = wb
        self._refresh_s = refresh_s
        self._tests: dict[str, _Served] = {}
        for ref in refs:
            if ref.startswith(AB_PREFIX):
                name = ref.removeprefix(AB_PREFIX)
                if not name:
                    raise ValidationError(f"{ref!r} names no test: abtest:NAME", ref=ref)
                test, allocation = wb.abtests.allocation(name)  # NotFound: no such test
                self._tests[test.name] = _Served(test, allocation, time.monotonic())

    def model_refs(self, refs: Sequence[str]) -> list[str]:
        """``refs`` with each test replaced by its variants' model versions (each once)."""
        out: list[str] = []
        for ref in refs:
            if not ref.startswith(AB_PREFIX):
                out.append(ref)
        for served in self._tests.values():
            out.extend(v.ref for v in served.test.variants if v.ref not in out)
        return out

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tests)

    def serves(self, name: str) -> bool:
        """Whether ``name`` is a served test (only then does a request's unit matter)."""
        return name in self._tests

    def route(self, name: str, unit: str | None) -> Route | None:
        """Where a request for ``name`` from ``unit`` goes; ``None`` when ``name`` is no
        served test."""
        served = self._tests.get(name)
        if served is None:
            return None
        if time.monotonic() - served.read_at > self._refresh_s and not served.refreshing:
            served.refreshing = True
            threading.Thread(
                target=self._refresh, args=(name, served), name="weightbase-ab", daemon=True
            ).start()
        test = served.test
        unit = unit or uuid.uuid4().hex
        if test.status != "running":
            winner = test.winner or test.control.name
            variant = test.variant(winner)
        else:
            index = assign(served.allocation, test.salt, unit)
            variant = test.variants[index] if index >= 0 else test.control
        return Route(test.name, variant.name, variant.ref, unit)

    def _refresh(self, name: str, served: _Served) -> None:
        try:
            test, allocation = self._wb.abtests.allocation(served.test.id)
        except WeightbaseError as exc:  # kept as it was; tried again after refresh_s
            log.warning("A/B test %s could not be read again: %s", name, exc)
            served.read_at, served.refreshing = time.monotonic(), False
            return
        self._tests[name] = _Served(test, allocation, time.monotonic())
