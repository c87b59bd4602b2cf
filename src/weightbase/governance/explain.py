"""``wb.explanations``: feature attributions of tabular models, kept with the model version.

    explanation = wb.explanations.compute("credit@1.2.0", classifier.predict_proba, X_test,
                                          feature_names=columns, background=X_train)
    explanation.ranking()[0]                # the feature the model leans on most
    wb.explanations.get("credit@1.2.0")     # the latest, or None: not available

Model-agnostic: ``predict`` is any callable from a 2-D array of rows to
predictions (one value per row, or one per output such as class
probabilities). Rows are explained with SHAP's permutation explainer against a
small background sample (``pip install 'weightbase[explain]'``). What is kept
is the mean absolute attribution per feature over the explained rows (and over
the outputs, for a model with several), the explainer and shap's version, the
number of rows explained and the background's size. Only tabular input can be
explained: a 2-D numeric array or data frame of rows by features. For any other
model explainability is not available, and ``get`` says so by returning None.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from weightbase.catalog.schema import ExplanationRow
from weightbase.errors import MissingExtraError, ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.registry import ModelRegistry, ModelVersion

__all__ = [
    "NOT_AVAILABLE",
    "Explanation",
    "Explanations",
    "FeatureAttribution",
    "attributions",
    "tabular",
]

#: What is said of a version without feature attributions.
NOT_AVAILABLE = (
    "no feature attributions: explainability is available for tabular models, computed "
    "with wb.explanations.compute (pip install 'weightbase[explain]')"
)
#: The most background rows the explainer masks with; more are sampled down to these.
BACKGROUND_ROWS = 100
#: Permutations per explained row (each is run forward and backward).
PERMUTATIONS = 10
METHOD = "shap.PermutationExplainer"

Array = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True, slots=True)
class FeatureAttribution:
    """One feature's mean absolute attribution over the explained rows."""

    feature: str
    importance: float

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "importance": self.importance}


@dataclass(frozen=True, slots=True)
class Explanation:
    """Feature attributions of a model version, and how they were computed."""

    model: str
    version: str
    method: str
    library_version: str
    attributions: tuple[FeatureAttribution, ...]
    sample_size: int
    background_size: int
    dataset: str | None
    created_at: datetime | None = None
    created_by: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def ranking(self) -> list[FeatureAttribution]:
        """The features, most important first (ties in input order)."""
        return sorted(self.attributions, key=lambda item: -item.importance)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "available": True,
            "method": self.method,
            "library_version": self.library_version,
            "attributions": [item.to_dict() for item in self.attributions],
            "sample_size": self.sample_size,
            "background_size": self.background_size,
            "dataset": self.dataset,
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
            "created_by": self.created_by,
        }


def tabular(rows: Any, what: str = "X") -> Array:
    """``rows`` as a 2-D float64 array; ``ValidationError`` unless numeric rows by features."""
    try:
        array = np.asarray(rows)
    except (ValueError, TypeError):  # ragged nested sequences
        array = np.asarray(None)
    kind = array.dtype.kind
    if array.ndim != 2 or kind not in "biuf" or 0 in array.shape:
        shape = "x".join(str(n) for n in array.shape) or "a scalar"
        raise ValidationError(
            "explainability is available for tabular models only: "
            f"{what} must be a non-empty 2-D numeric array of rows by features, "
            f"not {shape} of {array.dtype}",
            shape=array.shape,
        )
    return array.astype(np.float64)


def _feature_names(rows: Any, count: int, names: Sequence[str] | None) -> tuple[str, ...]:
    if names is None:
        columns = getattr(rows, "columns", None)  # a data frame names its own
        names = [str(c) for c in columns] if columns is not None else None
    if names is None:
        return tuple(f"x{index}" for index in range(count))
    found = tuple(names)
    if len(found) != count:
        raise ValidationError(f"{len(found)} feature names for {count} features")
    if any(not isinstance(n, str) or not n for n in found) or len(set(found)) != count:
        raise ValidationError("feature names must be distinct, non-empty strings")
    return found


def _sample(array: Array, limit: int, rng: np.random.Generator) -> Array:
    if len(array) <= limit:
        return array
    return array[np.sort(rng.choice(len(array), size=limit, replace=False))]


def _shap() -> Any:
    try:
        # shap's plotting module trips matplotlib's deprecation warnings on import.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            import shap
    except ImportError as exc:
        raise MissingExtraError(
            "feature attributions need shap: pip install 'weightbase[explain]'"
        ) from exc
    return shap


