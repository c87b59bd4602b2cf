"""Array encodings that let strings, ragged samples and tables live in the tensor store.

Every encoding yields plain NumPy arrays (numbers and bytes only) and decodes back to
exactly what went in: strings as UTF-8 bytes plus offsets, tables as one array per column.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from weightbase.datasets._extras import require
from weightbase.errors import MalformedFileError, ValidationError

__all__ = [
    "ColumnLayout",
    "decode_blobs",
    "decode_strings",
    "decode_table",
    "encode_blobs",
    "encode_strings",
    "encode_table",
    "string_views",
]

ColumnEncoding = Literal["values", "masked", "strings", "datetime", "timedelta", "categorical"]
_ENCODINGS = ("values", "masked", "strings", "datetime", "timedelta", "categorical")

# Python strings may hold lone surrogates; "surrogatepass" keeps them bit for bit.
_UTF8_ERRORS = "surrogatepass"


# -- strings and byte blobs ------------------------------------------------------------


def encode_blobs(blobs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated bytes (``uint8``) and ``int64`` offsets, ``len(blobs) + 1`` long."""
    lengths = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs))
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8).copy()
    return data, offsets


def decode_blobs(data: np.ndarray, offsets: np.ndarray) -> list[bytes]:
    """The byte strings that :func:`encode_blobs` concatenated."""
    _check_offsets(data, offsets)
    raw = np.ascontiguousarray(data, dtype=np.uint8).tobytes()
    bounds = offsets.tolist()
    return [raw[start:end] for start, end in itertools.pairwise(bounds)]


