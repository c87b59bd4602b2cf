"""Seeded train/validation/test splits, and the preprocessing steps recorded with a version.

A split is index arrays (stored with the dataset version as tensors) plus the spec that
made them; the same spec on the same samples gives the same indices.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from weightbase.errors import MalformedFileError, ValidationError

__all__ = [
    "SPLIT_NAMES",
    "Preprocessing",
    "PreprocessingStep",
    "SplitSpec",
    "Splits",
    "split",
]

SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True, slots=True)
class SplitSpec:
    """How to split: the three fractions (summing to 1), a seed and whether to stratify."""

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    seed: int = 0
    stratify: bool = False

    def __post_init__(self) -> None:
        fractions = (self.train, self.validation, self.test)
        if any(not math.isfinite(f) or f < 0 for f in fractions):
            raise ValidationError(f"split fractions must be finite and >= 0, got {fractions}")
        if not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
            raise ValidationError(f"split fractions must sum to 1, got {sum(fractions)}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValidationError(f"the split seed must be an integer >= 0, got {self.seed!r}")

    @property
    def fractions(self) -> tuple[float, float, float]:
        return (self.train, self.validation, self.test)

    def to_dict(self) -> dict[str, object]:
        return {
            "train": self.train,
            "validation": self.validation,
            "test": self.test,
            "seed": self.seed,
            "stratify": self.stratify,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> SplitSpec:
        return cls(
            train=float(doc["train"]),
            validation=float(doc["validation"]),
            test=float(doc["test"]),
            seed=int(doc["seed"]),
            stratify=bool(doc["stratify"]),
        )


@dataclass(frozen=True, eq=False)
class Splits:
    """Sorted ``int64`` sample indices of each split, and the spec that drew them."""

    spec: SplitSpec
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def __post_init__(self) -> None:
        for name in SPLIT_NAMES:
            view = np.ascontiguousarray(getattr(self, name), dtype=np.int64).view()
            view.flags.writeable = False
            object.__setattr__(self, name, view)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(getattr(self, name))}" for name in SPLIT_NAMES)
        return f"Splits({sizes}, seed={self.spec.seed}, stratify={self.spec.stratify})"

    @property
    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SPLIT_NAMES}

    def to_arrays(self) -> dict[str, np.ndarray]:
        """``split.train``, ``split.validation``, ``split.test``: tensors for the store."""
        return {f"split.{name}": getattr(self, name) for name in SPLIT_NAMES}

    @classmethod
    def from_arrays(cls, spec: SplitSpec, arrays: Mapping[str, np.ndarray]) -> Splits:
        missing = [f"split.{n}" for n in SPLIT_NAMES if f"split.{n}" not in arrays]
        if missing:
            raise MalformedFileError(f"stored splits lack {missing}", names=missing)
        return cls(spec, *(arrays[f"split.{name}"] for name in SPLIT_NAMES))

    def to_dict(self) -> dict[str, object]:
        """The spec and sizes (JSON); the indices themselves go to the store as tensors."""
        return {"spec": self.spec.to_dict(), "sizes": self.sizes}


def split(
    sample_count: int,
    spec: SplitSpec | None = None,
    *,
    labels: Sequence[object] | np.ndarray | None = None,
) -> Splits:
    """Split ``sample_count`` samples; with ``spec.stratify``, each class is split alike.

    Counts are rounded per class by largest remainder, so every split gets its share of
    each class as closely as whole samples allow. Indices come back sorted.
    """
    spec = spec or SplitSpec()
    if sample_count < 0:
        raise ValidationError(f"sample_count must be >= 0, got {sample_count}")
    rng = np.random.default_rng(spec.seed)
    if spec.stratify:
        if labels is None:
            raise ValidationError("a stratified split needs the labels")
        keys = np.asarray([_label_key(label) for label in labels], dtype=object)
        if keys.shape != (sample_count,):
            raise ValidationError(
                f"{len(keys)} labels given for {sample_count} samples", samples=sample_count
            )
        groups = [np.flatnonzero(keys == key) for key in sorted(set(keys.tolist()))]
    else:
        groups = [np.arange(sample_count)]
    parts: list[list[np.ndarray]] = [[], [], []]
    for members in groups:
        shuffled = rng.permutation(members)
        counts = _allocate(len(shuffled), spec.fractions)
        bounds = np.cumsum([0, *counts])
        for i in range(3):
            parts[i].append(shuffled[bounds[i] : bounds[i + 1]])
    train, validation, test = (
        np.sort(np.concatenate(chunks)).astype(np.int64) if chunks else np.empty(0, np.int64)
        for chunks in parts
    )
    return Splits(spec, train, validation, test)


def _label_key(label: object) -> str:
    # Missing labels (None, NaN) form one group of their own.
    if label is None or (isinstance(label, float) and math.isnan(label)):
        return "\x00missing"
    return str(label.item() if isinstance(label, np.generic) else label)


def _allocate(total: int, fractions: tuple[float, float, float]) -> list[int]:
    """Whole counts summing to ``total``, by largest remainder (ties favour train)."""
    exact = [total * f for f in fractions]
    counts = [math.floor(e) for e in exact]
    order = sorted(range(3), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


# -- preprocessing -------------------------------------------------------------------------

StepKind = Literal["normalisation", "augmentation", "transform"]
_STEP_KINDS = ("normalisation", "augmentation", "transform")


@dataclass(frozen=True, slots=True)
class PreprocessingStep:
    """One recorded step: its kind, a name (``standardise``, ``random_crop``…) and params.

    ``params`` must be JSON: strings, numbers, booleans, ``None``, lists and string-keyed
    objects of those.
    """

    kind: StepKind
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _STEP_KINDS:
            raise ValidationError(
                f"unknown preprocessing kind {self.kind!r}; one of {', '.join(_STEP_KINDS)}"
            )
        if not isinstance(self.name, str) or not self.name:
            raise ValidationError("a preprocessing step needs a name")
        try:
            # A round trip through JSON both checks the params and detaches them from the caller.
            params = json.loads(json.dumps(dict(self.params), allow_nan=False, default=_reject))
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"params of preprocessing step {self.name!r} are not JSON: {exc}", step=self.name
            ) from exc
        object.__setattr__(self, "params", MappingProxyType(params))

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PreprocessingStep:
        return cls(kind=doc["kind"], name=str(doc["name"]), params=doc.get("params", {}))


def _reject(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


@dataclass(frozen=True, slots=True)
class Preprocessing:
    """The ordered preprocessing steps applied to a dataset version."""

    steps: tuple[PreprocessingStep, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))

    def then(self, kind: StepKind, name: str, **params: Any) -> Preprocessing:
        """A copy with one more step at the end."""
        return Preprocessing((*self.steps, PreprocessingStep(kind, name, params)))

    def to_dict(self) -> dict[str, object]:
        return {"steps": [step.to_dict() for step in self.steps]}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Preprocessing:
        return cls(tuple(PreprocessingStep.from_dict(step) for step in doc["steps"]))