def attributions(
    predict: Callable[[Any], Any], samples: Array, background: Array, *, seed: int
) -> Array:
    """Mean |SHAP value| per feature of ``predict`` over ``samples`` (averaged over outputs)."""
    shap = _shap()

    def predictions(rows: Array) -> Array:
        out = np.asarray(predict(rows), dtype=np.float64)
        if out.ndim > 2 or out.shape[0] != len(rows):
            raise ValidationError(
                f"predict must give one value or one row of outputs per input row, not {out.shape}"
            )
        if not np.all(np.isfinite(out)):
            raise ValidationError("predict gave values that are not finite (NaN or infinity)")
        return out

    masker = shap.maskers.Independent(background, max_samples=len(background))
    # The explainer seeds NumPy's global generator: the caller's state is put back after.
    state = np.random.get_state()
    try:
        explainer = shap.PermutationExplainer(predictions, masker, seed=seed)
        result = explainer(
            samples, max_evals=PERMUTATIONS * (2 * samples.shape[1] + 1), silent=True
        )
    finally:
        np.random.set_state(state)
    values = np.abs(np.asarray(result.values, dtype=np.float64))
    mean: Array = values.reshape(values.shape[0], values.shape[1], -1).mean(axis=(0, 2))
    return mean


class Explanations:
    """Feature attributions per model version: computed for tabular models, kept, read back."""

    def __init__(
        self, catalog: Catalog, *, recorder: ChangeRecorder, models: ModelRegistry
    ) -> None:
        self._catalog = catalog
        self._recorder = recorder
        self._models = models

    def compute(
        self,
        ref: ModelVersion | str,
        predict: Callable[[Any], Any],
        X: Any,
        *,
        feature_names: Sequence[str] | None = None,
        background: Any = None,
        dataset: Any = None,
        max_samples: int = 200,
        seed: int = 0,
    ) -> Explanation:
        """Explain ``predict`` on the rows ``X`` and keep the attributions with ``ref``.

        ``background`` (default: ``X``) is what a feature is replaced with to see
        what it changes, sampled down to 100 rows; ``X`` is sampled down to
        ``max_samples`` rows. ``dataset`` names the dataset version the rows came
        from (a ``NAME@VERSION`` or a dataset version record). ``feature_names``
        defaults to a data frame's columns, else ``x0``, ``x1``…
        """
        if not callable(predict):
            raise ValidationError("predict must be a callable from rows to predictions")
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
            raise ValidationError(f"max_samples must be a positive integer, not {max_samples!r}")
        rows = tabular(X)
        names = _feature_names(X, rows.shape[1], feature_names)
        base = rows if background is None else tabular(background, "background")
        if base.shape[1] != rows.shape[1]:
            raise ValidationError(f"background has {base.shape[1]} features, X has {rows.shape[1]}")
        source = getattr(dataset, "ref", dataset)
        if source is not None and (not isinstance(source, str) or not 0 < len(source) <= 255):
            raise ValidationError(f"dataset must name a dataset version, not {dataset!r}")
        found = self._models.version(ref)
        shap = _shap()
        rng = np.random.default_rng(seed)
        samples = _sample(rows, max_samples, rng)
        masking = _sample(base, BACKGROUND_ROWS, rng)
        importance = attributions(predict, samples, masking, seed=seed)
        explained = tuple(
            FeatureAttribution(name, float(value))
            for name, value in zip(names, importance, strict=True)
        )
        actor = self._recorder.actor

        def work(session: Session) -> Explanation:
            row = ExplanationRow(
                version_id=found.id,
                method=METHOD,
                library_version=str(shap.__version__),
                attributions=[item.to_dict() for item in explained],
                sample_size=len(samples),
                background_size=len(masking),
                dataset=source,
                created_by=actor,
            )
            session.add(row)
            session.flush()
            top = max(explained, key=lambda item: item.importance)
            after = {
                "explanation": row.id,
                "version": found.version,
                "method": METHOD,
                "sample_size": len(samples),
                "top_feature": top.feature,
            }
            self._recorder.record(
                session,
                "explanation.compute",
                "model",
                found.model_id,
                after=after,
                event="explanation_computed",
                payload={"model": found.model, **after},
            )
            return _stored(row, found.model, found.version)

        return self._catalog.write(work)

    def get(self, ref: ModelVersion | str) -> Explanation | None:
        """The version's latest feature attributions; None when none were computed."""
        found = self._models.version(ref)
        with self._catalog.session() as session:
            row = session.scalars(
                select(ExplanationRow)
                .where(ExplanationRow.version_id == found.id)
                .order_by(ExplanationRow.id.desc())
                .limit(1)
            ).first()
            return None if row is None else _stored(row, found.model, found.version)


def _stored(row: ExplanationRow, model: str, version: str) -> Explanation:
    return Explanation(
        model=model,
        version=version,
        method=row.method,
        library_version=row.library_version,
        attributions=tuple(
            FeatureAttribution(item["feature"], float(item["importance"]))
            for item in row.attributions
        ),
        sample_size=row.sample_size,
        background_size=row.background_size,
        dataset=row.dataset,
        created_at=row.created_at,
        created_by=row.created_by,
    )
