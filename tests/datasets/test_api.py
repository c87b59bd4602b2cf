"""The public surface of weightbase.datasets: exactly the intended names, each documented."""

from __future__ import annotations

import weightbase.datasets
from weightbase.datasets import UnreadableFilesError
from weightbase.errors import MalformedFileError, ValidationError

DATASETS_NAMES = [
    "LAYOUT_KEY",
    "AudioClip",
    "ColumnLayout",
    "Dataset",
    "DatasetContent",
    "DatasetFormat",
    "DatasetKind",
    "DatasetRegistry",
    "DatasetStatistics",
    "DatasetVersion",
    "FeatureSummary",
    "Graph",
    "Preprocessing",
    "PreprocessingStep",
    "QualityPart",
    "QualityReport",
    "SplitSpec",
    "Splits",
    "UnreadableFilesError",
    "assess_quality",
    "compute_statistics",
    "from_audio_folder",
    "from_graph",
    "from_image_folder",
    "from_numpy",
    "from_pandas",
    "from_parquet",
    "from_text_folder",
    "split",
]


def test_exported_names_are_exactly_the_intended_ones() -> None:
    exported = weightbase.datasets.__all__
    assert sorted(exported) == sorted(DATASETS_NAMES)
    assert len(set(exported)) == len(exported)


def test_every_public_name_is_documented() -> None:
    for name in weightbase.datasets.__all__:
        value = getattr(weightbase.datasets, name)
        if callable(value):
            assert value.__module__.startswith("weightbase.datasets."), name
            assert value.__doc__, f"{name} has no docstring"


def test_unreadable_files_is_a_validation_error() -> None:
    assert issubclass(UnreadableFilesError, MalformedFileError)
    assert issubclass(UnreadableFilesError, ValidationError)
    assert issubclass(UnreadableFilesError, ValueError)
