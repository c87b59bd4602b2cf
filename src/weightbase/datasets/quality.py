"""A dataset quality score in [0, 1] and a grade A-F, made of parts that are each reported.

Each part measures one problem (its ``measure``: a fraction of bad samples, cells
or values; for class imbalance the normalised entropy, whose badness is
``1 - measure``) and turns it into a ``value`` in [0, 1] that falls linearly to 0
as the badness reaches the part's ``limit``:

===================  ======================================================  =====  ======
part                 badness                                                 limit  weight
===================  ======================================================  =====  ======
``duplicates``       (samples identical to an earlier sample) / n            0.40   0.25
``missing_values``   (missing cells) / (all cells)                           0.15   0.25
``class_imbalance``  1 - normalised entropy of the class counts, H / log(k)  2.00   0.20
``outliers``         (values with a modified z-score > 3.5) / (values)       0.40   0.15
``label_noise``      (sampled samples whose label is not the most common     0.50   0.15
                     among their 5 nearest neighbours) / (sampled)
===================  ======================================================  =====  ======

``value = max(0, 1 - badness / limit)``. A part that does not apply (no classes, no
numeric features, one class only…) has ``value=None`` and is left out. The score is
held down by the worst part, so that one serious problem shows whatever the others say:

    score = 0.75 * min(v_i) + 0.25 * sum(w_i * v_i) / sum(w_i)

and the grade is A from 0.85, B from 0.70, C from 0.55, D from 0.40, F below (each
part is graded on its value alike). See docs/datasets.md for how each part is measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from weightbase.datasets.content import DatasetContent, DatasetFormat
from weightbase.datasets.digests import sample_digests
from weightbase.datasets.stats import MAX_FEATURE_SUMMARIES, categorical_labels, target_values
from weightbase.errors import ValidationError

__all__ = [
    "DEFAULT_WEIGHTS",
    "GRADES",
    "LABEL_NOISE_NEIGHBOURS",
    "LABEL_NOISE_SAMPLE",
    "LIMITS",
    "OUTLIER_THRESHOLD",
    "WORST_PART_SHARE",
    "QualityPart",
    "QualityReport",
    "assess_quality",
    "grade_of",
]

DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "duplicates": 0.25,
        "missing_values": 0.25,
        "class_imbalance": 0.20,
        "outliers": 0.15,
        "label_noise": 0.15,
    }
)
LIMITS: Mapping[str, float] = MappingProxyType(
    {
        # The badness at which a part is worth 0. A part reads A while its badness stays
        # under 15% of its limit: 6% duplicates, 2.25% missing cells, 7.5% label noise.
        "duplicates": 0.40,
        "missing_values": 0.15,
        # Imbalance is a property of the data more than a fault: even one class in a
        # thousand (badness near 1) only halves the part.
        "class_imbalance": 2.0,
        "outliers": 0.40,
        "label_noise": 0.50,
    }
)
WORST_PART_SHARE = 0.75
"""How much of the score is the worst part's value; the rest is the weighted mean."""
GRADES: tuple[tuple[str, float], ...] = (("A", 0.85), ("B", 0.70), ("C", 0.55), ("D", 0.40))
"""Each grade and the lowest score that earns it; below the last, ``F``."""
OUTLIER_THRESHOLD = 3.5
"""Modified z-score (Iglewicz and Hoaglin) above which a value is an outlier."""
LABEL_NOISE_NEIGHBOURS = 5
LABEL_NOISE_SAMPLE = 2000
"""Label noise is estimated on a seeded random sample of at most this many samples."""
_PROJECTED_DIMENSIONS = 128  # wider samples are randomly projected before neighbour search
#: Parts whose measure is good when high (the entropy): their badness is 1 - measure.
_MEASURE_IS_GOOD = frozenset({"class_imbalance"})


def grade_of(score: float) -> str:
    """The letter for a score (or a part's value): A, B, C, D or F, by :data:`GRADES`."""
    for letter, lowest in GRADES:
        if score >= lowest:
            return letter
    return "F"


