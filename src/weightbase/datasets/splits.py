"""Seeded train/validation/test splits, and the preprocessing steps recorded with a version.

A split is index arrays (stored with the dataset version as tensors) plus the spec that
made them; the same spec on the same samples gives the same indices. Samples given one
group (copies of one sample: equal content digests) always land in one split, so a test
sample is never also trained on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping, Sequence
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
    """How to split: the three fractions (summing to 1), a seed and whether to stratify.

    ``group_duplicates`` keeps copies of one sample (equal inputs) in one split;
    ``near_duplicate_decimals`` widens "copy" to samples equal once numbers are
    rounded to that many decimals and text normalised (see
    :func:`weightbase.datasets.digests.sample_digests`).
    """

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    seed: int = 0
    stratify: bool = False
    group_duplicates: bool = True
    near_duplicate_decimals: int | None = None

    def __post_init__(self) -> None:
        fractions = (self.train, self.validation, self.test)
        if any(not math.isfinite(f) or f < 0 for f in fractions):
            raise ValidationError(f"split fractions must be finite and >= 0, got {fractions}")
        if not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
            raise ValidationError(f"split fractions must sum to 1, got {sum(fractions)}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValidationError(f"the split seed must be an integer >= 0, got {self.seed!r}")
        decimals = self.near_duplicate_decimals
        if decimals is not None and (
            isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0
        ):
            raise ValidationError(
                f"near_duplicate_decimals must be an integer >= 0 or None, got {decimals!r}"
            )
        if decimals is not None and not self.group_duplicates:
            raise ValidationError("near_duplicate_decimals needs group_duplicates=True")

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
            "group_duplicates": self.group_duplicates,
            "near_duplicate_decimals": self.near_duplicate_decimals,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> SplitSpec:
        decimals = doc.get("near_duplicate_decimals")
        return cls(
            train=float(doc["train"]),
            validation=float(doc["validation"]),
            test=float(doc["test"]),
            seed=int(doc["seed"]),
            stratify=bool(doc["stratify"]),
            # A spec recorded before duplicates were grouped says so by lacking the key.
            group_duplicates=bool(doc.get("group_duplicates", False)),
            near_duplicate_decimals=None if decimals is None else int(decimals),
        )


@dataclass(frozen=True, eq=False)
class Splits:
    """Sorted ``int64`` sample indices of each split, and the spec that drew them.

    ``duplicate_groups`` is how many groups of two or more copies of one sample
    were kept together in one split (``None`` where samples were not grouped, or a
    split recorded before grouping).
    """

    spec: SplitSpec
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    duplicate_groups: int | None = None

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
    def from_arrays(
        cls,
        spec: SplitSpec,
        arrays: Mapping[str, np.ndarray],
        *,
        duplicate_groups: int | None = None,
    ) -> Splits:
        missing = [f"split.{n}" for n in SPLIT_NAMES if f"split.{n}" not in arrays]
        if missing:
            raise MalformedFileError(f"stored splits lack {missing}", names=missing)
        train, validation, test = (arrays[f"split.{name}"] for name in SPLIT_NAMES)
        return cls(spec, train, validation, test, duplicate_groups=duplicate_groups)

    def to_dict(self) -> dict[str, object]:
        """The spec, sizes and duplicate groups (JSON); the indices go to the store as tensors."""
        return {
            "spec": self.spec.to_dict(),
            "sizes": self.sizes,
            "duplicate_groups": self.duplicate_groups,
        }


def split(
    sample_count: int,
    spec: SplitSpec | None = None,
    *,
    labels: Sequence[object] | np.ndarray | None = None,
    groups: Sequence[Hashable] | np.ndarray | None = None,
) -> Splits:
    """Split ``sample_count`` samples; with ``spec.stratify``, each class is split alike.

    ``groups`` gives each sample a key (such as its content digest, from
    :func:`weightbase.datasets.digests.sample_digests`); samples sharing a key go
    to one split together, the way scikit-learn's ``GroupShuffleSplit`` keeps
    groups whole. A group is stratified by its first sample's label.

    The groups of each class are shuffled with a NumPy ``Generator`` seeded with
    ``spec.seed`` and laid end to end; the cut points are each split's share of
    the class's samples, rounded by largest remainder, and a group goes to the
    split its middle falls in. Without groups (or with no group larger than one
    sample) this cuts between single samples, so every split gets its share of
    each class as closely as whole samples allow. Indices come back sorted.
    """
    spec = spec or SplitSpec()
    if sample_count < 0:
        raise ValidationError(f"sample_count must be >= 0, got {sample_count}")
    rng = np.random.default_rng(spec.seed)
    members = _groups(sample_count, groups)
    if spec.stratify:
        if labels is None:
            raise ValidationError("a stratified split needs the labels")
        keys = [_label_key(label) for label in labels]
        if len(keys) != sample_count:
            raise ValidationError(
                f"{len(keys)} labels given for {sample_count} samples", samples=sample_count
            )
        strata: dict[str, list[np.ndarray]] = {}
        for group in members:
            strata.setdefault(keys[int(group[0])], []).append(group)
        classes = [strata[key] for key in sorted(strata)]
    else:
        classes = [members]
    parts: list[list[np.ndarray]] = [[], [], []]
    for class_groups in classes:
        for i, chosen in enumerate(_cut(class_groups, spec.fractions, rng)):
            parts[i].extend(chosen)
    train, validation, test = (
        np.sort(np.concatenate(chunks)).astype(np.int64) if chunks else np.empty(0, np.int64)
        for chunks in parts
    )
    # Without groups nothing was kept together: say so rather than claim none were found.
    together = None if groups is None else sum(1 for group in members if len(group) > 1)
    return Splits(spec, train, validation, test, duplicate_groups=together)


def _groups(sample_count: int, groups: Sequence[Hashable] | np.ndarray | None) -> list[np.ndarray]:
    """The samples of each group, groups in order of their first sample."""
    if groups is None:
        return [np.array([i], dtype=np.int64) for i in range(sample_count)]
    keys = groups.tolist() if isinstance(groups, np.ndarray) else list(groups)
    if len(keys) != sample_count:
        raise ValidationError(
            f"{len(keys)} group keys given for {sample_count} samples", samples=sample_count
        )
    found: dict[Hashable, list[int]] = {}
    for index, key in enumerate(keys):
        found.setdefault(key, []).append(index)
    return [np.array(indices, dtype=np.int64) for indices in found.values()]


def _cut(
    groups: list[np.ndarray], fractions: tuple[float, float, float], rng: np.random.Generator
) -> list[list[np.ndarray]]:
    """Shuffle ``groups`` and deal them to three splits by where each one's middle falls."""
    order = rng.permutation(len(groups))
    sizes = np.array([len(groups[i]) for i in order], dtype=np.int64)
    bounds = np.cumsum([0, *_allocate(int(sizes.sum()), fractions)])
    # Twice the middle, so single samples (k, k + 1) compare in whole numbers: 2k + 1.
    middles = 2 * (np.cumsum(sizes) - sizes) + sizes
    dealt: list[list[np.ndarray]] = [[], [], []]
    for position, middle in zip(order, middles, strict=True):
        part = int(np.searchsorted(2 * bounds[1:], middle, side="right"))
        dealt[min(part, 2)].append(groups[position])
    return dealt


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
