"""Statistics on real data: shapes, label distributions, per-feature summaries, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits, load_iris

from weightbase.datasets import (
    DatasetStatistics,
    assess_quality,
    compute_statistics,
    from_audio_folder,
    from_graph,
    from_image_folder,
    from_numpy,
    from_pandas,
    from_text_folder,
)

pd = pytest.importorskip("pandas")


def json_round_trip(stats: DatasetStatistics) -> DatasetStatistics:
    return DatasetStatistics.from_dict(json.loads(json.dumps(stats.to_dict(), allow_nan=False)))


def test_iris_statistics() -> None:
    iris = load_iris()
    stats = compute_statistics(from_numpy(iris.data, iris.target, features=iris.feature_names))
    assert stats.sample_count == 150
    assert stats.input_shape == (4,)
    assert stats.output_shape == ()
    assert dict(stats.label_distribution or {}) == {"0": 50, "1": 50, "2": 50}
    petal = stats.feature("petal length (cm)")
    column = iris.data[:, 2]
    assert petal.kind == "numeric"
    assert (petal.count, petal.missing) == (150, 0)
    assert petal.unique == len(np.unique(column))
    assert petal.mean == pytest.approx(column.mean())
    assert petal.std == pytest.approx(column.std())
    assert (petal.minimum, petal.maximum) == (column.min(), column.max())
    assert stats.target is not None
    assert stats.target.kind == "categorical"
    assert json_round_trip(stats) == stats


def test_regression_target_has_no_label_distribution() -> None:
    diabetes = load_diabetes()
    stats = compute_statistics(from_numpy(diabetes.data, diabetes.target))
    assert stats.label_distribution is None
    assert stats.target is not None
    assert stats.target.kind == "numeric"
    assert stats.target.mean == pytest.approx(diabetes.target.mean())


def test_wide_samples_are_summarised_whole() -> None:
    digits = load_digits()
    stats = compute_statistics(from_numpy(digits.images, digits.target))
    assert stats.input_shape == (8, 8)
    assert [f.name for f in stats.features] == ["x"]  # 64 values per sample: one summary
    narrow = compute_statistics(from_numpy(digits.data, digits.target))
    assert len(narrow.features) == 64
    assert narrow.features[0].name == "x[0]"


def test_table_statistics_count_missing_values_by_type() -> None:
    frame = pd.DataFrame(
        {
            "age": [30.0, np.nan, 50.0, 40.0],
            "visits": pd.array([1, None, 3, 3], dtype="Int64"),
            "city": ["Oslo", None, "Lima", "Oslo"],
            "grade": pd.Categorical(["a", "b", None, "a"]),
            "seen": pd.to_datetime(["2024-01-01", None, "2024-02-01", "2024-01-01"]),
            "label": ["yes", "no", "yes", "yes"],
        }
    )
    stats = compute_statistics(from_pandas(frame, target="label"))
    assert stats.input_shape == (5,)
    assert stats.output_shape == ()
    assert dict(stats.label_distribution or {}) == {"no": 1, "yes": 3}
    by_name = {f.name: f for f in stats.features}
    assert set(by_name) == {"age", "visits", "city", "grade", "seen"}
    assert (by_name["age"].missing, by_name["age"].mean) == (1, 40.0)
    assert (by_name["visits"].missing, by_name["visits"].unique, by_name["visits"].kind) == (
        1,
        2,
        "numeric",
    )
    assert (by_name["city"].kind, by_name["city"].missing, by_name["city"].unique) == (
        "string",
        1,
        2,
    )
    assert (by_name["grade"].kind, by_name["grade"].missing) == ("categorical", 1)
    assert (by_name["seen"].kind, by_name["seen"].missing, by_name["seen"].unique) == (
        "datetime",
        1,
        2,
    )
    assert stats.target is not None
    assert stats.target.name == "label"
    assert json_round_trip(stats) == stats


def test_infinities_stay_out_of_the_moments_and_json() -> None:
    x = np.array([[1.0], [np.inf], [3.0], [np.nan]])
    stats = compute_statistics(from_numpy(x))
    summary = stats.features[0]
    assert (summary.count, summary.missing) == (3, 1)
    assert (summary.mean, summary.maximum) == (2.0, 3.0)
    json.dumps(stats.to_dict(), allow_nan=False)


def test_image_text_and_graph_statistics(tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image")
    for label, value in (("dark", 10), ("light", 240)):
        (tmp_path / "img" / label).mkdir(parents=True)
        for i in range(3):
            pixels = np.full((4, 6, 3), value, dtype=np.uint8)
            image_module.fromarray(pixels).save(tmp_path / "img" / label / f"{i}.png")
    images = compute_statistics(from_image_folder(tmp_path / "img"))
    assert images.input_shape == (4, 6, 3)
    assert dict(images.label_distribution or {}) == {"dark": 3, "light": 3}
    assert images.feature("height").mean == 4
    assert images.feature("channel.2").mean == pytest.approx(125.0)

    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "a.txt").write_text("one two three")
    (tmp_path / "txt" / "b.txt").write_text("")
    texts = compute_statistics(from_text_folder(tmp_path / "txt"))
    assert texts.input_shape is None
    assert texts.label_distribution is None
    assert texts.feature("words").maximum == 3
    assert texts.feature("text").missing == 1

    graph = compute_statistics(
        from_graph([[0, 1], [1, 2], [2, 2]], np.eye(3), node_labels=[0, 1, 1])
    )
    assert graph.sample_count == 3
    assert graph.edge_count == 3
    assert graph.input_shape == (3,)
    assert dict(graph.label_distribution or {}) == {"0": 1, "1": 2}
    assert graph.extra["self_loops"] == 1.0
    assert graph.feature("degree").maximum == 3
    assert json_round_trip(graph) == graph


def every_format(tmp_path: Path) -> list[object]:
    """One small dataset of each format, the awkward layouts included."""
    import wave

    image_module = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    image_module.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)).save(
        tmp_path / "img" / "a.png"
    )
    image_module.fromarray(rng.integers(0, 256, (3, 4), dtype=np.uint8)).save(
        tmp_path / "img" / "b.png"
    )
    (tmp_path / "wav").mkdir()
    for name, channels, width in (("mono.wav", 1, 2), ("stereo.wav", 2, 1)):
        with wave.open(str(tmp_path / "wav" / name), "wb") as writer:
            writer.setnchannels(channels)
            writer.setsampwidth(width)
            writer.setframerate(8000)
            writer.writeframes(
                rng.integers(0, 256, 400 * channels * width, dtype=np.uint8).tobytes()
            )
    (tmp_path / "txt" / "x").mkdir(parents=True)
    (tmp_path / "txt" / "x" / "a.txt").write_text("hello world")
    frame = pd.DataFrame({"a": [1.0, None, 3.0], "b": ["u", "v", None], "t": [True, False, True]})
    return [
        from_numpy(rng.normal(size=(6, 2, 3)), rng.integers(0, 2, (6, 2))),
        from_pandas(frame, target="t"),
        from_image_folder(tmp_path / "img"),
        from_audio_folder(tmp_path / "wav"),
        from_text_folder(tmp_path / "txt"),
        from_graph([[0, 1]], num_nodes=4, edge_labels=[1]),
    ]


def test_every_format_gives_json_statistics_and_quality(tmp_path: Path) -> None:
    for content in every_format(tmp_path):
        stats = compute_statistics(content)  # type: ignore[arg-type]
        assert stats.sample_count == content.sample_count  # type: ignore[attr-defined]
        assert json_round_trip(stats) == stats
        report = assess_quality(content)  # type: ignore[arg-type]
        assert 0.0 <= report.score <= 1.0
        json.dumps(report.to_dict(), allow_nan=False)


def test_edge_labels_give_the_label_distribution_of_an_edge_task() -> None:
    content = from_graph([[0, 1], [1, 2], [2, 0]], edge_labels=[1, 0, 1])
    stats = compute_statistics(content)
    assert dict(stats.label_distribution or {}) == {"0": 1, "1": 2}
    assert stats.output_shape == ()
    assert assess_quality(content).part("class_imbalance").applicable
