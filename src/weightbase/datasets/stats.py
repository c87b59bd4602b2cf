"""Statistics computed when a dataset version is registered, as JSON-able frozen records.

Sample count, input and output shapes, the label distribution and one summary per feature
(count, missing, unique, and mean/std/min/max where the feature is numeric).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from weightbase.datasets.content import DatasetContent, DatasetFormat
from weightbase.datasets.encoding import ColumnLayout, string_views

__all__ = [
    "MAX_CLASSES",
    "MAX_FEATURE_SUMMARIES",
    "DatasetStatistics",
    "FeatureSummary",
    "categorical_labels",
    "compute_statistics",
    "target_values",
]

MAX_FEATURE_SUMMARIES = 256
"""A tensor with more values per sample than this is summarised as a whole, not per value."""

MAX_CLASSES = 1000
"""A target with more distinct values than this is treated as continuous, not as classes."""

FeatureKind = Literal["numeric", "boolean", "categorical", "string", "datetime"]
_FEATURE_KINDS = ("numeric", "boolean", "categorical", "string", "datetime")


@dataclass(frozen=True, slots=True)
class FeatureSummary:
    """One feature: present and missing values, distinct values, and numeric moments.

    ``mean``/``std``/``minimum``/``maximum`` cover the finite values of numeric and boolean
    features (infinities are counted as present but left out); they are ``None`` otherwise.
    ``unique`` is ``None`` where counting distinct values would cost too much (pixels).
    """

    name: str
    kind: FeatureKind
    dtype: str
    count: int
    missing: int
    unique: int | None = None
    mean: float | None = None
    std: float | None = None
    minimum: float | None = None
    maximum: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "count": self.count,
            "missing": self.missing,
            "unique": self.unique,
            "mean": self.mean,
            "std": self.std,
            "minimum": self.minimum,
            "maximum": self.maximum,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> FeatureSummary:
        kind = doc["kind"]
        if kind not in _FEATURE_KINDS:
            raise ValueError(f"unknown feature kind {kind!r}")
        return cls(
            name=str(doc["name"]),
            kind=kind,
            dtype=str(doc["dtype"]),
            count=int(doc["count"]),
            missing=int(doc["missing"]),
            unique=_opt_int(doc.get("unique")),
            mean=_opt_float(doc.get("mean")),
            std=_opt_float(doc.get("std")),
            minimum=_opt_float(doc.get("minimum")),
            maximum=_opt_float(doc.get("maximum")),
        )


@dataclass(frozen=True, slots=True)
class DatasetStatistics:
    """What a dataset version holds, summarised.

    ``input_shape`` is one sample's shape (``None`` where samples differ, as for text);
    ``output_shape`` the target's per-sample shape (``None`` without a target);
    ``label_distribution`` counts each class (``None`` for a continuous or absent target).
    """

    sample_count: int
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None
    label_distribution: Mapping[str, int] | None
    features: tuple[FeatureSummary, ...]
    target: FeatureSummary | None = None
    edge_count: int | None = None
    extra: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.label_distribution is not None:
            object.__setattr__(
                self, "label_distribution", MappingProxyType(dict(self.label_distribution))
            )
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))
        object.__setattr__(self, "features", tuple(self.features))

    def feature(self, name: str) -> FeatureSummary:
        """The summary of the feature called ``name``."""
        for summary in self.features:
            if summary.name == name:
                return summary
        raise KeyError(name)

    def to_dict(self) -> dict[str, object]:
        return {
            "sample_count": self.sample_count,
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "label_distribution": (
                dict(self.label_distribution) if self.label_distribution is not None else None
            ),
            "features": [f.to_dict() for f in self.features],
            "target": self.target.to_dict() if self.target is not None else None,
            "edge_count": self.edge_count,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DatasetStatistics:
        distribution = doc.get("label_distribution")
        target = doc.get("target")
        return cls(
            sample_count=int(doc["sample_count"]),
            input_shape=_opt_shape(doc.get("input_shape")),
            output_shape=_opt_shape(doc.get("output_shape")),
            label_distribution=(
                {str(k): int(v) for k, v in distribution.items()}
                if distribution is not None
                else None
            ),
            features=tuple(FeatureSummary.from_dict(f) for f in doc["features"]),
            target=FeatureSummary.from_dict(target) if target is not None else None,
            edge_count=_opt_int(doc.get("edge_count")),
            extra={str(k): float(v) for k, v in doc.get("extra", {}).items()},
        )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_shape(value: Any) -> tuple[int, ...] | None:
    return None if value is None else tuple(int(d) for d in value)


# -- summaries -----------------------------------------------------------------------------


def numeric_summary(
    name: str,
    values: np.ndarray,
    *,
    missing: np.ndarray | None = None,
    dtype: str | None = None,
    count_unique: bool = True,
) -> FeatureSummary:
    """Summary of numbers (or booleans); ``missing`` marks absent entries besides NaN."""
    flat = np.asarray(values).reshape(-1)
    kind: FeatureKind = "boolean" if flat.dtype.kind == "b" else "numeric"
    if flat.dtype.kind == "c":
        absent = np.isnan(flat)
        numbers = np.empty(0)
    else:
        numbers = flat.astype(np.float64)
        absent = np.isnan(numbers)
    if missing is not None:
        absent = absent | np.asarray(missing, dtype=np.bool_).reshape(-1)
    present = flat[~absent]
    unique = int(np.unique(present).size) if count_unique else None
    finite = numbers[~absent & np.isfinite(numbers)] if numbers.size else numbers
    moments: dict[str, float | None] = dict.fromkeys(("mean", "std", "minimum", "maximum"))
    if finite.size:
        moments = {
            "mean": float(finite.mean()),
            "std": float(finite.std()),
            "minimum": float(finite.min()),
            "maximum": float(finite.max()),
        }
    return FeatureSummary(
        name=name,
        kind=kind,
        dtype=dtype or str(flat.dtype),
        count=int(flat.size - int(absent.sum())),
        missing=int(absent.sum()),
        unique=unique,
        **moments,
    )


def _discrete_summary(
    name: str, kind: FeatureKind, dtype: str, items: Sequence[object], missing: np.ndarray
) -> FeatureSummary:
    present = [item for item, absent in zip(items, missing.tolist(), strict=True) if not absent]
    return FeatureSummary(
        name=name,
        kind=kind,
        dtype=dtype,
        count=len(present),
        missing=int(missing.sum()),
        unique=len(set(present)),
    )


def categorical_labels(labels: np.ndarray | None) -> np.ndarray | None:
    """The labels as class names (an object array, ``None`` where missing), if they are classes.

    Labels are classes when 1-D and not floating point (integers, booleans, strings), and
    hold at most :data:`MAX_CLASSES` distinct values; otherwise this returns ``None``.
    """
    if labels is None:
        return None
    array = np.asarray(labels)
    if array.ndim != 1 or array.dtype.kind in "fc" or array.dtype.kind not in "biuUSO":
        return None
    items = array.tolist()
    if array.dtype.kind == "O":
        items = [None if _is_missing(item) else item for item in items]
    names = [None if item is None else str(item) for item in items]
    if len({n for n in names if n is not None}) > MAX_CLASSES:
        return None
    out = np.empty(len(names), dtype=object)
    out[:] = names
    return out


def _is_missing(item: object) -> bool:
    if item is None:
        return True
    try:
        return bool(item != item)  # noqa: PLR0124  NaN and NaT differ from themselves
    except TypeError:
        return True  # pd.NA refuses to be a bool


def label_distribution(classes: np.ndarray) -> dict[str, int]:
    """Count of each class (missing labels left out), in sorted class order."""
    counts: dict[str, int] = {}
    for name in classes.tolist():
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    return {name: counts[name] for name in sorted(counts, key=_natural_key)}


def _natural_key(name: str) -> tuple[int, float, str]:
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


# -- per format ----------------------------------------------------------------------------


def target_values(content: DatasetContent) -> np.ndarray | None:
    """The target per sample, or per edge for a graph labelled only on its edges."""
    labels = content.labels()
    if labels is None and content.format is DatasetFormat.GRAPH:
        return content.arrays.get("edge_labels")
    return labels


def compute_statistics(content: DatasetContent) -> DatasetStatistics:
    """Statistics of ``content``, computed in one pass over its arrays."""
    labels = target_values(content)
    classes = categorical_labels(labels)
    distribution = label_distribution(classes) if classes is not None else None
    fmt = content.format
    edge_count = None
    extra: dict[str, float] = {}
    if fmt is DatasetFormat.TENSOR:
        x, _ = content.to_numpy()
        input_shape: tuple[int, ...] | None = tuple(x.shape[1:])
        features = _array_features(x, content.features, "x")
    elif fmt is DatasetFormat.TABLE:
        input_shape = (len(content.features),)
        features, target_summary = _table_features(content)
    elif fmt is DatasetFormat.IMAGE:
        input_shape, features = _image_features(content)
    elif fmt is DatasetFormat.TEXT:
        input_shape, features = None, _text_features(content)
    elif fmt is DatasetFormat.AUDIO:
        input_shape, features = None, _audio_features(content)
    else:
        graph = content.graph()
        edge_count = graph.num_edges
        extra["mean_degree"] = 2.0 * edge_count / graph.num_nodes
        extra["self_loops"] = float(np.count_nonzero(graph.edge_index[0] == graph.edge_index[1]))
        input_shape = None
        features = []
        if graph.node_features is not None:
            input_shape = tuple(graph.node_features.shape[1:])
            features = _array_features(graph.node_features, content.features, "node_features")
        degree = np.bincount(graph.edge_index.reshape(-1), minlength=graph.num_nodes)
        features.append(numeric_summary("degree", degree))

    output_shape: tuple[int, ...] | None = None
    if fmt is not DatasetFormat.TABLE:
        target_summary = None
        if labels is not None:
            output_shape = tuple(np.asarray(labels).shape[1:])
            target_summary = _target_summary(content.target or "target", labels, classes)
    elif content.target is not None:
        output_shape = ()
    return DatasetStatistics(
        sample_count=content.sample_count,
        input_shape=input_shape,
        output_shape=output_shape,
        label_distribution=distribution,
        features=tuple(features),
        target=target_summary,
        edge_count=edge_count,
        extra=extra,
    )


def _target_summary(name: str, labels: np.ndarray, classes: np.ndarray | None) -> FeatureSummary:
    if classes is not None and labels.dtype.kind in "OUS":
        missing = np.array([c is None for c in classes.tolist()], dtype=np.bool_)
        return _discrete_summary(name, "categorical", str(labels.dtype), classes.tolist(), missing)
    summary = numeric_summary(name, labels)
    if classes is not None and summary.kind == "numeric":
        return FeatureSummary(**{**summary.to_dict(), "kind": "categorical"})  # type: ignore[arg-type]
    return summary


def _array_features(array: np.ndarray, names: Sequence[str], label: str) -> list[FeatureSummary]:
    if array.ndim == 2 and array.shape[1] <= MAX_FEATURE_SUMMARIES:
        columns = list(names) or [f"{label}[{j}]" for j in range(array.shape[1])]
        return [numeric_summary(columns[j], array[:, j]) for j in range(array.shape[1])]
    return [numeric_summary(label, array, count_unique=array.ndim == 1)]


def _table_features(content: DatasetContent) -> tuple[list[FeatureSummary], FeatureSummary | None]:
    # Read straight from the column arrays: statistics need no pandas.
    summaries = []
    target = None
    for position, layout in enumerate(content.columns):
        summary = _column_summary(content.arrays, f"column.{position}", layout)
        if layout.name == content.target:
            target = summary
        else:
            summaries.append(summary)
    return summaries, target


def _column_summary(
    arrays: Mapping[str, np.ndarray], prefix: str, layout: ColumnLayout
) -> FeatureSummary:
    name, dtype = layout.name, layout.dtype
    if layout.encoding in ("values", "masked"):
        values = arrays[f"{prefix}.values"]
        return numeric_summary(name, values, missing=arrays.get(f"{prefix}.mask"), dtype=dtype)
    if layout.encoding in ("datetime", "timedelta"):
        ticks = arrays[f"{prefix}.values"]
        missing = ticks == np.iinfo(np.int64).min  # NaT
        return _discrete_summary(name, "datetime", dtype, ticks.tolist(), missing)
    if layout.encoding == "categorical":
        codes = arrays[f"{prefix}.codes"]
        return _discrete_summary(name, "categorical", dtype, codes.tolist(), codes < 0)
    raw = string_views(arrays[f"{prefix}.bytes"], arrays[f"{prefix}.offsets"])
    mask = arrays.get(f"{prefix}.mask")
    missing = np.zeros(len(raw), dtype=np.bool_) if mask is None else mask.astype(np.bool_)
    return _discrete_summary(name, "string", dtype, raw, missing)


def _image_features(content: DatasetContent) -> tuple[tuple[int, ...] | None, list[FeatureSummary]]:
    images = content.images()
    shapes = np.array([(im.shape[0], im.shape[1], _channels(im)) for im in images], dtype=np.int64)
    summaries = [
        numeric_summary("height", shapes[:, 0]),
        numeric_summary("width", shapes[:, 1]),
        numeric_summary("channels", shapes[:, 2]),
    ]
    stacked = content.arrays.get("images")
    for channel in range(int(shapes[:, 2].max())):
        if stacked is not None:
            pixels = stacked if stacked.ndim == 3 else stacked[..., channel]
        else:
            pixels = np.concatenate(
                [_channel(im, channel).reshape(-1) for im in images if _channels(im) > channel]
            )
        summaries.append(numeric_summary(f"channel.{channel}", pixels, count_unique=False))
    input_shape = tuple(stacked.shape[1:]) if stacked is not None else None
    return input_shape, summaries


def _channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else int(image.shape[2])


def _channel(image: np.ndarray, channel: int) -> np.ndarray:
    return image if image.ndim == 2 else image[..., channel]


def _text_features(content: DatasetContent) -> list[FeatureSummary]:
    texts = content.texts()
    characters = np.array([len(t) for t in texts], dtype=np.int64)
    words = np.array([len(t.split()) for t in texts], dtype=np.int64)
    raw = string_views(content.arrays["text.bytes"], content.arrays["text.offsets"])
    return [
        numeric_summary("characters", characters),
        numeric_summary("words", words),
        _discrete_summary("text", "string", "utf-8", raw, characters == 0),
    ]


def _audio_features(content: DatasetContent) -> list[FeatureSummary]:
    clips = content.audio()
    return [
        numeric_summary("duration", np.array([c.duration for c in clips])),
        numeric_summary("sample_rate", np.array([c.sample_rate for c in clips])),
        numeric_summary("channels", np.array([c.channels for c in clips])),
        numeric_summary("sample_width", np.array([c.sample_width for c in clips])),
    ]
