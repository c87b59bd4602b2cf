"""What a dataset version holds: NumPy arrays for the tensor store, and how to read them back.

``DatasetContent.arrays`` and ``.metadata`` go to ``TensorStore.write`` as they are;
``DatasetContent.from_stored`` turns what ``TensorStore.read`` returns into the record again.
"""

from __future__ import annotations

import io
import itertools
import json
import wave
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np

from weightbase.datasets.encoding import (
    ColumnLayout,
    decode_strings,
    decode_table,
    encode_strings,
)
from weightbase.errors import MalformedFileError, ValidationError
from weightbase.tensors.manifest import validate_name

__all__ = [
    "LAYOUT_KEY",
    "AudioClip",
    "DatasetContent",
    "DatasetFormat",
    "DatasetKind",
    "Graph",
]

LAYOUT_KEY = "weightbase.dataset"
"""The snapshot metadata key whose value (JSON) says how the arrays make a dataset."""

_LAYOUT_VERSION = 1


class DatasetKind(StrEnum):
    """What the data is for."""

    SUPERVISED = "supervised"
    UNSUPERVISED = "unsupervised"
    REINFORCEMENT = "reinforcement"
    META_LEARNING = "meta-learning"


class DatasetFormat(StrEnum):
    """What one sample is."""

    TENSOR = "tensor"
    IMAGE = "image"
    TEXT = "text"
    AUDIO = "audio"
    GRAPH = "graph"
    TABLE = "table"


@dataclass(frozen=True, slots=True, eq=False)
class AudioClip:
    """One decoded WAV file: ``samples`` is ``[frames, channels]``; width in bytes as stored."""

    samples: np.ndarray
    sample_rate: int
    sample_width: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.shape[0] / self.sample_rate if self.sample_rate else 0.0

    def to_wav(self) -> bytes:
        """The clip as a PCM WAV file (the same samples as the file it was read from)."""
        frames = pcm_bytes(self.samples, self.sample_width)
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as writer:
            writer.setnchannels(self.channels)
            writer.setsampwidth(self.sample_width)
            writer.setframerate(self.sample_rate)
            writer.writeframes(frames)
        return buffer.getvalue()


@dataclass(frozen=True, slots=True, eq=False)
class Graph:
    """A graph: ``edge_index`` is ``int64 [2, E]`` (source row, target row) over ``num_nodes``."""

    edge_index: np.ndarray
    num_nodes: int
    node_features: np.ndarray | None = None
    node_labels: np.ndarray | None = None
    edge_features: np.ndarray | None = None
    edge_labels: np.ndarray | None = None

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])


