"""Turn NumPy arrays, pandas tables, Parquet files, folders and graphs into dataset content.

Each loader reads and checks everything before returning: a folder with unreadable files
raises one ``UnreadableFilesError`` naming every such file, and returns nothing.
"""

from __future__ import annotations

import os
import tokenize
import wave
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np

from weightbase.datasets._extras import require
from weightbase.datasets.content import (
    DatasetContent,
    DatasetFormat,
    DatasetKind,
    files_arrays,
    pcm_samples,
)
from weightbase.datasets.encoding import encode_strings, encode_table
from weightbase.errors import MalformedFileError, ValidationError
from weightbase.tensors.formats import check_inside, check_regular_file

__all__ = [
    "AUDIO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "PARQUET_EXTENSIONS",
    "TEXT_EXTENSIONS",
    "UnreadableFilesError",
    "from_audio_folder",
    "from_csv",
    "from_graph",
    "from_image_folder",
    "from_numpy",
    "from_numpy_file",
    "from_pandas",
    "from_parquet",
    "from_text_folder",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
TEXT_EXTENSIONS = (".txt",)
AUDIO_EXTENSIONS = (".wav",)
PARQUET_EXTENSIONS = (".parquet", ".pq")

_SHOWN_FAILURES = 20
# What numpy.load raises on a damaged .npy or .npz: an empty file ends early (EOFError), a
# damaged header fails to tokenize or parse, a damaged archive is a bad zip or deflate stream
# or asks for a zip version or compression method zipfile does not implement.
_NUMPY_ERRORS = (
    OSError,
    NotImplementedError,
    ValueError,
    EOFError,
    SyntaxError,
    tokenize.TokenError,
    zipfile.BadZipFile,
    zlib.error,
)
_T = TypeVar("_T")


class UnreadableFilesError(MalformedFileError):
    """Files of a dataset that could not be read; ``paths`` and ``reasons`` name each one."""

    paths: tuple[str, ...]
    reasons: dict[str, str]


def _unreadable(where: Path, failures: dict[str, str]) -> UnreadableFilesError:
    lines = [f"  {path}: {reason}" for path, reason in list(failures.items())[:_SHOWN_FAILURES]]
    if len(failures) > _SHOWN_FAILURES:
        lines.append(f"  … and {len(failures) - _SHOWN_FAILURES} more")
    noun = "file" if len(failures) == 1 else "files"
    message = f"{len(failures)} {noun} in {where} could not be read; nothing was loaded:\n"
    return UnreadableFilesError(
        message + "\n".join(lines),
        paths=tuple(failures),
        reasons=dict(failures),
        folder=str(where),
    )


def _kind(kind: DatasetKind | str | None, *, labelled: bool) -> DatasetKind:
    if kind is None:
        return DatasetKind.SUPERVISED if labelled else DatasetKind.UNSUPERVISED
    try:
        return DatasetKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in DatasetKind)
        raise ValidationError(f"unknown dataset kind {kind!r}; one of {choices}") from None


def _no_samples(what: str) -> ValidationError:
    return ValidationError(f"{what} holds no samples; a dataset needs at least one")


# -- arrays and tables -------------------------------------------------------------------