def encode_strings(
    values: Sequence[str | None],
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """UTF-8 bytes, offsets and a missing mask (``None`` when nothing is missing)."""
    missing = [value is None for value in values]
    blobs = [b"" if value is None else value.encode("utf-8", _UTF8_ERRORS) for value in values]
    data, offsets = encode_blobs(blobs)
    mask = np.array(missing, dtype=np.bool_) if any(missing) else None
    return data, offsets, mask


def decode_strings(
    data: np.ndarray, offsets: np.ndarray, mask: np.ndarray | None = None
) -> list[str | None]:
    """The strings that :func:`encode_strings` encoded, ``None`` where ``mask`` is set."""
    blobs = decode_blobs(data, offsets)
    try:
        texts: list[str | None] = [blob.decode("utf-8", _UTF8_ERRORS) for blob in blobs]
    except UnicodeDecodeError as exc:
        raise MalformedFileError(f"stored text is not valid UTF-8: {exc}") from exc
    if mask is not None:
        if mask.shape != (len(texts),):
            raise MalformedFileError(
                f"a string mask of shape {mask.shape} does not fit {len(texts)} strings"
            )
        for index in np.flatnonzero(mask).tolist():
            texts[index] = None
    return texts


def string_views(data: np.ndarray, offsets: np.ndarray) -> list[bytes]:
    """Each sample's raw bytes (for hashing and lengths) without decoding them."""
    return decode_blobs(data, offsets)


def _check_offsets(data: np.ndarray, offsets: np.ndarray) -> None:
    if offsets.ndim != 1 or offsets.size == 0:
        raise MalformedFileError(f"string offsets must be a non-empty vector, got {offsets.shape}")
    if offsets[0] != 0 or offsets[-1] != data.size or np.any(np.diff(offsets) < 0):
        raise MalformedFileError(
            f"string offsets do not describe {data.size} bytes "
            f"(first {int(offsets[0])}, last {int(offsets[-1])})"
        )


# -- tables ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnLayout:
    """How one table column is stored: its name, pandas dtype and array encoding.

    ``dtype`` is the pandas spelling (``int64``, ``Int64``, ``datetime64[ns, UTC]``,
    ``category``), except for strings, which say their container: ``object``,
    ``string[python]``, ``string[pyarrow]``, ``str[python]``, ``str[pyarrow]`` or
    ``arrow:string``. A categorical column keeps its categories as a nested column.
    """

    name: str
    dtype: str
    encoding: ColumnEncoding
    categories: ColumnLayout | None = None
    ordered: bool = False

    def to_dict(self) -> dict[str, object]:
        doc: dict[str, object] = {"name": self.name, "dtype": self.dtype, "encoding": self.encoding}
        if self.categories is not None:
            doc["categories"] = self.categories.to_dict()
            doc["ordered"] = self.ordered
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ColumnLayout:
        encoding = doc["encoding"]
        if encoding not in _ENCODINGS:
            raise MalformedFileError(f"unknown column encoding {encoding!r}")
        categories = doc.get("categories")
        return cls(
            name=str(doc["name"]),
            dtype=str(doc["dtype"]),
            encoding=encoding,
            categories=cls.from_dict(categories) if categories is not None else None,
            ordered=bool(doc.get("ordered", False)),
        )


def encode_table(frame: Any) -> tuple[dict[str, np.ndarray], tuple[ColumnLayout, ...]]:
    """One array per column (``column.<i>.values``, ``.mask``, ``.bytes``…) and the layouts.

    The row index is not stored: samples are numbered ``0..n-1``.
    """
    pd = require("pandas", purpose="storing a table")
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    names = list(frame.columns)
    for name in names:
        if not isinstance(name, str):
            raise ValidationError(
                f"table column names must be strings, got {name!r}; rename the columns first",
                column=name,
            )
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise ValidationError(f"table columns {duplicated} appear twice", columns=duplicated)
    arrays: dict[str, np.ndarray] = {}
    layouts = []
    for position, name in enumerate(names):
        column_arrays, layout = _encode_column(
            pd, f"column.{position}", name, frame.iloc[:, position]
        )
        arrays.update(column_arrays)
        layouts.append(layout)
    return arrays, tuple(layouts)


def decode_table(
    arrays: Mapping[str, np.ndarray], columns: Sequence[ColumnLayout], *, rows: int
) -> Any:
    """The pandas DataFrame that :func:`encode_table` encoded (with a ``RangeIndex``)."""
    pd = require("pandas", purpose="reading a table")
    data = {}
    for position, layout in enumerate(columns):
        values = _decode_column(pd, arrays, f"column.{position}", layout)
        if len(values) != rows:
            raise MalformedFileError(
                f"column {layout.name!r} holds {len(values)} rows, expected {rows}",
                column=layout.name,
            )
        # A Series with its dtype spelled out: pandas would infer ``str`` from object arrays.
        data[layout.name] = pd.Series(values, dtype=getattr(values, "dtype", None), copy=False)
    return pd.DataFrame(data, index=pd.RangeIndex(rows), columns=[c.name for c in columns])


def _encode_column(
    pd: Any, prefix: str, name: str, series: Any
) -> tuple[dict[str, np.ndarray], ColumnLayout]:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = pd.Series(dtype.categories)
        nested, nested_layout = _encode_column(pd, f"{prefix}.categories", name, categories)
        codes = _owned(series.cat.codes.to_numpy())
        arrays = {f"{prefix}.codes": codes, **nested}
        layout = ColumnLayout(name, "category", "categorical", nested_layout, bool(dtype.ordered))
        return arrays, layout
    if isinstance(dtype, pd.DatetimeTZDtype):
        naive = series.dt.tz_convert("UTC").dt.tz_localize(None)
        ticks = _owned(naive.to_numpy().view(np.int64))
        return {f"{prefix}.values": ticks}, ColumnLayout(name, str(dtype), "datetime")
    if isinstance(dtype, pd.StringDtype):
        container = f"{'str' if _is_nan(dtype.na_value) else 'string'}[{dtype.storage}]"
        return _encode_string_column(pd, prefix, name, series, container)
    if isinstance(dtype, pd.ArrowDtype):
        pa = require("pyarrow", purpose="storing an Arrow-backed column")
        if pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype):
            container = f"arrow:{dtype.pyarrow_dtype}"
            return _encode_string_column(pd, prefix, name, series, container)
        if dtype.numpy_dtype.kind in "biuf":
            return _encode_masked(pd, prefix, name, series, dtype.numpy_dtype)
    elif isinstance(dtype, np.dtype):
        if dtype.kind in "biufc":
            values = _owned(series.to_numpy())
            return {f"{prefix}.values": values}, ColumnLayout(name, str(dtype), "values")
        if dtype.kind in "mM":
            ticks = _owned(series.to_numpy().view(np.int64))
            encoding: ColumnEncoding = "datetime" if dtype.kind == "M" else "timedelta"
            return {f"{prefix}.values": ticks}, ColumnLayout(name, str(dtype), encoding)
        if dtype.kind == "O":
            return _encode_string_column(pd, prefix, name, series, "object")
    elif getattr(dtype, "numpy_dtype", None) is not None and isinstance(
        series.array, pd.arrays.IntegerArray | pd.arrays.FloatingArray | pd.arrays.BooleanArray
    ):
        return _encode_masked(pd, prefix, name, series, dtype.numpy_dtype)
    raise ValidationError(
        f"column {name!r} has dtype {dtype}, which a dataset cannot store; convert it to "
        "numbers, booleans, strings, datetimes or a category first",
        column=name,
        dtype=str(dtype),
    )


