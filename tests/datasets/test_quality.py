"""Each quality part on data where the answer is known, and the score's formula."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris, load_wine

from weightbase.datasets import (
    QualityReport,
    assess_quality,
    from_graph,
    from_numpy,
    from_pandas,
    from_text_folder,
)
from weightbase.datasets import quality as quality_module
from weightbase.datasets.quality import DEFAULT_WEIGHTS, LIMITS
from weightbase.errors import ValidationError

pd = pytest.importorskip("pandas")


def blobs(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two well separated Gaussian classes: clean labels, no outliers."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 3)) + 10.0 * y[:, None]
    return x, y


@pytest.mark.parametrize("loader", [load_iris, load_wine, load_digits])
def test_bundled_datasets_score_high(loader: object) -> None:
    bunch = loader()  # type: ignore[operator]
    report = assess_quality(from_numpy(bunch.data, bunch.target))
    assert 0.9 <= report.score <= 1.0
    assert all(p.applicable for p in report.parts)
    assert QualityReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_duplicates_part_reflects_ten_percent_duplicated_rows() -> None:
    x, y = blobs(90)
    x_dup = np.concatenate([x, x[:10]])
    y_dup = np.concatenate([y, y[:10]])
    part = assess_quality(from_numpy(x_dup, y_dup)).part("duplicates")
    assert part.measure == pytest.approx(10 / 100)
    assert part.value == pytest.approx(1 - 0.1 / LIMITS["duplicates"])
    # a repeated input with another label is not an exact duplicate of the sample
    y_conflict = np.concatenate([y, 1 - y[:10]])
    assert assess_quality(from_numpy(x_dup, y_conflict)).part("duplicates").measure == 0


def test_duplicate_table_rows() -> None:
    frame = pd.DataFrame({"a": [1, 2, 1, 1], "b": ["x", "y", "x", None]})
    part = assess_quality(from_pandas(frame)).part("duplicates")
    assert part.measure == pytest.approx(1 / 4)


def test_missing_values_part() -> None:
    x, y = blobs(100)
    x[:10, 0] = np.nan  # 10 of 300 cells, plus 100 label cells
    part = assess_quality(from_numpy(x, y)).part("missing_values")
    assert part.measure == pytest.approx(10 / 400)
    frame = pd.DataFrame(
        {
            "n": pd.array([1, None, 3, 4], dtype="Int64"),
            "s": ["a", None, "c", "d"],
            "f": [0.5, 1.5, np.nan, 2.0],
            "c": pd.Categorical(["u", "v", "u", None]),
        }
    )
    part = assess_quality(from_pandas(frame)).part("missing_values")
    assert part.measure == pytest.approx(4 / 16)


def test_class_imbalance_part_is_normalised_entropy() -> None:
    x, _ = blobs(100)
    balanced = np.arange(100) % 2
    assert assess_quality(from_numpy(x, balanced)).part("class_imbalance").value == 1.0
    skewed = (np.arange(100) < 10).astype(int)  # 10 / 90
    expected = -(0.1 * math.log(0.1) + 0.9 * math.log(0.9)) / math.log(2)
    part = assess_quality(from_numpy(x, skewed)).part("class_imbalance")
    assert part.measure == pytest.approx(expected)
    assert part.value == pytest.approx(1 - (1 - expected) / LIMITS["class_imbalance"])
    assert not assess_quality(from_numpy(x, np.zeros(100, int))).part("class_imbalance").applicable
    assert not assess_quality(from_numpy(x)).part("class_imbalance").applicable


def test_outliers_part() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 1))
    clean = assess_quality(from_numpy(x)).part("outliers")
    assert clean.measure is not None
    assert clean.measure < 0.01
    x[:20, 0] = 1e6  # 10% of values far out
    part = assess_quality(from_numpy(x)).part("outliers")
    assert part.measure == pytest.approx(0.10)
    # a column that is constant for most samples has no robust scale and is skipped
    sparse = np.zeros((100, 1))
    sparse[:3] = 5.0
    assert not assess_quality(from_numpy(sparse)).part("outliers").applicable


def test_label_noise_part() -> None:
    x, y = blobs(400)
    clean = assess_quality(from_numpy(x, y)).part("label_noise")
    assert clean.measure == 0.0
    flipped = y.copy()
    flipped[::10] = 1 - flipped[::10]  # 10% wrong labels
    part = assess_quality(from_numpy(x, flipped)).part("label_noise")
    assert part.measure == pytest.approx(0.10, abs=0.02)
    iris = load_iris()
    assert assess_quality(from_numpy(iris.data, iris.target)).part("label_noise").measure < 0.1


def test_label_noise_is_sampled_and_seeded() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2500, 4))
    y = rng.integers(0, 2, 2500)  # labels unrelated to features: about half disagree
    first = assess_quality(from_numpy(x, y), seed=3).part("label_noise")
    assert first == assess_quality(from_numpy(x, y), seed=3).part("label_noise")
    assert "2000 sampled" in first.detail
    assert first.measure == pytest.approx(0.5, abs=0.06)


def test_score_is_the_worst_part_blended_with_the_weighted_mean() -> None:
    x, y = blobs(90)
    x = np.concatenate([x, x[:10]])
    y = np.concatenate([y, y[:10]])
    report = assess_quality(from_numpy(x, y))
    values = [p.value for p in report.parts if p.value is not None]
    weights = [p.weight for p in report.parts if p.value is not None]
    mean = sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights)
    assert report.score == pytest.approx(0.75 * min(values) + 0.25 * mean)
    assert report.worst == report.part("duplicates")
    assert [p.name for p in report.parts] == list(DEFAULT_WEIGHTS)
    only_duplicates = assess_quality(
        from_numpy(x, y),
        weights={"missing_values": 0, "class_imbalance": 0, "outliers": 0, "label_noise": 0},
    )
    # the weights move the mean only: the worst part counts whatever its weight
    assert only_duplicates.score == pytest.approx(report.part("duplicates").value)
    with pytest.raises(ValidationError, match="unknown quality parts"):
        assess_quality(from_numpy(x, y), weights={"beauty": 1.0})


def test_text_and_graph_quality(tmp_path: Path) -> None:
    for name, text in {"a.txt": "same", "b.txt": "same", "c.txt": "", "d.txt": "other"}.items():
        (tmp_path / name).write_text(text)
    report = assess_quality(from_text_folder(tmp_path))
    assert report.part("duplicates").measure == pytest.approx(1 / 4)
    assert report.part("missing_values").measure == pytest.approx(1 / 4)  # the empty document
    assert not report.part("label_noise").applicable

    graph = assess_quality(from_graph([[0, 1], [0, 1], [1, 2], [2, 0]], np.eye(3)))
    assert graph.part("duplicates").measure == pytest.approx(1 / 4)  # a repeated edge
    assert 0.0 <= graph.score <= 1.0


def test_docs_give_every_part_with_its_weight() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "datasets.md").read_text()
    module_doc = quality_module.__doc__ or ""
    for name, weight in DEFAULT_WEIGHTS.items():
        row = next(line for line in docs.splitlines() if line.startswith(f"| `{name}` |"))
        assert row.rstrip(" |").endswith(f"{weight:.2f}"), row
        module_row = next(
            line for line in module_doc.splitlines() if line.startswith(f"``{name}``")
        )
        assert module_row.rstrip().endswith(f"{weight:.2f}"), module_row