def from_numpy(
    x: Any,
    y: Any = None,
    *,
    kind: DatasetKind | str | None = None,
    features: Sequence[str] | None = None,
    target: str = "y",
) -> DatasetContent:
    """A tensor dataset: ``x`` has one sample per row; ``y`` (optional) one target per row.

    String targets become class numbers into ``classes`` (sorted). ``features`` names the
    columns of a 2-D ``x``.
    """
    inputs = _numeric_array(x, "x")
    if inputs.ndim == 0:
        raise ValidationError("x must have a sample axis, got a scalar")
    count = int(inputs.shape[0])
    if count == 0:
        raise _no_samples("x")
    arrays = {"x": inputs}
    classes: tuple[str, ...] = ()
    if y is not None:
        targets = np.asarray(y)
        if targets.ndim == 0 or targets.shape[0] != count:
            raise ValidationError(
                f"y has shape {targets.shape} but x holds {count} samples", samples=count
            )
        if targets.dtype.kind in "UO":
            names = [str(v) for v in targets.reshape(-1).tolist()]
            classes = tuple(sorted(set(names)))
            numbers = {name: i for i, name in enumerate(classes)}
            targets = np.array([numbers[n] for n in names], dtype=np.int64).reshape(targets.shape)
        arrays["y"] = _numeric_array(targets, "y")
    feature_names = tuple(features or ())
    if feature_names and (inputs.ndim != 2 or len(feature_names) != inputs.shape[1]):
        raise ValidationError(
            f"{len(feature_names)} feature names do not fit x of shape {inputs.shape}",
            features=len(feature_names),
        )
    return DatasetContent(
        kind=_kind(kind, labelled=y is not None),
        format=DatasetFormat.TENSOR,
        arrays=arrays,
        sample_count=count,
        features=feature_names,
        target=target if y is not None else None,
        classes=classes,
    )


def from_numpy_file(
    path: str | os.PathLike[str],
    *,
    target: str | None = None,
    kind: DatasetKind | str | None = None,
) -> DatasetContent:
    """A tensor dataset from a ``.npy`` file (the inputs) or an ``.npz`` archive.

    In an ``.npz`` the inputs are the array ``x`` (else ``X``, else the only array that is
    not the target) and the target is ``target``, else ``y`` when there is one.
    """
    source = Path(path)
    try:
        # opened here: given a path, numpy.load leaks its handle on a damaged .npz
        with open(source, "rb") as stream:
            return _numpy_content(stream, source, target=target, kind=kind)
    except OSError as exc:
        raise ValidationError(f"cannot read {source} with numpy.load: {exc}") from exc


def _numpy_content(
    stream: IO[bytes], source: Path, *, target: str | None, kind: DatasetKind | str | None
) -> DatasetContent:
    try:
        loaded = np.load(stream, allow_pickle=False)
    except _NUMPY_ERRORS as exc:
        raise ValidationError(f"cannot read {source} with numpy.load: {exc}") from exc
    if isinstance(loaded, np.ndarray):
        if target is not None:
            raise ValidationError("a .npy file holds one array: a target needs an .npz")
        return from_numpy(loaded, kind=kind)
    with loaded:
        names = list(loaded.files)
        target_name = target if target is not None else ("y" if "y" in names else None)
        if target_name is not None and target_name not in names:
            raise ValidationError(
                f"{source.name} has no array {target_name!r}; it has {', '.join(names)}"
            )
        inputs = [name for name in names if name != target_name]
        x_name = next((name for name in ("x", "X") if name in inputs), None)
        if x_name is None and len(inputs) == 1:
            x_name = inputs[0]
        if x_name is None:
            raise ValidationError(
                f"{source.name} holds {', '.join(names)}: name the inputs 'x' "
                "(and the target 'y', or name the target)"
            )
        try:  # a member is read (and its zip entry checked) only now
            x = loaded[x_name]
            y = loaded[target_name] if target_name is not None else None
        except _NUMPY_ERRORS as exc:
            raise ValidationError(f"cannot read {source} with numpy.load: {exc}") from exc
        return from_numpy(x, y, kind=kind, target=target_name or "y")


