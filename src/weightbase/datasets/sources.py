"""Which loader a file or folder needs: its format, by name or by what it holds.

    content = from_path("digits.npz")                    # NumPy: features + labels
    content = from_path("photos/", "image")              # one subfolder per class

:func:`detect_format` looks at a file's extension, or at the files a folder
holds; :func:`from_path` reads the path with the loader of its format.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

from weightbase.datasets.content import DatasetContent
from weightbase.datasets.loaders import (
    AUDIO_EXTENSIONS,
    IMAGE_EXTENSIONS,
    PARQUET_EXTENSIONS,
    TEXT_EXTENSIONS,
    from_audio_folder,
    from_csv,
    from_image_folder,
    from_numpy_file,
    from_parquet,
    from_text_folder,
)
from weightbase.errors import ValidationError

__all__ = ["SourceFormat", "detect_format", "from_path"]


class SourceFormat(StrEnum):
    """How :func:`from_path` reads a file or folder; ``AUTO`` asks :func:`detect_format`."""

    AUTO = "auto"
    NUMPY = "numpy"
    PARQUET = "parquet"
    CSV = "csv"
    IMAGE = "image"
    TEXT = "text"
    AUDIO = "audio"


_FILE_FORMATS = {
    **dict.fromkeys((".npz", ".npy"), SourceFormat.NUMPY),
    **dict.fromkeys(PARQUET_EXTENSIONS, SourceFormat.PARQUET),
    ".csv": SourceFormat.CSV,
}
# A folder is the first of these it holds a file of; Parquet parts before the rest.
_FOLDER_FORMATS = (
    (SourceFormat.PARQUET, PARQUET_EXTENSIONS),
    (SourceFormat.IMAGE, IMAGE_EXTENSIONS),
    (SourceFormat.AUDIO, AUDIO_EXTENSIONS),
    (SourceFormat.TEXT, TEXT_EXTENSIONS),
)
_FOLDER_ONLY = (SourceFormat.IMAGE, SourceFormat.TEXT, SourceFormat.AUDIO)


def detect_format(path: str | os.PathLike[str]) -> SourceFormat:
    """The format of a file by its extension, or of a folder by the files in it."""
    source = Path(path)
    if source.is_file():
        found = _FILE_FORMATS.get(source.suffix.lower())
        if found is None:
            raise ValidationError(
                f"cannot tell the format of {source.name}; say which it is: numpy "
                "(.npz, .npy), parquet, csv, or image, text or audio for a folder"
            )
        return found
    suffixes = {
        item.suffix.lower()
        for item in source.rglob("*")
        if item.is_file() and not item.name.startswith(".")
    }
    for fmt, extensions in _FOLDER_FORMATS:
        if suffixes & set(extensions):
            return fmt
    raise ValidationError(
        f"{source} holds no Parquet, image, audio or text files; say which format it is"
    )


def from_path(
    path: str | os.PathLike[str],
    format: SourceFormat | str = SourceFormat.AUTO,
    *,
    target: str | None = None,
) -> DatasetContent:
    """A file or folder read by the loader for ``format`` (by default detected from ``path``).

    ``target`` names the label column of a CSV or Parquet table, or the label array of an
    ``.npz``; folders take their labels from class subfolders.
    """
    source = Path(path)
    try:
        fmt = SourceFormat(format)
    except ValueError:
        choices = ", ".join(f.value for f in SourceFormat)
        raise ValidationError(f"unknown format {format!r}; one of {choices}") from None
    if not source.exists():
        raise ValidationError(f"{source} does not exist", path=str(source))
    if fmt is SourceFormat.AUTO:
        fmt = detect_format(source)
    if fmt in _FOLDER_ONLY and not source.is_dir():
        raise ValidationError(f"format {fmt.value} reads a folder; {source} is a file")
    if fmt is SourceFormat.NUMPY:
        return from_numpy_file(source, target=target)
    if fmt is SourceFormat.PARQUET:
        return from_parquet(source, target=target)
    if fmt is SourceFormat.CSV:
        return from_csv(source, target=target)
    if fmt is SourceFormat.IMAGE:
        return from_image_folder(source)
    if fmt is SourceFormat.TEXT:
        return from_text_folder(source)
    return from_audio_folder(source)
