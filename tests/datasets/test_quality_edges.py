"""Quality parts on the shapes the main tests leave out: wide, empty, complex, graph, image."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from weightbase.datasets import DatasetContent, assess_quality, from_graph, from_numpy, from_pandas
from weightbase.datasets.quality import LABEL_NOISE_NEIGHBOURS
from weightbase.datasets.stats import MAX_FEATURE_SUMMARIES
from weightbase.errors import ValidationError


def test_asking_for_an_unknown_part_is_a_key_error() -> None:
    report = assess_quality(from_numpy(np.arange(6.0)[:, None]))
    assert report.part("outliers").name == "outliers"
    with pytest.raises(KeyError):
        report.part("beauty")


@pytest.mark.parametrize("weight", [-0.1, math.inf, math.nan])
def test_weights_must_be_finite_and_not_negative(weight: float) -> None:
    with pytest.raises(ValidationError, match="quality weights must be finite and >= 0"):
        assess_quality(from_numpy(np.eye(3)), weights={"outliers": weight})


def test_a_graph_without_edges_has_no_duplicates_to_measure() -> None:
    part = assess_quality(from_graph(np.empty((0, 2), np.int64), num_nodes=3)).part("duplicates")
    assert part.value is None
    assert part.detail == "the graph has no edges"


def test_samples_without_values_have_no_cells_to_check() -> None:
    report = assess_quality(from_numpy(np.empty((4, 0))))
    missing = report.part("missing_values")
    assert (missing.value, missing.detail) == (None, "no cells to check")
    # four samples with nothing in them are all the same sample
    assert report.part("duplicates").measure == pytest.approx(3 / 4)


def test_missing_timestamps_count_as_missing_cells() -> None:
    frame = pd.DataFrame(
        {
            "at": pd.to_datetime(["2024-01-01", None, "2024-01-03", None]),
            "took": pd.to_timedelta(["1s", "2s", None, "4s"]),
        }
    )
    part = assess_quality(from_pandas(frame)).part("missing_values")
    assert part.measure == pytest.approx(3 / 8)


def test_a_table_without_numeric_features_has_no_outliers_or_label_noise() -> None:
    frame = pd.DataFrame(
        {
            "name": [f"n{i}" for i in range(8)],
            "phase": np.arange(8) * (1 + 1j),  # complex: stored, but not a feature to measure
            "label": ["a", "b"] * 4,
        }
    )
    report = assess_quality(from_pandas(frame, target="label"))
    assert report.part("outliers").detail == "no numeric features"
    assert report.part("label_noise").detail == "no cheap numeric representation of table samples"
    assert report.part("class_imbalance").value == pytest.approx(1.0)


def test_complex_inputs_have_no_outliers_to_measure() -> None:
    x = (np.arange(10) + 1j * np.arange(10))[:, None]
    part = assess_quality(from_numpy(x)).part("outliers")
    assert (part.value, part.detail) == (None, "no numeric features")


def _separated(n: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, width)) + 20.0 * y[:, None]
    return x, y


def test_wide_samples_are_described_by_their_mean_and_std() -> None:
    x, y = _separated(60, MAX_FEATURE_SUMMARIES + 44)
    x[0] = 1e6  # one sample far off: its mean (1e6) and its std (0) both stand out
    report = assess_quality(from_numpy(x, y))
    outliers = report.part("outliers")
    assert outliers.detail.endswith("in mean and std of each sample of x")
    assert outliers.measure == pytest.approx(2 / (2 * 60))


def test_wide_samples_are_projected_for_label_noise() -> None:
    x, y = _separated(60, MAX_FEATURE_SUMMARIES + 44)
    clean = assess_quality(from_numpy(x, y)).part("label_noise")
    assert clean.measure == 0.0
    flipped = y.copy()
    flipped[:6] = 1 - flipped[:6]  # 10% of the labels are wrong
    noisy = assess_quality(from_numpy(x, flipped)).part("label_noise")
    assert noisy.measure == pytest.approx(6 / 60)


def test_label_noise_on_graph_node_features() -> None:
    x, y = _separated(20, 3)
    edges = [[i, (i + 2) % 20] for i in range(20)]
    graph = from_graph(edges, x, node_labels=y)
    part = assess_quality(graph).part("label_noise")
    assert part.measure == 0.0
    unlabelled = assess_quality(from_graph(edges, x)).part("label_noise")
    assert unlabelled.value is None
    complex_features = from_graph(edges, x * 1j, node_labels=y)
    skipped = assess_quality(complex_features).part("label_noise")
    assert skipped.detail == "no cheap numeric representation of graph samples"


def test_label_noise_on_stacked_images() -> None:
    count = 4 * (LABEL_NOISE_NEIGHBOURS + 1)
    labels = np.arange(count) % 2
    images = np.where(labels[:, None, None] == 1, 200, 10).astype(np.uint8) * np.ones(
        (count, 4, 4), np.uint8
    )
    images[:, 0, 0] += np.arange(count, dtype=np.uint8)  # no two images alike
    content = DatasetContent(
        kind="supervised",
        format="image",
        arrays={"images": images, "labels": labels},
        sample_count=count,
        classes=("dark", "light"),
    )
    report = assess_quality(content)
    assert report.part("label_noise").measure == 0.0
    assert report.part("duplicates").measure == 0.0
