"""Evidently as the anchor of weightbase's drift figures: imported offline, run the same way.

Evidently 0.7.23 imports ``pandas.core.dtypes.common.infer_dtype_from_object``, which
pandas 3 removed; only its data-integrity *test* classes call it, never the drift
code. :func:`load` supplies a stand-in that raises if ever called, turns Evidently's
telemetry off (``DO_NOT_TRACK``) and keeps its import-time deprecation warnings out of
test runs where warnings are errors.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

__all__ = ["PresetColumn", "load", "preset_drift", "stattest"]

#: Evidently's display names of its statistics → weightbase's method names.
METHOD_NAMES = {
    "K-S p_value": "ks",
    "Wasserstein distance (normed)": "wasserstein",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
}
_DISTANCES = {"wasserstein", "jensenshannon", "psi"}


def _removed_in_pandas_3(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("infer_dtype_from_object is gone from pandas 3")


def load() -> None:
    """Import Evidently with telemetry off; idempotent."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    import pandas.core.dtypes.common as dtypes_common

    if not hasattr(dtypes_common, "infer_dtype_from_object"):
        dtypes_common.infer_dtype_from_object = _removed_in_pandas_3  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import evidently
        import evidently.legacy.calculations.stattests
        import evidently.presets  # noqa: F401


def stattest(name: str) -> Any:
    """Evidently's registered legacy stattest called ``name`` (``ks``, ``psi``…)."""
    load()
    from evidently.legacy.calculations.stattests.registry import _registered_stat_tests

    tests = _registered_stat_tests[name]
    return next(iter(tests.values()))


@dataclass(frozen=True)
class PresetColumn:
    """One column of Evidently's ``DataDriftPreset``: its method, score and verdict."""

    method: str
    score: float
    threshold: float

    @property
    def drifted(self) -> bool:
        if self.method in _DISTANCES:
            return self.score >= self.threshold
        if self.method == "ks":
            return self.score <= self.threshold
        return self.score < self.threshold


def preset_drift(
    reference: Any, current: Any, **options: Any
) -> tuple[dict[str, PresetColumn], float]:
    """Evidently's ``Report([DataDriftPreset()]).run`` on the frames: per column, and the share."""
    load()
    from evidently import Report
    from evidently.presets import DataDriftPreset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset(**options)]).run(
            current_data=current, reference_data=reference
        )
    columns: dict[str, PresetColumn] = {}
    share = float("nan")
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith(":ValueDrift"):
            columns[config["column"]] = PresetColumn(
                METHOD_NAMES[config["method"]], float(metric["value"]), float(config["threshold"])
            )
    return columns, share