def part_value(name: str, measure: float, limit: float) -> float:
    """A part's value from its raw measure: ``max(0, 1 - badness / limit)``."""
    badness = 1.0 - measure if name in _MEASURE_IS_GOOD else measure
    return float(min(1.0, max(0.0, 1.0 - badness / limit)))


@dataclass(frozen=True, slots=True)
class QualityPart:
    """One part of the score: ``value`` in [0, 1] (``None`` if it does not apply).

    ``measure`` is the raw quantity the value comes from (a fraction, or the normalised
    entropy for class imbalance); ``limit`` the badness at which the value reaches 0;
    ``detail`` says how it was measured or why it was skipped.
    """

    name: str
    value: float | None
    weight: float
    measure: float | None
    detail: str
    limit: float | None = None

    @property
    def applicable(self) -> bool:
        return self.value is not None

    @property
    def grade(self) -> str | None:
        """The part's own letter, on the score's thresholds; ``None`` if it does not apply."""
        return None if self.value is None else grade_of(self.value)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "value": self.value,
            "grade": self.grade,
            "weight": self.weight,
            "measure": self.measure,
            "limit": self.limit,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> QualityPart:
        value, measure, limit = doc.get("value"), doc.get("measure"), doc.get("limit")
        name = str(doc["name"])
        if limit is None and name in LIMITS:
            # A record from before the limits (value = 1 - fraction): value it as now.
            limit = LIMITS[name]
            if measure is not None and value is not None:
                value = part_value(name, float(measure), limit)
        return cls(
            name=name,
            value=None if value is None else float(value),
            weight=float(doc["weight"]),
            measure=None if measure is None else float(measure),
            detail=str(doc.get("detail", "")),
            limit=None if limit is None else float(limit),
        )