@dataclass(frozen=True, eq=False)  # arrays have no single truth value: compare by identity
class DatasetContent:
    """The arrays of one dataset version and the layout that gives them meaning.

    Array names by format (``<i>`` is a sample or column number):

    - tensor: ``x`` (inputs, first axis = samples), ``y`` (targets, optional)
    - table: ``column.<i>.values`` / ``.mask`` / ``.bytes`` + ``.offsets`` / ``.codes``
    - image: ``images`` (stacked, when every image has one shape) or ``image.<i>``
    - text: ``text.bytes`` + ``text.offsets`` (UTF-8)
    - audio: ``audio.samples`` + ``audio.offsets`` (or ``clip.<i>``),
      ``audio.sample_rates``, ``audio.sample_widths``
    - graph: ``edge_index``, ``node_features``, ``node_labels``, ``edge_features``,
      ``edge_labels``
    - any folder: ``labels`` (class numbers into ``classes``), ``files.bytes`` +
      ``files.offsets`` (each sample's path relative to the folder)
    """

    kind: DatasetKind
    format: DatasetFormat
    arrays: Mapping[str, np.ndarray]
    sample_count: int
    features: tuple[str, ...] = ()
    target: str | None = None
    classes: tuple[str, ...] = ()
    columns: tuple[ColumnLayout, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", DatasetKind(self.kind))
        object.__setattr__(self, "format", DatasetFormat(self.format))
        frozen: dict[str, np.ndarray] = {}
        for name, array in self.arrays.items():
            validate_name(name)
            if not isinstance(array, np.ndarray):
                raise ValidationError(f"dataset array {name!r} is not a NumPy array", name=name)
            view = np.ascontiguousarray(array).view()
            view.flags.writeable = False  # a view: the caller's own array stays writeable
            frozen[name] = view
        object.__setattr__(self, "arrays", MappingProxyType(frozen))
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "columns", tuple(self.columns))
        if self.sample_count < 0:
            raise ValidationError(f"sample_count must be >= 0, got {self.sample_count}")

    def __repr__(self) -> str:
        return (
            f"DatasetContent(kind={self.kind.value!r}, format={self.format.value!r}, "
            f"samples={self.sample_count}, arrays={len(self.arrays)})"
        )

    # -- storing -------------------------------------------------------------------------

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in self.arrays.values())

    @property
    def metadata(self) -> dict[str, str]:
        """Snapshot metadata: the layout as JSON under :data:`LAYOUT_KEY`."""
        layout = {
            "version": _LAYOUT_VERSION,
            "kind": self.kind.value,
            "format": self.format.value,
            "sample_count": self.sample_count,
            "features": list(self.features),
            "target": self.target,
            "classes": list(self.classes),
            "columns": [column.to_dict() for column in self.columns],
        }
        return {LAYOUT_KEY: json.dumps(layout, sort_keys=True, separators=(",", ":"))}

    @classmethod
    def from_stored(
        cls, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]
    ) -> DatasetContent:
        """The content again, from a snapshot's arrays and metadata."""
        if LAYOUT_KEY not in metadata:
            raise MalformedFileError(f"snapshot metadata has no {LAYOUT_KEY!r}: not a dataset")
        try:
            layout = json.loads(metadata[LAYOUT_KEY])
            if layout.get("version") != _LAYOUT_VERSION:
                raise MalformedFileError(
                    f"dataset layout version {layout.get('version')!r} is not supported"
                )
            return cls(
                kind=DatasetKind(layout["kind"]),
                format=DatasetFormat(layout["format"]),
                arrays=arrays,
                sample_count=int(layout["sample_count"]),
                features=tuple(layout["features"]),
                target=layout["target"],
                classes=tuple(layout["classes"]),
                columns=tuple(ColumnLayout.from_dict(c) for c in layout["columns"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, MalformedFileError):
                raise
            raise MalformedFileError(f"dataset layout is malformed: {exc}") from exc

    # -- reading -------------------------------------------------------------------------

    @property
    def files(self) -> tuple[str, ...]:
        """Each sample's source path relative to its folder; empty when not from a folder."""
        if "files.bytes" not in self.arrays:
            return ()
        return tuple(
            str(p) for p in decode_strings(self._get("files.bytes"), self._get("files.offsets"))
        )

    def labels(self) -> np.ndarray | None:
        """The per-sample target: class names for folders, ``y``, the target column…

        ``None`` where the dataset has no per-sample target.
        """
        if self.format is DatasetFormat.TENSOR:
            y = self.arrays.get("y")
            return y if y is None or not self.classes else self._named(y)
        if self.format is DatasetFormat.TABLE:
            if self.target is None:
                return None
            column = self.to_pandas(columns=[self.target])[self.target]
            labels: np.ndarray = np.asarray(column.to_numpy())
            return labels
        if self.format is DatasetFormat.GRAPH:
            return self.arrays.get("node_labels")
        if "labels" not in self.arrays:
            return None
        return self._named(self._get("labels"))

    def _named(self, codes: np.ndarray) -> np.ndarray:
        names = np.array(self.classes, dtype=object)
        if codes.size and (codes.min() < 0 or codes.max() >= len(names)):
            raise MalformedFileError("stored class numbers fall outside the class list")
        named: np.ndarray = names[codes]
        return named

    def to_numpy(self) -> tuple[np.ndarray, np.ndarray | None]:
        """``(x, y)`` of a tensor dataset."""
        self._expect(DatasetFormat.TENSOR)
        return self._get("x"), self.arrays.get("y")

    def to_pandas(self, columns: list[str] | None = None) -> Any:
        """The table as a pandas DataFrame, dtypes and missing values as they went in."""
        self._expect(DatasetFormat.TABLE)
        layouts = self.columns
        if columns is not None:
            unknown = [c for c in columns if c not in {layout.name for layout in layouts}]
            if unknown:
                raise ValidationError(f"no columns {unknown} in this table", columns=unknown)
        frame = decode_table(self.arrays, layouts, rows=self.sample_count)
        return frame if columns is None else frame[columns]

    def texts(self) -> list[str]:
        """The documents of a text dataset."""
        self._expect(DatasetFormat.TEXT)
        texts = decode_strings(self._get("text.bytes"), self._get("text.offsets"))
        return [text or "" for text in texts]

    def images(self) -> list[np.ndarray]:
        """The images as ``[H, W]`` or ``[H, W, C]`` arrays (``PIL.Image.fromarray`` takes them)."""
        self._expect(DatasetFormat.IMAGE)
        if "images" in self.arrays:
            return list(self._get("images"))
        return [self._get(f"image.{i}") for i in range(self.sample_count)]

    def audio(self) -> list[AudioClip]:
        """The clips of an audio dataset."""
        self._expect(DatasetFormat.AUDIO)
        rates = self._get("audio.sample_rates").tolist()
        widths = self._get("audio.sample_widths").tolist()
        if "audio.samples" in self.arrays:
            samples, offsets = self._get("audio.samples"), self._get("audio.offsets").tolist()
            pieces = [samples[a:b] for a, b in itertools.pairwise(offsets)]
        else:
            pieces = [self._get(f"clip.{i}") for i in range(self.sample_count)]
        return [
            AudioClip(piece, int(rate), int(width))
            for piece, rate, width in zip(pieces, rates, widths, strict=True)
        ]

    def graph(self) -> Graph:
        """The graph of a graph dataset."""
        self._expect(DatasetFormat.GRAPH)
        return Graph(
            edge_index=self._get("edge_index"),
            num_nodes=self.sample_count,
            node_features=self.arrays.get("node_features"),
            node_labels=self.arrays.get("node_labels"),
            edge_features=self.arrays.get("edge_features"),
            edge_labels=self.arrays.get("edge_labels"),
        )

    def _expect(self, fmt: DatasetFormat) -> None:
        if self.format is not fmt:
            raise ValidationError(
                f"this is a {self.format.value} dataset, not a {fmt.value} one",
                format=self.format.value,
            )

    def _get(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise MalformedFileError(
                f"{self.format.value} dataset has no array {name!r}", name=name
            ) from None


# -- helpers shared with the loaders -------------------------------------------------------


def files_arrays(paths: list[str]) -> dict[str, np.ndarray]:
    """``files.bytes`` and ``files.offsets`` for these relative paths."""
    data, offsets, _ = encode_strings(list(paths))
    return {"files.bytes": data, "files.offsets": offsets}


def pcm_samples(frames: bytes, sample_width: int, channels: int) -> np.ndarray:
    """WAV frame bytes as ``[frames, channels]``: uint8, int16 or int32 (24-bit widened)."""
    if sample_width == 1:
        flat: np.ndarray = np.frombuffer(frames, dtype=np.uint8)
    elif sample_width == 2:
        flat = np.frombuffer(frames, dtype="<i2").astype(np.int16)
    elif sample_width == 3:
        triples = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        flat = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        flat = np.where(flat >= 1 << 23, flat - (1 << 24), flat).astype(np.int32)
    elif sample_width == 4:
        flat = np.frombuffer(frames, dtype="<i4").astype(np.int32)
    else:
        raise MalformedFileError(f"WAV sample width {sample_width} bytes is not supported")
    return np.ascontiguousarray(flat.reshape(-1, channels))


def pcm_bytes(samples: np.ndarray, sample_width: int) -> bytes:
    """The inverse of :func:`pcm_samples`."""
    flat = np.ascontiguousarray(samples).reshape(-1)
    if sample_width == 1:
        return flat.astype(np.uint8).tobytes()
    if sample_width == 2:
        return flat.astype("<i2").tobytes()
    if sample_width == 3:
        wide = flat.astype("<i4").view(np.uint8).reshape(-1, 4)
        return np.ascontiguousarray(wide[:, :3]).tobytes()
    if sample_width == 4:
        return flat.astype("<i4").tobytes()
    raise ValidationError(f"WAV sample width {sample_width} bytes is not supported")
