"""Data drift between a reference window and a current one, per feature and for the dataset.

:func:`drift_report` chooses each column's statistic by Evidently's default rules and
computes it as Evidently does (see :mod:`weightbase.monitoring.drift_stats`), so the
figures agree with its ``DataDriftPreset`` on the same data, in a fraction of the time:

* reference of at most 1000 rows: Kolmogorov-Smirnov (p < 0.05 … ≤ 0.05 drifts) for
  numeric columns; χ² for categorical ones, or the two-proportion z-test when the two
  windows hold at most two values between them;
* larger reference: Wasserstein distance normed by the reference's standard deviation
  (≥ 0.1 drifts) for numeric columns, Jensen-Shannon distance (≥ 0.1) for categorical;
* a numeric column with at most five distinct values in both windows together is
  tested as categorical (χ²/z, or Jensen-Shannon on a large reference);
* the dataset drifts when at least half of its features do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from weightbase.errors import MissingExtraError, ValidationError
from weightbase.monitoring import drift_stats as st
from weightbase.monitoring.drift_records import ColumnDrift, DriftReport

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Table", "as_frame", "default_method", "drift_report", "infer_kind"]

#: A window of data: a pandas DataFrame, a mapping of column name to 1-D array, or a 2-D
#: array (its columns are named "0", "1", …).
Table = Any

#: An int column with at most this many distinct values is categorical (Evidently's limit).
INTEGER_CARDINALITY_LIMIT = 10
#: References up to this many rows are "small data": tests with p-values, not distances.
SMALL_DATA_ROWS = 1000


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:  # pragma: no cover - pandas comes with the monitoring extra
        raise MissingExtraError(
            "drift reports need pandas: pip install 'weightbase[monitoring]'"
        ) from exc
    return pandas


def as_frame(table: Table, what: str) -> pd.DataFrame:
    """``table`` as a DataFrame with string column names; ``ValidationError`` if it is empty."""
    pd = _pandas()
    if isinstance(table, pd.DataFrame):
        frame = table
    elif isinstance(table, np.ndarray):
        if table.ndim != 2:
            raise ValidationError(
                f"the {what} array must be 2-D (rows x features), not {table.ndim}-D; "
                "embeddings go to embedding_drift",
                shape=table.shape,
            )
        frame = pd.DataFrame(table, columns=[str(i) for i in range(table.shape[1])])
    elif isinstance(table, Mapping):
        try:
            frame = pd.DataFrame({str(k): np.asarray(v) for k, v in table.items()})
        except ValueError as exc:
            raise ValidationError(
                f"the {what} columns must be 1-D arrays of one length: {exc}"
            ) from exc
    else:
        raise ValidationError(
            f"the {what} data must be a DataFrame, a mapping of column to array or a 2-D "
            f"array, not {type(table).__name__}"
        )
    if len(frame) == 0:
        raise ValidationError(f"the {what} data has no rows", rows=0)
    if len(frame.columns) == 0:
        raise ValidationError(f"the {what} data has no columns")
    return (
        frame.rename(columns=str) if any(not isinstance(c, str) for c in frame.columns) else frame
    )


def infer_kind(values: pd.Series, categorical: Iterable[str] | None = None) -> str | None:
    """``numeric``, ``categorical`` or None (not measurable) for a column, as Evidently infers it.

    Floats are numeric; ints are categorical up to 10 distinct values, numeric beyond;
    strings, booleans and pandas categories are categorical; anything else (dates,
    objects) is left out. ``categorical``, when given, names the categorical columns and
    makes every other numeric column numeric.
    """
    pd = _pandas()
    dtype = values.dtype
    if categorical is not None:
        if values.name in set(categorical):
            return "categorical"
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            return "numeric"
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_float_dtype(dtype):
        return "numeric"
    if pd.api.types.is_integer_dtype(dtype):
        present = values.dropna().to_numpy()
        few = st.few_unique(present, INTEGER_CARDINALITY_LIMIT)
        return "categorical" if few is not None else "numeric"
    if pd.api.types.is_string_dtype(dtype):
        present = values.dropna()
        if len(present) == 0 or all(
            isinstance(v, str) for v in (present.iloc[0], present.iloc[-1])
        ):
            return "categorical"
    return None


def default_method(kind: str, reference_rows: int, distinct: int | None) -> str:
    """Evidently's default statistic for a column (``distinct``: values in both windows, when ≤ 5).

    ``distinct`` is None when the column has more than five distinct values.
    """
    few = distinct is not None and distinct <= 5
    if reference_rows <= SMALL_DATA_ROWS:
        if kind == "numeric" and not few:
            return "ks"
        return "chisquare" if distinct is None or distinct > 2 else "z"
    return "wasserstein" if kind == "numeric" and not few else "jensenshannon"


def _numeric(values: pd.Series) -> npt.NDArray[np.float64]:
    array: npt.NDArray[np.float64] = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return array[np.isfinite(array)]


def _codes(reference: pd.Series, current: pd.Series) -> tuple[Any, Any, int]:
    """Category codes over both windows (missing values dropped), smallest value first."""
    pd = _pandas()
    both = pd.concat([reference, current], ignore_index=True)
    try:
        codes, uniques = pd.factorize(both, sort=True)
    except TypeError:  # values of mixed types do not sort; only the z statistic's sign follows
        codes, uniques = pd.factorize(both, sort=False)
    split = len(reference)
    ref, cur = codes[:split], codes[split:]
    return ref[ref >= 0], cur[cur >= 0], len(uniques)


def _measure(
    name: str,
    kind: str,
    reference: pd.Series,
    current: pd.Series,
    method: str | None,
    threshold: float | None,
) -> ColumnDrift:
    pd = _pandas()
    values: _Values
    if kind == "numeric":
        if not (
            pd.api.types.is_numeric_dtype(reference.dtype)
            and pd.api.types.is_numeric_dtype(current.dtype)
        ):
            raise ValidationError(f"column {name!r} is numeric but holds non-numbers", column=name)
        values = _Values(_numeric(reference), _numeric(current), None)
    else:
        values = _Values(*_codes(reference, current))
    ref_count, cur_count = values.reference.size, values.current.size
    for count, window in ((ref_count, "reference"), (cur_count, "current")):
        if count == 0:
            raise ValidationError(
                f"column {name!r} has no values in the {window} window (missing values and "
                "infinities are left out)",
                column=name,
            )
    if method is None:
        method = default_method(kind, ref_count, values.distinct(5))
    if method not in st.METHODS:
        raise ValidationError(
            f"unknown drift method {method!r}; one of {sorted(st.METHODS)}", method=method
        )
    default_threshold, kinds = st.METHODS[method]
    if kind not in kinds:
        raise ValidationError(f"{method} does not apply to {kind} column {name!r}", column=name)
    limit = default_threshold if threshold is None else float(threshold)
    measured = _compute(method, values)
    score = measured.score
    if method in st.DISTANCES:
        drifted = score >= limit
    elif method == "ks":
        drifted = score <= limit
    else:
        drifted = score < limit
    return ColumnDrift(
        column=name,
        kind="numeric" if kind == "numeric" else "categorical",
        method=method,
        statistic=measured.statistic,
        p_value=measured.p_value,
        threshold=limit,
        drifted=bool(drifted),
        reference_count=ref_count,
        current_count=cur_count,
    )


@dataclass(frozen=True, slots=True)
class _Values:
    """A column's cleaned values in both windows: floats, or codes when ``categories`` is set."""

    reference: npt.NDArray[Any]
    current: npt.NDArray[Any]
    categories: int | None

    def distinct(self, limit: int) -> int | None:
        """How many distinct values both windows hold together, when at most ``limit``."""
        if self.categories is not None:
            return self.categories if self.categories <= limit else None
        few = st.few_unique(self.reference, limit)
        if few is not None:
            few = st.few_unique(np.concatenate([few, self.current]), limit)
        return None if few is None else few.size

    def as_codes(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], int]:
        """Category codes over both windows (a numeric column's distinct values, sorted)."""
        if self.categories is not None:
            return self.reference, self.current, self.categories
        keys = np.union1d(np.unique(self.reference), np.unique(self.current))
        return (
            np.searchsorted(keys, self.reference),
            np.searchsorted(keys, self.current),
            keys.size,
        )