def _numeric_array(value: Any, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biufc":
        raise ValidationError(
            f"{name} has dtype {array.dtype}; a tensor dataset holds numbers or booleans "
            "(use from_pandas for mixed columns)",
            name=name,
        )
    # A copy: the content is checked and summarised now and stored later, and must not
    # change in between when the caller reuses the array.
    return np.array(array, order="C", copy=True)


def from_pandas(
    frame: Any,
    *,
    target: str | None = None,
    kind: DatasetKind | str | None = None,
    index: bool = False,
) -> DatasetContent:
    """A table dataset, one array per column; ``target`` names the label column.

    The row index is not stored (samples are numbered ``0..n-1``); ``index=True`` keeps it
    as leading column(s), as ``frame.reset_index()`` would.
    """
    pd = require("pandas", purpose="a table dataset")
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    if index:
        frame = frame.reset_index()
    if len(frame) == 0:
        raise _no_samples("the table")
    if target is not None and target not in frame.columns:
        raise ValidationError(f"no column {target!r} to use as the target", target=target)
    arrays, columns = encode_table(frame)
    return DatasetContent(
        kind=_kind(kind, labelled=target is not None),
        format=DatasetFormat.TABLE,
        arrays=arrays,
        sample_count=len(frame),
        features=tuple(c.name for c in columns if c.name != target),
        target=target,
        columns=columns,
    )


def from_parquet(
    path: str | os.PathLike[str],
    *,
    target: str | None = None,
    columns: Sequence[str] | None = None,
    kind: DatasetKind | str | None = None,
) -> DatasetContent:
    """A table dataset from a Parquet file (or a folder of Parquet parts)."""
    pd = require("pandas", purpose="reading Parquet")
    require("pyarrow", purpose="reading Parquet")
    source = Path(path)
    if not source.exists():
        raise ValidationError(f"{source} does not exist", path=str(source))
    try:
        frame = pd.read_parquet(source, columns=list(columns) if columns is not None else None)
    except Exception as exc:  # pyarrow raises its own families for corrupt files
        raise _unreadable(source.parent, {str(source): _reason(exc)}) from exc
    return from_pandas(frame, target=target, kind=kind)


def from_csv(
    path: str | os.PathLike[str],
    *,
    target: str | None = None,
    kind: DatasetKind | str | None = None,
) -> DatasetContent:
    """A table dataset from a CSV file with a header row, read by pandas."""
    pd = require("pandas", purpose="reading CSV")
    source = Path(path)
    try:
        frame = pd.read_csv(source)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"cannot read {source} as CSV: {exc}") from exc
    return from_pandas(frame, target=target, kind=kind)


