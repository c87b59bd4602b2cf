"""drift_report against Evidently 0.7.23 on the same data: each statistic, its default rules,
the DataDriftPreset verdicts; properties of the statistics; errors on bad input."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from benchmarks.monitoring_evidently import preset_drift, stattest
from hypothesis import assume, given, settings
from hypothesis import strategies as hst
from hypothesis.extra.numpy import arrays
from scipy import stats

from weightbase.errors import NotFound, ValidationError
from weightbase.monitoring.drift import drift_report

TOLERANCE = 1e-6


def _evidently(method: str, reference: Any, current: Any, kind: str) -> float:
    test = stattest(method)  # imports Evidently first, offline
    from evidently.legacy.core import ColumnType

    column_type = ColumnType.Numerical if kind == "numeric" else ColumnType.Categorical
    with warnings.catch_warnings():  # scipy's own divide-by-zero on an unseen category
        warnings.simplefilter("ignore")
        result = test(pd.Series(reference), pd.Series(current), column_type, None)
    return float(result.drift_score)


def _windows(seed: int, rows: tuple[int, int], shift: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    frames = []
    for size, moved in zip(rows, (0.0, shift), strict=True):
        frames.append(
            pd.DataFrame(
                {
                    "wide": rng.normal(moved, 1.0, size),
                    "ties": rng.integers(0, 40, size).astype(float) + moved * 5,
                    "few": rng.choice([0.0, 1.0, 2.0, 3.0 + (moved > 0)], size),
                    "city": rng.choice(["oslo", "rome", "lima", "pune"], size, p=_p(moved)),
                    "flag": rng.choice(["yes", "no"], size, p=[0.5 + moved / 4, 0.5 - moved / 4]),
                }
            )
        )
    return frames[0], frames[1]


def _p(moved: float) -> list[float]:
    return [0.4 - moved / 4, 0.3, 0.2, 0.1 + moved / 4]


CASES = [
    # (method, column, kind)
    ("ks", "wide", "numeric"),
    ("ks", "ties", "numeric"),
    ("wasserstein", "wide", "numeric"),
    ("wasserstein", "ties", "numeric"),
    ("jensenshannon", "wide", "numeric"),
    ("jensenshannon", "few", "numeric"),
    ("jensenshannon", "city", "categorical"),
    ("psi", "ties", "numeric"),
    ("psi", "few", "numeric"),
    ("psi", "city", "categorical"),
    ("chisquare", "city", "categorical"),
    ("z", "flag", "categorical"),
]


@pytest.mark.parametrize(("method", "column", "kind"), CASES)
@pytest.mark.parametrize(("rows", "shift"), [((300, 500), 0.0), ((2000, 3100), 0.4)])
def test_each_statistic_equals_evidentlys(
    method: str, column: str, kind: str, rows: tuple[int, int], shift: float
) -> None:
    reference, current = _windows(7, rows, shift)
    report = drift_report(reference, current, columns=[column], method=method)
    ours = report.column(column)
    theirs = _evidently(method, reference[column], current[column], kind)
    assert ours.method == method
    assert ours.score == pytest.approx(theirs, abs=TOLERANCE, rel=TOLERANCE)


def test_a_category_the_reference_never_saw_is_infinite_chi_square_as_in_evidently() -> None:
    reference = pd.DataFrame({"c": ["a", "b"] * 50})
    current = pd.DataFrame({"c": ["a", "b", "new"] * 40})
    ours = drift_report(reference, current, method="chisquare").column("c")
    assert ours.p_value == _evidently("chisquare", reference.c, current.c, "categorical") == 0.0
    assert math.isinf(ours.statistic)
    assert ours.drifted
    json.dumps(ours.to_dict())  # infinity is written as a string


@pytest.mark.parametrize(
    ("rows", "shift"),
    [((400, 600), 0.0), ((400, 600), 0.5), ((3000, 5000), 0.0), ((3000, 5000), 0.3)],
)
def test_default_report_equals_evidentlys_data_drift_preset(
    rows: tuple[int, int], shift: float
) -> None:
    reference, current = _windows(11, rows, shift)
    reference["count"] = np.arange(rows[0]) % 7  # an int column with few values: categorical
    current["count"] = (np.arange(rows[1]) + int(shift * 10)) % 7
    theirs, share = preset_drift(reference, current)
    report = drift_report(reference, current)
    assert {c.column for c in report.columns} == set(theirs)
    for column in report.columns:
        anchor = theirs[column.column]
        assert column.method == anchor.method, column.column
        assert column.score == pytest.approx(anchor.score, abs=TOLERANCE, rel=TOLERANCE)
        assert column.threshold == anchor.threshold
        assert column.drifted == anchor.drifted, column.column
    assert report.drifted_share == pytest.approx(share)
    assert report.column("count").kind == "categorical"


def test_missing_values_and_infinities_are_left_out_as_evidently_does() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(size=1500), "c": rng.choice(["a", "b", "c"], 1500)})
    current = pd.DataFrame(
        {"x": rng.normal(0.2, size=2500), "c": rng.choice(["a", "b", "c"], 2500)}
    )
    reference.loc[::10, "x"] = np.nan
    current.loc[::7, "x"] = np.inf
    current.loc[::5, "x"] = np.nan
    current.loc[::9, "c"] = None
    theirs, _ = preset_drift(reference, current)
    report = drift_report(reference, current)
    for name in ("x", "c"):
        assert report.column(name).score == pytest.approx(theirs[name].score, abs=TOLERANCE)
    assert report.column("x").reference_count == 1350
    assert report.column("x").current_count == int(np.isfinite(current.x).sum())


@pytest.mark.parametrize(
    ("reference_rows", "values", "expected"),
    [
        (500, [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5], "ks"),
        (500, [1.0, 2.0, 3.0], "chisquare"),
        (500, [1.0, 2.0], "z"),
        (1001, [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5], "wasserstein"),
        (1001, [1.0, 2.0, 3.0, 4.0, 5.0], "jensenshannon"),
        (1001, [1.0, 2.0], "jensenshannon"),
    ],
)
def test_default_method_follows_size_and_distinct_values(
    reference_rows: int, values: list[float], expected: str
) -> None:
    reference = {"x": np.resize(np.array(values), reference_rows)}
    current = {"x": np.resize(np.array(values[::-1]), 700)}
    assert drift_report(reference, current).column("x").method == expected


@pytest.mark.parametrize(
    ("reference_rows", "expected"), [(1000, "chisquare"), (1001, "jensenshannon")]
)
def test_categorical_defaults_and_the_binary_z_test(reference_rows: int, expected: str) -> None:
    reference = pd.DataFrame(
        {
            "c": np.resize(np.array(["a", "b", "c"]), reference_rows),
            "b": np.resize([True, False], reference_rows),
        }
    )
    current = pd.DataFrame({"c": ["a", "c"] * 150, "b": [True, True, False] * 100})
    report = drift_report(reference, current)
    assert report.column("c").method == expected
    assert report.column("b").method == ("z" if reference_rows <= 1000 else "jensenshannon")


def test_categorical_option_and_prediction_column() -> None:
    rng = np.random.default_rng(5)
    reference = {"code": rng.integers(0, 50, 800), "label": rng.integers(0, 3, 800)}
    current = {"code": rng.integers(0, 50, 900), "label": rng.integers(1, 3, 900)}
    inferred = drift_report(reference, current, prediction="label")
    assert inferred.column("code").kind == "numeric"
    assert [c.column for c in inferred.columns] == ["code"]
    assert inferred.prediction is not None
    assert inferred.prediction.method == "chisquare"
    assert inferred.prediction.drifted
    forced = drift_report(reference, current, categorical=["code", "label"], prediction="label")
    assert forced.column("code").kind == "categorical"
    assert forced.column("code").method == "chisquare"
    assert forced.prediction == inferred.prediction


def test_thresholds_per_column_and_the_dataset_verdict() -> None:
    reference, current = _windows(2, (2000, 2000), 0.3)
    loose = drift_report(reference, current, thresholds=10.0)
    assert not loose.drifted_columns
    assert not loose.dataset_drift
    strict = drift_report(reference, current, thresholds={"wide": 0.0})
    assert "wide" in strict.drifted_columns
    assert strict.column("wide").threshold == 0.0
    assert strict.column("city").threshold == 0.1
    everything = drift_report(reference, current, thresholds=0.0)
    assert everything.drifted_share == 1.0
    assert everything.dataset_drift
    data = everything.to_dict()
    assert json.loads(json.dumps(data))["dataset_drift"] is True
    assert len(data["columns"]) == 5


finite = hst.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(
    arrays(np.float64, hst.integers(1, 60), elements=finite),
    arrays(np.float64, hst.integers(1, 60), elements=finite),
)
def test_wasserstein_equals_scipys_on_any_samples(reference: Any, current: Any) -> None:
    ours = drift_report({"x": reference}, {"x": current}, method="wasserstein").column("x")
    expected = stats.wasserstein_distance(reference, current) / max(float(np.std(reference)), 0.001)
    assert ours.statistic == pytest.approx(expected, rel=1e-9, abs=1e-9)


@given(
    arrays(np.float64, hst.integers(2, 80), elements=hst.floats(-100, 100)),
    hst.sampled_from(["ks", "wasserstein", "jensenshannon", "psi"]),
)
def test_identical_windows_show_no_drift(values: Any, method: str) -> None:
    column = drift_report({"x": values}, {"x": values.copy()}, method=method).column("x")
    assert not column.drifted
    if method == "ks":
        assert column.p_value == pytest.approx(1.0)
    else:
        assert column.statistic == pytest.approx(0.0, abs=1e-12)


@given(
    hst.lists(hst.sampled_from("abcd"), min_size=1, max_size=80),
    hst.sampled_from(["chisquare", "jensenshannon", "psi"]),
)
def test_identical_categorical_windows_show_no_drift(values: list[str], method: str) -> None:
    column = drift_report({"c": values}, {"c": list(values)}, method=method).column("c")
    assert not column.drifted
    assert column.score == pytest.approx(1.0 if method == "chisquare" else 0.0, abs=1e-12)


@given(hst.integers(0, 2**32 - 1), hst.floats(1.5, 5.0))
def test_a_shifted_column_drifts_and_row_order_does_not_matter(seed: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    reference = {"x": rng.normal(size=1200), "c": rng.choice(["a", "b", "c"], 1200)}
    current = {"x": rng.normal(shift, size=1500), "c": rng.choice(["a", "b", "c"], 1500)}
    report = drift_report(reference, current)
    assert report.column("x").drifted
    order = rng.permutation(1500)
    shuffled = drift_report(reference, {k: v[order] for k, v in current.items()})
    for column, again in zip(report.columns, shuffled.columns, strict=True):
        assert again.statistic == pytest.approx(column.statistic, rel=1e-12, abs=1e-15)
        assert again.drifted == column.drifted


def test_bad_input_is_refused_with_a_clear_error() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    with pytest.raises(ValidationError, match="share no columns"):
        drift_report(frame, pd.DataFrame({"y": [1.0]}))
    with pytest.raises(ValidationError, match="no rows"):
        drift_report(frame, frame.iloc[:0])
    with pytest.raises(ValidationError, match="no values in the current window"):
        drift_report(frame, pd.DataFrame({"x": [np.nan, np.inf]}))
    with pytest.raises(ValidationError, match="not in both windows"):
        drift_report(frame, frame, columns=["x", "z"])
    with pytest.raises(ValidationError, match="unknown drift method"):
        drift_report(frame, frame, method="t-test")
    with pytest.raises(ValidationError, match="does not apply"):
        drift_report({"c": ["a", "b"]}, {"c": ["a"]}, method="ks")
    with pytest.raises(ValidationError, match="finite number"):
        drift_report(frame, frame, thresholds=float("nan"))
    with pytest.raises(ValidationError, match="not compared"):
        drift_report(frame, frame, thresholds={"x": 0.1, "typo": 0.2})
    with pytest.raises(ValidationError, match="not compared"):
        drift_report(frame, frame, method={"y": "ks"})
    with pytest.raises(ValidationError, match="one length"):
        drift_report({"x": [1.0, 2.0], "y": [1.0]}, frame)
    with pytest.raises(ValidationError, match="2-D"):
        drift_report(np.zeros((3, 2, 2)), frame)
    with pytest.raises(NotFound):
        drift_report(frame, frame).column("nope")


def test_columns_one_window_lacks_are_ignored_and_named() -> None:
    report = drift_report(
        {"x": [1.0, 2.0, 3.0], "old": [1, 2, 3]}, {"x": [1.0, 2.0, 2.5], "new": ["a", "b", "c"]}
    )
    assert [c.column for c in report.columns] == ["x"]
    assert report.ignored == ("old", "new")


numeric_sample = hst.one_of(
    arrays(np.float64, hst.integers(2, 60), elements=hst.floats(-50, 50)),
    arrays(np.int64, hst.integers(2, 60), elements=hst.integers(0, 30)).map(
        lambda a: a.astype(np.float64)
    ),
)


@settings(max_examples=60)
@given(
    numeric_sample, numeric_sample, hst.sampled_from(["ks", "wasserstein", "jensenshannon", "psi"])
)
def test_numeric_statistics_equal_evidentlys_on_any_samples(
    reference: Any, current: Any, method: str
) -> None:
    ours = drift_report({"x": reference}, {"x": current}, method=method).column("x")
    theirs = _evidently(method, reference, current, "numeric")
    assert ours.score == pytest.approx(theirs, abs=TOLERANCE, rel=TOLERANCE)


@settings(max_examples=60)
@given(
    hst.lists(hst.sampled_from("abcdef"), min_size=2, max_size=60),
    hst.lists(hst.sampled_from("abcdefg"), min_size=2, max_size=60),
    hst.sampled_from(["chisquare", "z", "jensenshannon", "psi"]),
)
def test_categorical_statistics_equal_evidentlys_on_any_samples(
    reference: list[str], current: list[str], method: str
) -> None:
    categories = set(reference) | set(current)
    assume(method != "z" or len(categories) <= 2)
    assume(method != "chisquare" or len(categories) > 1)  # scipy: NaN without freedom
    ours = drift_report({"c": reference}, {"c": current}, method=method).column("c")
    theirs = _evidently(method, reference, current, "categorical")
    assert ours.score == pytest.approx(theirs, abs=TOLERANCE, rel=TOLERANCE)
