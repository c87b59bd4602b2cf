"""Damaged string and table encodings are refused as malformed, never decoded into garbage."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from weightbase.datasets import ColumnLayout, from_pandas
from weightbase.datasets.encoding import (
    decode_strings,
    decode_table,
    encode_strings,
    encode_table,
    string_views,
)
from weightbase.errors import MalformedFileError, ValidationError


def test_invalid_utf8_is_malformed() -> None:
    with pytest.raises(MalformedFileError, match="stored text is not valid UTF-8: "):
        decode_strings(np.frombuffer(b"ok\xff", np.uint8), np.array([0, 2, 3]))


def test_a_mask_of_the_wrong_length_is_malformed() -> None:
    data, offsets, _ = encode_strings(["a", "b", "c"])
    with pytest.raises(MalformedFileError, match=r"mask of shape \(2,\) does not fit 3 strings"):
        decode_strings(data, offsets, np.array([True, False]))


def test_a_mask_marks_missing_strings() -> None:
    data, offsets, mask = encode_strings(["a", None, "c"])
    assert mask is not None
    assert mask.tolist() == [False, True, False]
    assert decode_strings(data, offsets, mask) == ["a", None, "c"]


@pytest.mark.parametrize("offsets", [np.array([], np.int64), np.zeros((2, 2), np.int64)])
def test_offsets_must_be_a_non_empty_vector(offsets: np.ndarray) -> None:
    with pytest.raises(MalformedFileError, match="string offsets must be a non-empty vector"):
        string_views(np.zeros(0, np.uint8), offsets)


def test_string_views_are_the_raw_bytes() -> None:
    data, offsets, _ = encode_strings(["é", "", "xy"])
    assert string_views(data, offsets) == [b"\xc3\xa9", b"", b"xy"]


def test_an_unknown_column_encoding_is_malformed() -> None:
    with pytest.raises(MalformedFileError, match="unknown column encoding 'zstd'"):
        ColumnLayout.from_dict({"name": "a", "dtype": "int64", "encoding": "zstd"})
    layout = ColumnLayout("a", "int64", "zstd")  # type: ignore[arg-type]
    with pytest.raises(MalformedFileError, match="unknown column encoding 'zstd'"):
        decode_table({"column.0.values": np.arange(2)}, [layout], rows=2)


def test_a_layout_round_trips_through_its_dict() -> None:
    layout = ColumnLayout(
        "size", "category", "categorical", ColumnLayout("size", "object", "strings"), True
    )
    assert ColumnLayout.from_dict(layout.to_dict()) == layout


def test_only_data_frames_are_encoded() -> None:
    with pytest.raises(ValidationError, match="expected a pandas DataFrame, got dict"):
        encode_table({"a": [1, 2]})


def test_duplicate_column_names_are_refused() -> None:
    frame = pd.DataFrame([[1, 2, 3]], columns=["a", "b", "a"])
    with pytest.raises(ValidationError, match=r"table columns \['a'\] appear twice") as caught:
        from_pandas(frame)
    assert caught.value.columns == ["a"]


def _table() -> tuple[dict[str, np.ndarray], tuple[ColumnLayout, ...]]:
    frame = pd.DataFrame(
        {
            "n": [1, 2, 3],
            "s": ["x", "y", "z"],
            "c": pd.Categorical(["lo", "hi", "lo"]),
        }
    )
    return encode_table(frame)


def test_a_column_with_the_wrong_row_count_is_malformed() -> None:
    arrays, layouts = _table()
    with pytest.raises(MalformedFileError, match="column 'n' holds 3 rows, expected 4") as caught:
        decode_table(arrays, layouts, rows=4)
    assert caught.value.column == "n"


def test_a_missing_column_array_is_malformed() -> None:
    arrays, layouts = _table()
    del arrays["column.1.offsets"]
    with pytest.raises(
        MalformedFileError, match=r"column 's' is missing its array 'column\.1\.offsets'"
    ):
        decode_table(arrays, layouts, rows=3)


def test_a_categorical_column_needs_its_category_layout() -> None:
    arrays, layouts = _table()
    broken = (*layouts[:2], ColumnLayout("c", "category", "categorical"))
    with pytest.raises(MalformedFileError, match="column 'c' has no category layout"):
        decode_table(arrays, broken, rows=3)


@pytest.mark.parametrize("container", ["bytes[python]", "string[rust]", "str"])
def test_an_unknown_string_container_is_malformed(container: str) -> None:
    arrays, layouts = _table()
    broken = (layouts[0], ColumnLayout("s", container, "strings"), layouts[2])
    with pytest.raises(
        MalformedFileError, match=re.escape(f"unknown string container '{container}'")
    ):
        decode_table(arrays, broken, rows=3)