# -- folders -------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _scan(root: Path, extensions: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """Sample files under ``root`` (relative POSIX paths, sorted) and unreadable folders.

    A symlink that leads out of the folder, dangles or loops, and a sample that is not a
    regular file (a FIFO would block the read forever), are refused: ``ValidationError``.
    """
    suffixes = {e.lower() for e in extensions}
    found: list[str] = []
    failures: dict[str, str] = {}

    def on_error(exc: OSError) -> None:
        failures[str(exc.filename)] = _reason(exc)

    for folder, subfolders, names in os.walk(root, onerror=on_error):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in suffixes:
                file = Path(folder) / name
                # as a model folder's import: no link out of the folder, no FIFO or device
                if file.is_symlink():
                    check_inside(root, file)
                check_regular_file(file)
                found.append(file.relative_to(root).as_posix())
    return sorted(found), failures


def _load_folder(
    path: str | os.PathLike[str],
    extensions: Sequence[str],
    labels: bool | None,
    read_one: Callable[[Path], _T],
    what: str,
) -> tuple[list[str], list[_T], list[str] | None]:
    """Read every sample file; all failures are raised together, with their paths."""
    root = Path(path)
    if not root.is_dir():
        raise ValidationError(f"{root} is not a folder", path=str(root))
    relative, failures = _scan(root, extensions)
    samples: list[_T] = []
    for rel in relative:
        file = root / rel
        try:
            samples.append(read_one(file))
        except Exception as exc:  # any decoder failure is the file's fault: report it
            failures[str(file)] = _reason(exc)
    if failures:
        raise _unreadable(root, failures)
    if not relative:
        raise ValidationError(
            f"no {what} files ({', '.join(extensions)}) under {root}", path=str(root)
        )
    in_subfolders = all("/" in rel for rel in relative)
    if labels and not in_subfolders:
        loose = next(rel for rel in relative if "/" not in rel)
        raise ValidationError(
            f"labels come from class subfolders, but {loose} sits directly in {root}",
            path=str(root / loose),
        )
    use_labels = in_subfolders if labels is None else labels
    names = [rel.split("/", 1)[0] for rel in relative] if use_labels else None
    return relative, samples, names


def _label_arrays(names: list[str] | None) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    if names is None:
        return {}, ()
    classes = tuple(sorted(set(names)))
    numbers = {name: i for i, name in enumerate(classes)}
    return {"labels": np.array([numbers[n] for n in names], dtype=np.int64)}, classes


def _folder_content(
    fmt: DatasetFormat,
    kind: DatasetKind | str | None,
    relative: list[str],
    names: list[str] | None,
    arrays: dict[str, np.ndarray],
) -> DatasetContent:
    label_arrays, classes = _label_arrays(names)
    return DatasetContent(
        kind=_kind(kind, labelled=names is not None),
        format=fmt,
        arrays={**arrays, **label_arrays, **files_arrays(relative)},
        sample_count=len(relative),
        target="labels" if names is not None else None,
        classes=classes,
    )


_KEPT_MODES = {"L", "LA", "RGB", "RGBA", "I;16", "I", "F"}


def from_image_folder(
    path: str | os.PathLike[str],
    *,
    labels: bool | None = None,
    mode: str | None = None,
    kind: DatasetKind | str | None = None,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> DatasetContent:
    """An image dataset from a folder; class-per-subfolder layouts give labels.

    Pixels are decoded with Pillow and stored exactly (``mode`` converts every image, e.g.
    ``"RGB"``). Images of one shape are stacked as ``images [N, H, W, C]``.
    ``labels=None`` takes labels when every image sits in a subfolder.
    """
    image_module = require("PIL.Image", purpose="reading images")

    def read(file: Path) -> np.ndarray:
        with image_module.open(file) as opened:
            opened.load()
            image = opened
            if mode is not None:
                image = opened.convert(mode)
            elif opened.mode in ("P", "PA"):
                transparent = opened.mode == "PA" or "transparency" in opened.info
                image = opened.convert("RGBA" if transparent else "RGB")
            elif opened.mode == "1":
                image = opened.convert("L")
            elif opened.mode not in _KEPT_MODES:
                image = opened.convert("RGB")
            return np.ascontiguousarray(np.asarray(image))

    relative, images, names = _load_folder(path, extensions, labels, read, "image")
    shapes = {(image.shape, image.dtype.str) for image in images}
    if len(shapes) == 1:
        arrays = {"images": np.stack(images)}
    else:
        arrays = {f"image.{i}": image for i, image in enumerate(images)}
    return _folder_content(DatasetFormat.IMAGE, kind, relative, names, arrays)


def from_text_folder(
    path: str | os.PathLike[str],
    *,
    labels: bool | None = None,
    encoding: str = "utf-8",
    kind: DatasetKind | str | None = None,
    extensions: Sequence[str] = TEXT_EXTENSIONS,
) -> DatasetContent:
    """A text dataset, one document per file, stored as UTF-8 bytes plus offsets."""

    def read(file: Path) -> str:
        return file.read_bytes().decode(encoding)

    relative, texts, names = _load_folder(path, extensions, labels, read, "text")
    data, offsets, _ = encode_strings(list(texts))
    arrays = {"text.bytes": data, "text.offsets": offsets}
    return _folder_content(DatasetFormat.TEXT, kind, relative, names, arrays)


def from_audio_folder(
    path: str | os.PathLike[str],
    *,
    labels: bool | None = None,
    kind: DatasetKind | str | None = None,
    extensions: Sequence[str] = AUDIO_EXTENSIONS,
) -> DatasetContent:
    """An audio dataset from PCM WAV files, read with the standard ``wave`` module.

    Clips with one channel count and sample width are concatenated into
    ``audio.samples [frames, channels]`` with ``audio.offsets``; otherwise one array each.
    """

    def read(file: Path) -> tuple[np.ndarray, int, int]:
        with wave.open(str(file), "rb") as reader:
            channels, width = reader.getnchannels(), reader.getsampwidth()
            rate, frames = reader.getframerate(), reader.getnframes()
            data = reader.readframes(frames)
        if len(data) != frames * channels * width:
            raise MalformedFileError(
                f"truncated: {len(data)} bytes of {frames * channels * width} expected"
            )
        return pcm_samples(data, width, channels), rate, width

    relative, clips, names = _load_folder(path, extensions, labels, read, "WAV")
    arrays: dict[str, np.ndarray] = {
        "audio.sample_rates": np.array([rate for _, rate, _ in clips], dtype=np.int64),
        "audio.sample_widths": np.array([width for _, _, width in clips], dtype=np.int64),
    }
    if len({(samples.shape[1], width) for samples, _, width in clips}) == 1:
        lengths = [samples.shape[0] for samples, _, _ in clips]
        offsets = np.zeros(len(clips) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        arrays["audio.samples"] = np.concatenate([samples for samples, _, _ in clips])
        arrays["audio.offsets"] = offsets
    else:
        arrays.update({f"clip.{i}": samples for i, (samples, _, _) in enumerate(clips)})
    return _folder_content(DatasetFormat.AUDIO, kind, relative, names, arrays)


# -- graphs --------------------------------------------------------------------------------


def from_graph(
    edges: Any,
    node_features: Any = None,
    *,
    node_labels: Any = None,
    edge_features: Any = None,
    edge_labels: Any = None,
    num_nodes: int | None = None,
    features: Sequence[str] | None = None,
    kind: DatasetKind | str | None = None,
) -> DatasetContent:
    """A graph dataset: samples are nodes, ``edges`` are (source, target) node numbers.

    ``edges`` is a list of pairs ``[E, 2]`` or an edge index ``[2, E]`` (a ``2 x 2``
    array is read as pairs). ``num_nodes`` defaults to the rows of ``node_features``, else
    one more than the largest node number.
    """
    edge_array = np.asarray(edges)
    if edge_array.size == 0:
        edge_array = edge_array.reshape(0, 2)
    if edge_array.ndim != 2 or 2 not in edge_array.shape:
        raise ValidationError(f"edges must be [E, 2] or [2, E], got shape {edge_array.shape}")
    if edge_array.dtype.kind not in "iu":
        raise ValidationError(f"edges must hold integer node numbers, got {edge_array.dtype}")
    edge_index = edge_array.T if edge_array.shape[1] == 2 else edge_array
    edge_index = np.ascontiguousarray(edge_index, dtype=np.int64)
    edge_count = int(edge_index.shape[1])

    arrays: dict[str, np.ndarray] = {"edge_index": edge_index}
    if node_features is not None:
        arrays["node_features"] = _numeric_array(node_features, "node_features")
    if num_nodes is None:
        if "node_features" in arrays:
            num_nodes = int(arrays["node_features"].shape[0])
        else:
            num_nodes = int(edge_index.max()) + 1 if edge_count else 0
    if num_nodes <= 0:
        raise _no_samples("the graph")
    if edge_count and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
        raise ValidationError(f"edges name nodes outside 0..{num_nodes - 1}", num_nodes=num_nodes)
    per_node = {"node_features": node_features, "node_labels": node_labels}
    per_edge = {"edge_features": edge_features, "edge_labels": edge_labels}
    for group, expected in ((per_node, num_nodes), (per_edge, edge_count)):
        for name, value in group.items():
            if value is None:
                continue
            array = arrays.get(name)
            array = _numeric_array(value, name) if array is None else array
            if array.ndim == 0 or array.shape[0] != expected:
                raise ValidationError(
                    f"{name} has shape {array.shape}, expected {expected} rows", name=name
                )
            arrays[name] = array
    names = tuple(features or ())
    if names:
        shape = arrays["node_features"].shape if "node_features" in arrays else None
        if shape is None or len(shape) != 2 or shape[1] != len(names):
            raise ValidationError(f"{len(names)} feature names do not fit node features {shape}")
    labelled = node_labels is not None or edge_labels is not None
    target = "node_labels" if node_labels is not None else "edge_labels" if labelled else None
    return DatasetContent(
        kind=_kind(kind, labelled=labelled),
        format=DatasetFormat.GRAPH,
        arrays=arrays,
        sample_count=num_nodes,
        features=names,
        target=target,
    )