@dataclass(frozen=True, slots=True)
class QualityReport:
    """The quality score, its grade and every part it was made from."""

    score: float
    parts: tuple[QualityPart, ...]

    @property
    def grade(self) -> str:
        """A (from 0.85), B (0.70), C (0.55), D (0.40) or F."""
        return grade_of(self.score)

    @property
    def worst(self) -> QualityPart | None:
        """The applicable part with the lowest value (the first such, on a tie)."""
        applicable = [p for p in self.parts if p.value is not None]
        return min(applicable, key=lambda p: p.value or 0.0) if applicable else None

    def part(self, name: str) -> QualityPart:
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(name)

    def to_dict(self) -> dict[str, object]:
        return {
            "score": self.score,
            "grade": self.grade,
            "parts": [p.to_dict() for p in self.parts],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> QualityReport:
        parts = tuple(QualityPart.from_dict(p) for p in doc["parts"])
        # A record without a grade was scored by the old weighted mean: score it as now.
        score = float(doc["score"]) if "grade" in doc else combine(parts)
        return cls(score=score, parts=parts)


def combine(parts: tuple[QualityPart, ...]) -> float:
    """The score of these parts: ``0.75 * min(v) + 0.25 * weighted mean(v)``; 1 if none apply."""
    applicable = [p for p in parts if p.value is not None]
    if not applicable:
        return 1.0
    values = [p.value or 0.0 for p in applicable]
    total = sum(p.weight for p in applicable)
    # With every weight 0 the mean is undefined: the worst part alone decides.
    mean = (
        sum(p.weight * v for p, v in zip(applicable, values, strict=True)) / total
        if total
        else min(values)
    )
    score = WORST_PART_SHARE * min(values) + (1.0 - WORST_PART_SHARE) * mean
    return float(min(1.0, max(0.0, score)))


def assess_quality(
    content: DatasetContent,
    *,
    weights: Mapping[str, float] | None = None,
    seed: int = 0,
) -> QualityReport:
    """Measure every part and combine them into a score (deterministic for a ``seed``)."""
    chosen = dict(DEFAULT_WEIGHTS)
    if weights is not None:
        unknown = sorted(set(weights) - set(DEFAULT_WEIGHTS))
        if unknown:
            raise ValidationError(f"unknown quality parts {unknown}", parts=unknown)
        chosen.update(weights)
    if any(w < 0 or not math.isfinite(w) for w in chosen.values()):
        raise ValidationError("quality weights must be finite and >= 0")
    classes = categorical_labels(content.labels())
    features = _numeric_features(content)
    measured = {
        "duplicates": _duplicates(content),
        "missing_values": _missing(content),
        "class_imbalance": _imbalance(categorical_labels(target_values(content))),
        "outliers": _outliers(content, features),
        "label_noise": _label_noise(content, classes, seed),
    }
    parts = tuple(
        QualityPart(
            name,
            None if measure is None else part_value(name, measure, LIMITS[name]),
            chosen[name],
            measure,
            detail,
            LIMITS[name],
        )
        for name, (_, measure, detail) in measured.items()
    )
    return QualityReport(score=combine(parts), parts=parts)


_Measured = tuple[float | None, float | None, str]


def _skip(reason: str) -> _Measured:
    return None, None, reason


# -- duplicates ----------------------------------------------------------------------------


def _duplicates(content: DatasetContent) -> _Measured:
    if content.format is DatasetFormat.GRAPH:
        edges = content.graph().edge_index
        if edges.shape[1] == 0:
            return _skip("the graph has no edges")
        unique = np.unique(edges.T, axis=0).shape[0]
        fraction = 1.0 - unique / edges.shape[1]
        return 1.0 - fraction, fraction, "fraction of edges that repeat an earlier edge"
    keys = sample_digests(content, labels=True)
    n = len(keys)
    fraction = 1.0 - len(set(keys)) / n
    return 1.0 - fraction, fraction, "fraction of samples identical to an earlier sample"


# -- missing values ------------------------------------------------------------------------


def _missing(content: DatasetContent) -> _Measured:
    fmt = content.format
    if fmt is DatasetFormat.TEXT:
        offsets = content.arrays["text.offsets"]
        empty = int(np.count_nonzero(np.diff(offsets) == 0))
        fraction = empty / content.sample_count
        return 1.0 - fraction, fraction, "fraction of documents that are empty"
    if fmt in (DatasetFormat.IMAGE, DatasetFormat.AUDIO):
        return _skip(f"decoded {fmt.value} files have no missing values")
    missing = cells = 0
    if fmt is DatasetFormat.TENSOR:
        arrays = [content.arrays["x"]] + ([content.arrays["y"]] if "y" in content.arrays else [])
        for array in arrays:
            cells += array.size
            missing += _nan_count(array)
        detail = "fraction of NaN entries in x and y"
    elif fmt is DatasetFormat.GRAPH:
        features = content.arrays.get("node_features")
        if features is None:
            return _skip("the graph has no node features")
        cells, missing = features.size, _nan_count(features)
        detail = "fraction of NaN node feature entries"
    else:
        for position, layout in enumerate(content.columns):
            prefix = f"column.{position}"
            cells += content.sample_count
            absent = np.zeros(content.sample_count, dtype=np.bool_)
            if f"{prefix}.mask" in content.arrays:
                absent |= content.arrays[f"{prefix}.mask"].astype(np.bool_)
            if layout.encoding == "categorical":
                absent |= content.arrays[f"{prefix}.codes"] < 0
            elif layout.encoding in ("datetime", "timedelta"):
                absent |= content.arrays[f"{prefix}.values"] == np.iinfo(np.int64).min
            elif layout.encoding == "values":
                values = content.arrays[f"{prefix}.values"]
                if values.dtype.kind in "fc":
                    absent |= np.isnan(values)
            missing += int(absent.sum())
        detail = "fraction of missing table cells (null, NaN, NaT)"
    if cells == 0:
        return _skip("no cells to check")
    fraction = missing / cells
    return 1.0 - fraction, fraction, detail


def _nan_count(array: np.ndarray) -> int:
    return int(np.count_nonzero(np.isnan(array))) if array.dtype.kind in "fc" else 0


# -- class imbalance -----------------------------------------------------------------------


def _imbalance(classes: np.ndarray | None) -> _Measured:
    if classes is None:
        return _skip("no class labels")
    _, counts = np.unique(
        np.array([c for c in classes.tolist() if c is not None]), return_counts=True
    )
    if counts.size < 2:
        return _skip("fewer than two classes")
    shares = counts / counts.sum()
    entropy = float(-(shares * np.log(shares)).sum() / math.log(counts.size))
    entropy = min(1.0, max(0.0, entropy))
    return entropy, entropy, f"normalised entropy of {counts.size} class counts"


# -- outliers ------------------------------------------------------------------------------


def _numeric_features(content: DatasetContent) -> tuple[np.ndarray, str] | None:
    """A float matrix ``[n, F]`` describing each sample (NaN = missing), and what it is."""
    fmt = content.format
    if fmt is DatasetFormat.TENSOR:
        return _flat_features(content.arrays["x"], "x")
    if fmt is DatasetFormat.GRAPH:
        graph = content.graph()
        degree = np.bincount(graph.edge_index.reshape(-1), minlength=graph.num_nodes)
        columns = [degree.astype(np.float64)[:, None]]
        if graph.node_features is not None:
            flat = _flat_features(graph.node_features, "node features")
            if flat is not None:
                columns.insert(0, flat[0])
        return np.hstack(columns), "node features and degree"
    if fmt is DatasetFormat.TABLE:
        columns = []
        for position, layout in enumerate(content.columns):
            if layout.name == content.target or layout.encoding not in ("values", "masked"):
                continue
            values = content.arrays[f"column.{position}.values"]
            if values.dtype.kind not in "biuf":
                continue
            column = values.astype(np.float64)
            mask = content.arrays.get(f"column.{position}.mask")
            if mask is not None:
                column = np.where(mask, np.nan, column)
            columns.append(column)
        if not columns:
            return None
        return np.column_stack(columns), "numeric feature columns"
    if fmt is DatasetFormat.IMAGE:
        images = content.images()
        shapes = [(im.shape[0], im.shape[1], float(im.mean()), float(im.std())) for im in images]
        return np.array(shapes, dtype=np.float64), "image height, width, mean and std intensity"
    if fmt is DatasetFormat.TEXT:
        lengths = np.diff(content.arrays["text.offsets"]).astype(np.float64)
        return lengths[:, None], "document length in bytes"
    rows: list[tuple[float, ...]] = []
    for clip in content.audio():
        scale = float(1 << (8 * clip.sample_width - 1))
        samples = clip.samples.astype(np.float64)
        if clip.sample_width == 1:
            samples -= 128.0  # 8-bit WAV is unsigned
        rms = float(np.sqrt(np.mean(np.square(samples / scale)))) if samples.size else 0.0
        rows.append((clip.duration, rms))
    return np.array(rows, dtype=np.float64), "clip duration and RMS level"


def _flat_features(array: np.ndarray, what: str) -> tuple[np.ndarray, str] | None:
    if array.dtype.kind not in "biuf":
        return None
    flat = array.reshape(array.shape[0], -1).astype(np.float64)
    if flat.shape[1] <= MAX_FEATURE_SUMMARIES:
        return flat, what
    # Per-value outliers mean little for wide samples (pixels): describe each sample instead.
    with np.errstate(all="ignore"):
        return np.column_stack([np.nanmean(flat, axis=1), np.nanstd(flat, axis=1)]), (
            f"mean and std of each sample of {what}"
        )


def _outliers(content: DatasetContent, features: tuple[np.ndarray, str] | None) -> _Measured:
    if features is None:
        return _skip("no numeric features")
    matrix, what = features
    if matrix.shape[0] < 3:
        return _skip("fewer than three samples")
    outlying = assessed = 0
    for column in matrix.T:
        present = column[~np.isnan(column)]
        finite = present[np.isfinite(present)]
        if finite.size < 3:
            continue
        median = float(np.median(finite))
        mad = float(np.median(np.abs(finite - median)))
        if mad == 0:
            # Over half the values are equal (a constant or sparse column, like the border
            # pixels of a digit): every other value would count as an outlier, so skip it.
            continue
        scores = np.abs(present - median) / (1.4826 * mad)  # infinities are outliers
        outlying += int(np.count_nonzero(scores > OUTLIER_THRESHOLD))
        assessed += present.size
    if assessed == 0:
        return _skip(f"no spread in {what} to measure outliers against")
    fraction = outlying / assessed
    detail = f"fraction of values with a |modified z-score| > {OUTLIER_THRESHOLD} in {what}"
    return 1.0 - fraction, fraction, detail


# -- label noise ---------------------------------------------------------------------------


def _label_noise(content: DatasetContent, classes: np.ndarray | None, seed: int) -> _Measured:
    if classes is None:
        return _skip("no class labels")
    matrix = _noise_features(content)
    if matrix is None:
        return _skip(f"no cheap numeric representation of {content.format.value} samples")
    known = np.array([c is not None for c in classes.tolist()], dtype=np.bool_)
    rows = np.flatnonzero(known)
    if rows.size <= LABEL_NOISE_NEIGHBOURS:
        return _skip(f"{LABEL_NOISE_NEIGHBOURS + 1} labelled samples are needed")
    rng = np.random.default_rng(seed)
    if rows.size > LABEL_NOISE_SAMPLE:
        rows = np.sort(rng.choice(rows, size=LABEL_NOISE_SAMPLE, replace=False))
    points = _standardise(matrix[rows])
    if points.shape[1] > _PROJECTED_DIMENSIONS:
        projection = rng.standard_normal((points.shape[1], _PROJECTED_DIMENSIONS))
        points = points @ (projection / math.sqrt(_PROJECTED_DIMENSIONS))
    _, codes = np.unique(classes[rows].astype(str), return_inverse=True)
    neighbours = _nearest(points, LABEL_NOISE_NEIGHBOURS)
    votes = codes[neighbours]  # [m, k]
    own = (votes == codes[:, None]).sum(axis=1)
    best = np.array([np.bincount(v).max() for v in votes])
    disagree = float(np.mean(own < best))
    detail = (
        f"fraction of {rows.size} sampled samples whose label is not the most common among "
        f"their {LABEL_NOISE_NEIGHBOURS} nearest neighbours (standardised features)"
    )
    return 1.0 - disagree, disagree, detail


def _noise_features(content: DatasetContent) -> np.ndarray | None:
    fmt = content.format
    if fmt is DatasetFormat.TENSOR:
        x = content.arrays["x"]
        return x.reshape(x.shape[0], -1).astype(np.float64) if x.dtype.kind in "biuf" else None
    if fmt is DatasetFormat.GRAPH:
        features = content.arrays.get("node_features")
        if features is None or features.dtype.kind not in "biuf":
            return None
        return features.reshape(features.shape[0], -1).astype(np.float64)
    if fmt is DatasetFormat.TABLE:
        described = _numeric_features(content)
        return described[0] if described is not None else None
    if fmt is DatasetFormat.IMAGE and "images" in content.arrays:
        images = content.arrays["images"]
        return images.reshape(images.shape[0], -1).astype(np.float64)
    return None


def _standardise(matrix: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        finite = np.where(np.isfinite(matrix), matrix, np.nan)
        mean = np.nan_to_num(np.nanmean(finite, axis=0))
        std = np.nan_to_num(np.nanstd(finite, axis=0))
    std[std == 0] = 1.0
    standardised: np.ndarray = np.nan_to_num((finite - mean) / std)
    return standardised  # missing values sit at the mean


def _nearest(points: np.ndarray, k: int) -> np.ndarray:
    """Indices of each point's ``k`` nearest other points (Euclidean, ties by index)."""
    squared = np.einsum("ij,ij->i", points, points)
    distances = squared[:, None] + squared[None, :] - 2.0 * (points @ points.T)
    np.fill_diagonal(distances, np.inf)
    return np.argsort(distances, axis=1, kind="stable")[:, :k]
