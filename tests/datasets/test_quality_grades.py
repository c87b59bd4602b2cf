"""The quality score lets one serious problem show, as a grade A-F (issue 12).

Clean digits scored 0.992 and, with 30% of labels randomised, 0.952: a broken
dataset read about the same as a clean one. Each damage below must now cost at
least two letters, and clean bundled data sets must stay at A.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import datasets as bundled  # type: ignore[import-untyped]

from weightbase.datasets import QualityReport, assess_quality, from_numpy
from weightbase.datasets.quality import GRADES, LIMITS, QualityPart, grade_of

LETTERS = "ABCDF"
CLEAN = ["iris", "digits", "wine", "breast_cancer", "diabetes"]


def letters_between(clean: str, damaged: str) -> int:
    return LETTERS.index(damaged) - LETTERS.index(clean)


@pytest.fixture(scope="module")
def digits() -> Any:
    return bundled.load_digits()


@pytest.mark.parametrize("name", CLEAN)
def test_clean_bundled_data_sets_grade_a(name: str) -> None:
    bunch = getattr(bundled, f"load_{name}")()
    report = assess_quality(from_numpy(bunch.data, bunch.target))
    assert report.grade == "A", report.to_dict()
    assert report.score >= GRADES[0][1]


def randomise_labels(y: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = y.copy()
    chosen = rng.choice(len(y), size=int(share * len(y)), replace=False)
    noisy[chosen] = rng.integers(0, int(y.max()) + 1, size=len(chosen))
    return noisy


def duplicate_rows(x: np.ndarray, y: np.ndarray, share: float, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(y), size=int(share * len(y)), replace=False)
    return np.concatenate([x, x[chosen]]), np.concatenate([y, y[chosen]])


def blank_cells(x: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    holed = x.astype(np.float64)
    holed[rng.random(x.shape) < share] = np.nan
    return holed


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("damage", ["labels", "duplicates", "missing"])
def test_each_damage_costs_at_least_two_letters(digits: Any, damage: str, seed: int) -> None:
    x, y = digits.data, digits.target
    clean = assess_quality(from_numpy(x, y))
    if damage == "labels":
        damaged = assess_quality(from_numpy(x, randomise_labels(y, 0.3, seed)))
        worst = "label_noise"
    elif damage == "duplicates":
        damaged = assess_quality(from_numpy(*duplicate_rows(x, y, 0.3, seed)))
        worst = "duplicates"
    else:
        damaged = assess_quality(from_numpy(blank_cells(x, 0.1, seed), y))
        worst = "missing_values"
    assert clean.grade == "A"
    assert letters_between(clean.grade, damaged.grade) >= 2, damaged.to_dict()
    assert damaged.worst is not None
    assert damaged.worst.name == worst
    assert damaged.score < clean.score - 0.25


def test_the_same_damages_on_iris(digits: Any) -> None:
    iris = bundled.load_iris()
    x, y = iris.data, iris.target
    for damaged in (
        (x, randomise_labels(y, 0.3)),
        duplicate_rows(x, y, 0.3),
        (blank_cells(x, 0.1), y),
    ):
        assert letters_between("A", assess_quality(from_numpy(*damaged)).grade) >= 2


def test_grades_and_thresholds() -> None:
    assert [grade_of(s) for s in (1.0, 0.85, 0.84, 0.70, 0.55, 0.40, 0.39, 0.0)] == list("AABBCDFF")
    part = QualityPart("duplicates", 0.5, 0.25, 0.2, "", LIMITS["duplicates"])
    assert part.grade == "D"
    assert QualityPart("outliers", None, 0.15, None, "n/a").grade is None


def test_grade_is_in_the_record_and_round_trips(digits: Any) -> None:
    report = assess_quality(from_numpy(digits.data, digits.target))
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["grade"] == report.grade == "A"
    assert {p["name"]: p["limit"] for p in doc["parts"]} == dict(LIMITS)
    assert all("grade" in p for p in doc["parts"])
    assert QualityReport.from_dict(doc) == report


def test_a_record_from_the_old_weighted_mean_is_scored_as_now() -> None:
    old = {
        "score": 0.952,
        "parts": [
            {"name": "duplicates", "value": 1.0, "weight": 0.25, "measure": 0.0, "detail": ""},
            {"name": "missing_values", "value": 1.0, "weight": 0.25, "measure": 0.0, "detail": ""},
            {"name": "class_imbalance", "value": 1.0, "weight": 0.2, "measure": 1.0, "detail": ""},
            {"name": "outliers", "value": 0.967, "weight": 0.15, "measure": 0.033, "detail": ""},
            {"name": "label_noise", "value": 0.705, "weight": 0.15, "measure": 0.295, "detail": ""},
        ],
    }
    report = QualityReport.from_dict(old)
    assert report.part("label_noise").value == pytest.approx(1 - 0.295 / LIMITS["label_noise"])
    assert report.grade == "D"


def test_docs_state_the_formula_limits_and_grades() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "datasets.md").read_text()
    assert "score = 0.75 * min(v_i) + 0.25 * sum(w_i * v_i) / sum(w_i)" in docs
    for name, limit in LIMITS.items():
        row = next(line for line in docs.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"| {limit:.2f} |" in row, row
    for letter, lowest in GRADES:
        assert f"| {letter} | {lowest:.2f} |" in docs
