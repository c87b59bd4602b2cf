"""Tracking records: metric filters, comparison tables, pages and histories as users see them."""

from __future__ import annotations

import math

import pytest

from weightbase.errors import ValidationError
from weightbase.tracking import MetricFilter, RunStatus, RunTracker
from weightbase.tracking.records import RunComparison, RunPage


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("loss", "<", 1.0, "mean"), "of must be 'last', 'min' or 'max', not 'mean'"),
        (("loss", "<", "1.0"), "a metric filter compares with a number, not '1.0'"),
        (("loss", "<", True), "a metric filter compares with a number, not True"),
        (("loss", "<", math.inf), "a metric filter compares with a finite number: inf"),
        (("loss", "<", math.nan), "a metric filter compares with a finite number: nan"),
    ],
)
def test_bad_metric_filters_are_refused(arguments: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MetricFilter(*arguments)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_filters_come_from_tuples_or_themselves() -> None:
    made = MetricFilter("loss", "<=", 2)
    assert MetricFilter.coerce(made) is made
    assert MetricFilter.coerce(("loss", ">", 0.5, "max")) == MetricFilter("loss", ">", 0.5, "max")


@pytest.mark.parametrize("value", ["loss < 1", ("loss", "<"), ["a", "<", 1, "last", "x"], 3])
def test_anything_else_is_not_a_filter(value: object) -> None:
    with pytest.raises(ValidationError, match=r"not a metric filter: .*; use MetricFilter"):
        MetricFilter.coerce(value)  # type: ignore[arg-type]


def _comparison() -> RunComparison:
    return RunComparison(
        run_ids=(1, 2),
        run_names=("base", None),
        params={
            "lr": (0.001, 0.001),
            "layers": (12, 24),
            "frozen": (True, None),
            "sizes": ([1, 2], {"b": 2, "a": 1}),
        },
        metrics={"loss": (0.123456789, None)},
        differing_params=("layers", "frozen", "sizes"),
    )


def test_a_comparison_table_shows_every_kind_of_value() -> None:
    assert _comparison().to_table() == [
        ["", "1 (base)", "2"],
        ["param:lr", "0.001", "0.001"],
        ["param:layers", "12", "24"],
        ["param:frozen", "true", ""],
        ["param:sizes", "[1, 2]", '{"a": 1, "b": 2}'],
        ["metric:loss", "0.123457", ""],
    ]


def test_a_comparison_table_can_keep_only_the_differences() -> None:
    rows = _comparison().to_table(only_differences=True)
    assert [row[0] for row in rows] == [
        "",
        "param:layers",
        "param:frozen",
        "param:sizes",
        "metric:loss",
    ]


def test_a_comparison_prints_as_aligned_columns() -> None:
    lines = str(_comparison()).splitlines()
    assert lines[0] == "              1 (base)  2"
    assert lines[3] == "param:frozen  true"  # trailing spaces trimmed


def test_a_page_is_a_sequence_of_runs() -> None:
    page = RunPage(runs=(), next_page_token=None)
    assert len(page) == 0
    assert list(page) == []


def test_a_live_run_has_no_duration_and_its_history_is_json(tracker: RunTracker) -> None:
    run = tracker.start("records")
    try:
        run.log({"loss": 1.5}, step=0)
        run.log({"loss": math.nan}, step=1, epoch=0)
        run.flush()
        live = tracker.get(run.id)
        assert live.status is RunStatus.RUNNING
        assert live.duration_seconds is None
        history = tracker.history(run.id, "loss").to_dict()
        run.complete()
    finally:
        run.close()
    assert history["run_id"] == run.id
    assert history["name"] == "loss"
    assert history["steps"] == [0, 1]
    assert history["epochs"] == [None, 0.0]
    assert history["values"] == [1.5, "nan"]
    assert len(history["times"]) == 2
    finished = tracker.get(run.id)
    assert finished.duration_seconds is not None
    assert finished.duration_seconds >= 0
