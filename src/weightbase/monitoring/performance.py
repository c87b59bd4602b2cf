"""Degradation from late labels: a served version's predictions against the labels that
arrived for them, window by window, compared with the metric registered with the version.

Classification is scored by accuracy and its drop is ``baseline - accuracy``; regression
by MAE and RMSE, and its drop is MAE's relative increase over the registered ``mae``
(else ``rmse`` over the registered ``rmse``), so one threshold (``accuracy_drop``, a
fraction) reads the same for both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from weightbase.errors import ValidationError
from weightbase.monitoring.records import PerformanceWindow, Sample

__all__ = ["KINDS", "Kind", "kind_of", "prediction_of", "score_windows"]

Kind = Literal["classification", "regression"]
KINDS = ("auto", "classification", "regression")
#: Where a prediction sits in a mapping of outputs, first found first.
#: ``data`` is an Open Inference Protocol output tensor's values.
PREDICTION_KEYS = (
    "label",
    "prediction",
    "predicted",
    "class",
    "value",
    "output",
    "outputs",
    "data",
)


def prediction_of(outputs: Any) -> Any:
    """The prediction in a request's outputs: a scalar as it is; a mapping's first
    :data:`PREDICTION_KEYS` entry; a one-item list's item; a list of ``{label, score}``
    its best-scored label; a list of numbers its arg-max (class probabilities or logits).
    ``None`` where none is found."""
    if isinstance(outputs, bool | int | float | str):
        return outputs
    if isinstance(outputs, Mapping):
        for key in PREDICTION_KEYS:
            if key in outputs:
                return prediction_of(outputs[key])
        return None
    if isinstance(outputs, list | tuple) and outputs:
        if len(outputs) == 1:
            return prediction_of(outputs[0])
        if all(isinstance(item, Mapping) and "score" in item for item in outputs):
            return prediction_of(max(outputs, key=lambda item: float(item["score"])))
        if all(isinstance(item, int | float) and not isinstance(item, bool) for item in outputs):
            return int(np.argmax(np.asarray(outputs, dtype=np.float64)))
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def kind_of(metrics: Mapping[str, float], pairs: Sequence[tuple[Any, Any]]) -> Kind:
    """Classification where the version registered ``accuracy`` (regression where ``mae`` or
    ``rmse``); else classification unless a label or prediction is a fractional number."""
    if "accuracy" in metrics:
        return "classification"
    if "mae" in metrics or "rmse" in metrics:
        return "regression"
    for predicted, label in pairs:
        for value in (predicted, label):
            if isinstance(value, float) and not value.is_integer():
                return "regression"
    return "classification"


def _same(predicted: Any, label: Any) -> bool:
    if predicted == label:
        return True
    return predicted is not None and str(predicted) == str(label)


def _baseline(kind: Kind, metrics: Mapping[str, float]) -> tuple[str, float | None]:
    if kind == "classification":
        return "accuracy", metrics.get("accuracy")
    if "mae" in metrics or "rmse" not in metrics:
        return "mae", metrics.get("mae")
    return "rmse", metrics.get("rmse")


def score_windows(
    samples: Sequence[Sample],
    *,
    kind: Kind,
    metrics: Mapping[str, float],
    window_s: float,
    threshold: float,
    min_labels: int,
) -> tuple[str, float | None, list[PerformanceWindow]]:
    """The metric scored, its registered baseline, and one window per ``window_s`` seconds
    (aligned on the epoch) that holds labeled samples, oldest first. A window is
    ``degraded`` when it has ``min_labels`` or more and its drop passes ``threshold``."""
    if not math.isfinite(window_s) or window_s <= 0:
        raise ValidationError(f"window must be positive, not {window_s!r}", field="window")
    metric, baseline = _baseline(kind, metrics)
    buckets: dict[int, list[tuple[Any, Any]]] = {}
    for sample in samples:
        if sample.label is None:
            continue
        bucket = math.floor(sample.at.timestamp() / window_s)
        buckets.setdefault(bucket, []).append((prediction_of(sample.outputs), sample.label))
    windows = []
    for bucket in sorted(buckets):
        pairs = buckets[bucket]
        start = datetime.fromtimestamp(bucket * window_s, UTC)
        end = datetime.fromtimestamp((bucket + 1) * window_s, UTC)
        if kind == "classification":
            accuracy = sum(_same(p, label) for p, label in pairs) / len(pairs)
            drop = None if baseline is None else baseline - accuracy
            window = PerformanceWindow(start, end, len(pairs), accuracy=accuracy, drop=drop)
        else:
            numbers = [(_number(p), _number(label)) for p, label in pairs]
            kept = np.asarray([(p, t) for p, t in numbers if p is not None and t is not None])
            if kept.size == 0:
                windows.append(PerformanceWindow(start, end, 0))
                continue
            errors = kept[:, 0] - kept[:, 1]
            mae = float(np.mean(np.abs(errors)))
            rmse = float(np.sqrt(np.mean(errors**2)))
            measured = mae if metric == "mae" else rmse
            drop = None if not baseline else (measured - baseline) / baseline
            window = PerformanceWindow(start, end, len(kept), mae=mae, rmse=rmse, drop=drop)
        degraded = window.count >= min_labels and drop is not None and drop > threshold
        windows.append(
            PerformanceWindow(
                window.start,
                window.end,
                window.count,
                accuracy=window.accuracy,
                mae=window.mae,
                rmse=window.rmse,
                drop=window.drop,
                degraded=degraded,
            )
        )
    return metric, baseline, windows
