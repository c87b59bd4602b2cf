"""Dataset content for the tensor store: loaders, statistics, a quality score and splits.

    from weightbase.datasets import from_numpy, compute_statistics, assess_quality, split
    content = from_numpy(x, y)
    snapshot = store.write(content.arrays, metadata=content.metadata)
    stats, quality = compute_statistics(content), assess_quality(content)
    splits = split(content.sample_count, SplitSpec(seed=1, stratify=True), labels=y)

``wb.datasets`` (:class:`DatasetRegistry`) keeps dataset versions in the
catalog and the tensor store; everything else here knows arrays, files and
formats only. pandas, pyarrow and Pillow (the ``[data]`` extra) are imported
only by the functions that need them.
"""

from weightbase.datasets.content import (
    LAYOUT_KEY,
    AudioClip,
    DatasetContent,
    DatasetFormat,
    DatasetKind,
    Graph,
)
from weightbase.datasets.encoding import ColumnLayout
from weightbase.datasets.loaders import (
    UnreadableFilesError,
    from_audio_folder,
    from_graph,
    from_image_folder,
    from_numpy,
    from_pandas,
    from_parquet,
    from_text_folder,
)
from weightbase.datasets.quality import QualityPart, QualityReport, assess_quality
from weightbase.datasets.service import Dataset, DatasetRegistry, DatasetVersion
from weightbase.datasets.splits import Preprocessing, PreprocessingStep, Splits, SplitSpec, split
from weightbase.datasets.stats import DatasetStatistics, FeatureSummary, compute_statistics

__all__ = [
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