def _encode_masked(
    pd: Any, prefix: str, name: str, series: Any, numpy_dtype: np.dtype[Any]
) -> tuple[dict[str, np.ndarray], ColumnLayout]:
    mask = _owned(series.isna().to_numpy(dtype=np.bool_))
    fill = False if numpy_dtype.kind == "b" else 0
    values = _owned(series.to_numpy(dtype=numpy_dtype, na_value=fill))
    arrays = {f"{prefix}.values": values, f"{prefix}.mask": mask}
    return arrays, ColumnLayout(name, str(series.dtype), "masked")


def _encode_string_column(
    pd: Any, prefix: str, name: str, series: Any, container: str
) -> tuple[dict[str, np.ndarray], ColumnLayout]:
    missing = series.isna().to_numpy(dtype=np.bool_)
    items = series.to_numpy(dtype=object)
    texts: list[str | None] = []
    for index, item in enumerate(items.tolist()):
        if missing[index]:
            texts.append(None)
        elif isinstance(item, str):
            texts.append(item)
        else:
            raise ValidationError(
                f"column {name!r} mixes strings with {type(item).__name__} values (row {index}); "
                "a column must hold one type",
                column=name,
                row=index,
            )
    data, offsets, mask = encode_strings(texts)
    arrays = {f"{prefix}.bytes": data, f"{prefix}.offsets": offsets}
    if mask is not None:
        arrays[f"{prefix}.mask"] = mask
    return arrays, ColumnLayout(name, container, "strings")


def _decode_column(
    pd: Any, arrays: Mapping[str, np.ndarray], prefix: str, layout: ColumnLayout
) -> Any:
    def array(suffix: str) -> np.ndarray:
        key = f"{prefix}.{suffix}"
        if key not in arrays:
            raise MalformedFileError(
                f"column {layout.name!r} is missing its array {key!r}", column=layout.name
            )
        return arrays[key]

    encoding = layout.encoding
    if encoding == "values":
        return array("values")
    if encoding in ("datetime", "timedelta"):
        dtype = pd.api.types.pandas_dtype(layout.dtype)
        if isinstance(dtype, pd.DatetimeTZDtype):
            naive = pd.Series(array("values").view(f"M8[{dtype.unit}]"))
            return naive.dt.tz_localize("UTC").dt.tz_convert(dtype.tz).array
        return array("values").view(dtype)
    if encoding == "masked":
        values, mask = array("values"), array("mask").astype(np.bool_)
        dtype = pd.api.types.pandas_dtype(layout.dtype)
        kind = values.dtype.kind
        masked_type = (
            pd.arrays.BooleanArray
            if kind == "b"
            else pd.arrays.FloatingArray
            if kind == "f"
            else pd.arrays.IntegerArray
        )
        masked = masked_type(values.copy(), mask.copy())
        return masked if masked.dtype == dtype else pd.Series(masked).astype(dtype).array
    if encoding == "strings":
        mask_key = f"{prefix}.mask"
        texts = decode_strings(array("bytes"), array("offsets"), arrays.get(mask_key))
        return _string_container(pd, layout.dtype, texts)
    if encoding == "categorical":
        if layout.categories is None:
            raise MalformedFileError(f"column {layout.name!r} has no category layout")
        categories = _decode_column(pd, arrays, f"{prefix}.categories", layout.categories)
        return pd.Categorical.from_codes(
            array("codes"), categories=pd.Index(categories), ordered=layout.ordered
        )
    raise MalformedFileError(f"unknown column encoding {encoding!r}")


def _string_container(pd: Any, container: str, texts: list[str | None]) -> Any:
    if container == "object":
        out = np.empty(len(texts), dtype=object)
        out[:] = texts
        return out
    if container.startswith("arrow:"):
        pa = require("pyarrow", purpose="reading an Arrow-backed column")
        arrow_type = pa.large_string() if container == "arrow:large_string" else pa.string()
        return pd.array(texts, dtype=pd.ArrowDtype(arrow_type))
    family, _, storage = container.partition("[")
    if family not in ("str", "string") or storage.rstrip("]") not in ("python", "pyarrow"):
        raise MalformedFileError(f"unknown string container {container!r}")
    na_value = np.nan if family == "str" else pd.NA
    return pd.array(texts, dtype=pd.StringDtype(storage.rstrip("]"), na_value=na_value))


def _owned(array: np.ndarray) -> np.ndarray:
    """A C-ordered copy: later edits to the DataFrame must not reach stored content."""
    return np.array(array, order="C", copy=True)


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)
