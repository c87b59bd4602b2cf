"""Fuzzing the dataset loaders: CSV, Parquet, NumPy files, images, WAV and text folders.

Each file is random bytes or a valid file mutated; a loader gives dataset content or
raises a ``WeightbaseError``, never another exception, a hang or a file outside its folder.
"""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image
from tests.fuzz.conftest import Sandbox, fuzz_settings, refused_or
from tests.fuzz.strategies import bytes_like

from weightbase.datasets.loaders import from_audio_folder, from_image_folder, from_text_folder
from weightbase.datasets.sources import from_path

_FRAME = pd.DataFrame({"x": [1.5, 2.0, -3.25], "label": ["a", "b", "a"], "n": [1, 2, 3]})


def _parquet() -> bytes:
    buffer = io.BytesIO()
    _FRAME.to_parquet(buffer)
    return buffer.getvalue()


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.arange(6.0).reshape(3, 2), y=np.array([0, 1, 0]))
    return buffer.getvalue()


def _zip_version(archive: bytes, version: int) -> bytes:
    """``archive`` whose first member says it needs zip ``version`` (x10) to extract."""
    at = archive.index(b"PK\x01\x02") + 6
    return archive[:at] + struct.pack("<H", version) + archive[at + 2 :]


def _npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(6, dtype=np.int16).reshape(2, 3))
    return buffer.getvalue()


def _npy_header(header: bytes) -> bytes:
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _image(fmt: str, mode: str) -> bytes:
    buffer = io.BytesIO()
    pixels = np.arange(4 * 3 * len(mode), dtype=np.uint8).reshape(4, 3, len(mode)).squeeze()
    Image.fromarray(pixels, mode).save(buffer, format=fmt)
    return buffer.getvalue()


def _wav(channels: int, width: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(8000)
        writer.writeframes(bytes(range(channels * width * 5)))
    return buffer.getvalue()


_CSV = _FRAME.to_csv(index=False).encode()
_IMAGES = {
    ".png": _image("PNG", "RGBA"),
    ".bmp": _image("BMP", "RGB"),
    ".gif": _image("GIF", "L"),
    ".jpg": _image("JPEG", "RGB"),
    ".tif": _image("TIFF", "RGB"),
    ".webp": _image("WEBP", "RGB"),
    ".ppm": _image("PPM", "RGB"),
}
_WAVS = [_wav(1, 2), _wav(2, 1), _wav(1, 3), _wav(2, 4)]

CSV_TEXT = (
    bytes_like(_CSV)
    | st.lists(
        st.lists(
            st.sampled_from(["1", "x", "", '"', '"a,b"', "nan", "1e999", "\t", ";"]), max_size=4
        ).map(",".join),
        max_size=5,
    ).map(lambda rows: "\n".join(rows).encode())
    | st.text(max_size=64).map(str.encode)
)


@fuzz_settings(deadline_s=3, scale=0.6)
@given(
    data=st.one_of(
        st.tuples(st.just(".csv"), CSV_TEXT),
        st.tuples(st.just(".parquet"), bytes_like(_parquet())),
        st.tuples(st.just(".npz"), bytes_like(_npz())),
        st.tuples(st.just(".npy"), bytes_like(_npy())),
    ),
    target=st.sampled_from([None, "label", "y", "missing", ""]),
)
# were EOFError, tokenize.TokenError, and zipfile.BadZipFile with a leaked file handle
@example(data=(".npy", b""), target=None)
@example(data=(".npy", _npy_header(b"{'descr': ('<i2',\n")), target=None)
@example(data=(".npz", b"PK\x03\x04junk"), target=None)
@example(data=(".npz", _zip_version(_npz(), 255)), target=None)  # was NotImplementedError
def test_a_table_or_array_file_loads_or_is_refused(
    sandbox: Sandbox, data: tuple[str, bytes], target: str | None
) -> None:
    suffix, content = data
    with sandbox.folder() as folder:
        source = folder / f"data{suffix}"
        source.write_bytes(content)
        refused_or(lambda: from_path(source, target=target))


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    folder = root / "samples"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    return folder


_SUBFOLDER = st.sampled_from(["", "cats/", "dogs/", ".hidden/"])


def _image_files() -> Any:
    one = st.sampled_from(sorted(_IMAGES)).flatmap(
        lambda suffix: st.tuples(_SUBFOLDER, st.just(suffix), bytes_like(_IMAGES[suffix]))
    )
    return st.lists(one, min_size=1, max_size=3).map(
        lambda items: {f"{sub}{i}{suffix}": data for i, (sub, suffix, data) in enumerate(items)}
    )


@fuzz_settings(deadline_s=4, scale=0.6)
@given(files=_image_files(), mode=st.sampled_from([None, "RGB", "L"]))
def test_an_image_folder_loads_or_is_refused(
    sandbox: Sandbox, files: dict[str, bytes], mode: str | None
) -> None:
    with sandbox.folder() as folder:
        samples = _folder(folder, files)
        refused_or(lambda: from_image_folder(samples, mode=mode))


@fuzz_settings(deadline_s=3, scale=0.6)
@given(
    files=st.lists(
        st.tuples(_SUBFOLDER, st.sampled_from(_WAVS).flatmap(bytes_like)), min_size=1, max_size=3
    ).map(lambda items: {f"{sub}{i}.wav": data for i, (sub, data) in enumerate(items)})
)
def test_a_wav_folder_loads_or_is_refused(sandbox: Sandbox, files: dict[str, bytes]) -> None:
    with sandbox.folder() as folder:
        samples = _folder(folder, files)
        refused_or(lambda: from_audio_folder(samples))


@fuzz_settings(deadline_s=3, scale=0.6)
@given(
    files=st.lists(
        st.tuples(_SUBFOLDER, st.binary(max_size=32) | st.text(max_size=16).map(str.encode)),
        min_size=1,
        max_size=3,
    ).map(lambda items: {f"{sub}{i}.txt": data for i, (sub, data) in enumerate(items)}),
    auto=st.booleans(),
)
def test_a_text_folder_loads_or_is_refused(
    sandbox: Sandbox, files: dict[str, bytes], auto: bool
) -> None:
    with sandbox.folder() as folder:
        samples = _folder(folder, files)
        refused_or(lambda: from_path(samples) if auto else from_text_folder(samples))


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz", ".npy"])
def test_an_empty_file_is_refused(sandbox: Sandbox, suffix: str) -> None:
    with sandbox.folder() as folder:
        (folder / f"empty{suffix}").write_bytes(b"")
        assert refused_or(lambda: from_path(folder / f"empty{suffix}")) is None