def _compute(method: str, values: _Values) -> st.Measured:
    if values.categories is None:
        if method == "ks":
            return st.ks(values.reference, values.current)
        if method == "wasserstein":
            return st.wasserstein_norm(values.reference, values.current)
        if method in ("jensenshannon", "psi"):
            shares = st.binned_numeric(values.reference, values.current)
            return st.jensen_shannon(*shares) if method == "jensenshannon" else st.psi(*shares)
    ref_codes, cur_codes, categories = values.as_codes()
    if method == "chisquare":
        return st.chi_square(ref_codes, cur_codes, categories)
    if method == "z":
        return st.z_test(ref_codes, cur_codes, 0)
    shares = st.binned_categorical(ref_codes, cur_codes, categories)
    return st.jensen_shannon(*shares) if method == "jensenshannon" else st.psi(*shares)


def _per_column(option: Any, name: str, what: str) -> Any:
    if isinstance(option, Mapping):
        return option.get(name)
    return option


def drift_report(
    reference: Table,
    current: Table,
    *,
    categorical: Iterable[str] | None = None,
    columns: Iterable[str] | None = None,
    thresholds: float | Mapping[str, float] | None = None,
    method: str | Mapping[str, str] | None = None,
    prediction: str | None = None,
    drift_share: float = 0.5,
) -> DriftReport:
    """Drift of each feature of ``current`` against ``reference``, and of the dataset.

    ``columns``: the features to check (default: every column both windows have, except
    ``prediction``; one only a window has is listed in ``ignored``). ``categorical``:
    the categorical columns (default: inferred as Evidently does, from ``current``).
    ``method`` and ``thresholds``: one for all columns or a mapping per column (default:
    Evidently's rules, see the module's docstring). ``prediction``: a column of model
    outputs, measured the same way and reported apart from the features. Missing values
    and infinities are left out of each column, as Evidently does.
    """
    if not (isinstance(drift_share, (int, float)) and 0 <= drift_share <= 1):
        raise ValidationError("drift_share must be a number in [0, 1]", drift_share=drift_share)
    ref_frame, cur_frame = as_frame(reference, "reference"), as_frame(current, "current")
    categorical = None if categorical is None else [str(c) for c in categorical]
    for value in thresholds.values() if isinstance(thresholds, Mapping) else [thresholds]:
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ValidationError(f"a threshold must be a finite number, not {value!r}")
    shared = [c for c in cur_frame.columns if c in set(ref_frame.columns)]
    ignored = tuple(c for c in [*ref_frame.columns, *cur_frame.columns] if c not in set(shared))
    explicit = columns is not None
    if columns is None:
        names = [c for c in shared if c != prediction]
    else:
        names = [str(c) for c in columns]
        missing = [c for c in names if c not in set(shared)]
        if missing:
            raise ValidationError(f"columns not in both windows: {missing}", columns=missing)
    if prediction is not None and prediction not in set(shared):
        raise ValidationError(
            f"the prediction column {prediction!r} is not in both windows", column=prediction
        )
    if not names and prediction is None:
        raise ValidationError(
            "the reference and current windows share no columns to compare",
            reference=list(ref_frame.columns)[:20],
            current=list(cur_frame.columns)[:20],
        )
    compared = {*names, *([prediction] if prediction is not None else [])}
    for option, what in ((thresholds, "thresholds"), (method, "method")):
        if isinstance(option, Mapping) and (unknown := sorted(set(option) - compared)):
            raise ValidationError(
                f"{what} names columns that are not compared: {unknown}", columns=unknown
            )
    measured: list[ColumnDrift] = []
    skipped: list[str] = []
    for name in [*names, *([prediction] if prediction is not None else [])]:
        kind = infer_kind(cur_frame[name], categorical)
        if kind is None:
            if explicit or name == prediction:
                raise ValidationError(
                    f"column {name!r} is neither numeric nor categorical "
                    f"(dtype {cur_frame[name].dtype})",
                    column=name,
                )
            skipped.append(name)
            continue
        measured.append(
            _measure(
                name,
                kind,
                ref_frame[name],
                cur_frame[name],
                _per_column(method, name, "method"),
                _per_column(thresholds, name, "threshold"),
            )
        )
    predicted = measured.pop() if prediction is not None else None
    return DriftReport(
        columns=tuple(measured),
        prediction=predicted,
        drift_share=float(drift_share),
        reference_rows=len(ref_frame),
        current_rows=len(cur_frame),
        ignored=tuple(dict.fromkeys([*ignored, *skipped])),
    )
