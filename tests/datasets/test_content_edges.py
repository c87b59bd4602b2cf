"""DatasetContent on inputs the loaders never make: bad arrays, damaged layouts, wrong formats."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from weightbase.datasets import (
    LAYOUT_KEY,
    AudioClip,
    DatasetContent,
    DatasetFormat,
    DatasetKind,
    from_numpy,
    from_pandas,
)
from weightbase.datasets.content import files_arrays, pcm_bytes, pcm_samples
from weightbase.errors import MalformedFileError, ValidationError


def _tensor(**arrays: np.ndarray) -> DatasetContent:
    return DatasetContent(
        kind=DatasetKind.UNSUPERVISED,
        format=DatasetFormat.TENSOR,
        arrays=arrays,
        sample_count=len(next(iter(arrays.values()))) if arrays else 0,
    )


def test_arrays_must_be_numpy_arrays() -> None:
    with pytest.raises(ValidationError, match="dataset array 'x' is not a NumPy array") as caught:
        _tensor(x=[1, 2, 3])  # type: ignore[arg-type]
    assert caught.value.name == "x"


def test_the_sample_count_cannot_be_negative() -> None:
    with pytest.raises(ValidationError, match="sample_count must be >= 0, got -1"):
        DatasetContent(kind="unsupervised", format="tensor", arrays={}, sample_count=-1)


def test_kind_and_format_may_be_given_as_text() -> None:
    content = DatasetContent(kind="supervised", format="text", arrays={}, sample_count=0)
    assert content.kind is DatasetKind.SUPERVISED
    assert content.format is DatasetFormat.TEXT


def test_repr_and_size() -> None:
    content = from_numpy(np.zeros((4, 3), dtype=np.float32), np.arange(4))
    assert (
        repr(content) == "DatasetContent(kind='supervised', format='tensor', samples=4, arrays=2)"
    )
    assert content.nbytes == 4 * 3 * 4 + 4 * 8


def test_metadata_round_trips_through_from_stored() -> None:
    content = from_numpy(np.eye(3), np.array(["b", "a", "b"]), features=["p", "q", "r"])
    again = DatasetContent.from_stored(dict(content.arrays), content.metadata)
    assert again.metadata == content.metadata
    assert again.classes == ("a", "b")
    assert again.labels().tolist() == ["b", "a", "b"]  # type: ignore[union-attr]


def test_metadata_without_a_layout_is_not_a_dataset() -> None:
    with pytest.raises(MalformedFileError, match=f"no '{LAYOUT_KEY}': not a dataset"):
        DatasetContent.from_stored({}, {"other": "{}"})


def _layout(**changes: object) -> dict[str, str]:
    content = from_numpy(np.eye(2))
    layout = json.loads(content.metadata[LAYOUT_KEY])
    layout.update(changes)
    return {LAYOUT_KEY: json.dumps(layout)}


def test_a_newer_layout_version_is_refused() -> None:
    with pytest.raises(MalformedFileError, match="dataset layout version 2 is not supported"):
        DatasetContent.from_stored({"x": np.eye(2)}, _layout(version=2))


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ({LAYOUT_KEY: "not json"}, "Expecting value"),
        (_layout(kind="clustering"), "'clustering' is not a valid DatasetKind"),
        (_layout(sample_count="many"), "invalid literal for int()"),
        (_layout(features=None), "'NoneType' object is not iterable"),
        (_layout(columns=[{"name": "a", "dtype": "int64"}]), "'encoding'"),
    ],
)
def test_a_damaged_layout_is_malformed(metadata: dict[str, str], reason: str) -> None:
    with pytest.raises(MalformedFileError, match="dataset layout is malformed: ") as caught:
        DatasetContent.from_stored({"x": np.eye(2)}, metadata)
    assert reason in str(caught.value)


def test_files_are_empty_unless_the_dataset_came_from_a_folder() -> None:
    assert from_numpy(np.eye(2)).files == ()
    content = DatasetContent(
        kind="unsupervised",
        format="text",
        arrays=files_arrays(["a/one.txt", "b/two.txt"]),
        sample_count=2,
    )
    assert content.files == ("a/one.txt", "b/two.txt")


def test_class_numbers_outside_the_class_list_are_malformed() -> None:
    content = DatasetContent(
        kind="supervised",
        format="image",
        arrays={"images": np.zeros((2, 1, 1), np.uint8), "labels": np.array([0, 2])},
        sample_count=2,
        classes=("cat", "dog"),
    )
    with pytest.raises(MalformedFileError, match="class numbers fall outside the class list"):
        content.labels()


def test_unknown_columns_are_refused() -> None:
    content = from_pandas(pd.DataFrame({"a": [1, 2], "b": [3, 4]}))
    assert content.to_pandas(columns=["b"])["b"].tolist() == [3, 4]
    with pytest.raises(ValidationError, match=r"no columns \['c', 'd'\] in this table") as caught:
        content.to_pandas(columns=["a", "c", "d"])
    assert caught.value.columns == ["c", "d"]


@pytest.mark.parametrize("read", ["to_pandas", "texts", "images", "audio", "graph"])
def test_reading_as_another_format_is_refused(read: str) -> None:
    content = from_numpy(np.eye(2))
    with pytest.raises(ValidationError, match="this is a tensor dataset, not a ") as caught:
        getattr(content, read)()
    assert caught.value.format == "tensor"


def test_a_tensor_dataset_is_read_as_numpy() -> None:
    table = from_pandas(pd.DataFrame({"a": [1]}))
    with pytest.raises(ValidationError, match="this is a table dataset, not a tensor one"):
        table.to_numpy()


def test_a_missing_array_is_malformed() -> None:
    content = DatasetContent(kind="unsupervised", format="text", arrays={}, sample_count=1)
    with pytest.raises(
        MalformedFileError, match=r"text dataset has no array 'text\.bytes'"
    ) as caught:
        content.texts()
    assert caught.value.name == "text.bytes"


def test_images_stored_one_by_one() -> None:
    first, second = np.zeros((2, 3), np.uint8), np.ones((4, 1, 3), np.uint8)
    content = DatasetContent(
        kind="unsupervised",
        format="image",
        arrays={"image.0": first, "image.1": second},
        sample_count=2,
    )
    images = content.images()
    assert [image.shape for image in images] == [(2, 3), (4, 1, 3)]
    assert images[1].tolist() == second.tolist()


_PCM_RANGES = {
    1: (0, 2**8 - 1),
    2: (-(2**15), 2**15 - 1),
    3: (-(2**23), 2**23 - 1),
    4: (-(2**31), 2**31 - 1),
}


@pytest.mark.parametrize("width", sorted(_PCM_RANGES))
def test_pcm_round_trips_at_every_width(width: int) -> None:
    low, high = _PCM_RANGES[width]
    samples = np.array([[low, high], [0, 1], [high, low]], dtype=np.int64)
    frames = pcm_bytes(samples, width)
    assert len(frames) == samples.size * width
    assert pcm_samples(frames, width, channels=2).tolist() == samples.tolist()


def test_clips_are_written_back_as_wav() -> None:
    clip = AudioClip(np.array([[1, -1], [2, -2]], dtype=np.int16), 8000, 2)
    assert clip.channels == 2
    assert clip.duration == 2 / 8000
    assert AudioClip(clip.samples, 0, 2).duration == 0.0
    wav = clip.to_wav()
    assert wav[:4] == b"RIFF"
    assert wav.endswith(pcm_bytes(clip.samples, 2))


def test_unsupported_pcm_widths_are_refused() -> None:
    with pytest.raises(MalformedFileError, match="WAV sample width 5 bytes is not supported"):
        pcm_samples(b"\0" * 10, 5, channels=1)
    with pytest.raises(ValidationError, match="WAV sample width 8 bytes is not supported"):
        pcm_bytes(np.zeros((1, 1), np.int32), 8)
