"""Fuzzing the pickle scanner: any bytes under any name give a report or a ``WeightbaseError``.

The scanner only reads: pickle opcode streams (valid and not), archives with mutated
members, compressed streams and NumPy headers never run, and never crash it.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import tarfile
from pathlib import Path

import lz4.frame
import numpy as np
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from tests.fuzz.conftest import Sandbox, fuzz_settings, refused_or
from tests.fuzz.strategies import (
    PICKLABLE,
    Payload,
    bytes_like,
    is_valid_pickle,
    mutated_zip,
    pickle_streams,
    zip_of,
)

from weightbase.governance.scan import ScanReport, scan_bytes, scan_path

NAMES = st.sampled_from(
    [
        "model.pkl",
        "model.pt",
        "pytorch_model.bin",
        "weights.npy",
        "arrays.npz",
        "model.safetensors",
        "bundle.zip",
        "bundle.tar",
        "data.gz",
        "config.json",
        "noext",
        "model.joblib",
    ]
)


def _tar_of(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


_ZIPPED = zip_of([("archive/data.pkl", pickle.dumps({"w": 1}, 2)), ("archive/version", b"3\n")])
_NPY = _npy(np.arange(6, dtype=np.float32).reshape(2, 3))
_NPY_OBJECTS = _npy(np.array([{"a": 1}, None], dtype=object))
_COMPRESS = st.sampled_from([gzip.compress, bz2.compress, lzma.compress, lz4.frame.compress])

FILES = (
    st.binary(max_size=256)
    | pickle_streams()
    | st.sampled_from([_ZIPPED]).flatmap(mutated_zip)
    | st.sampled_from([_NPY, _NPY_OBJECTS]).flatmap(bytes_like)
    | st.tuples(_COMPRESS, pickle_streams()).map(lambda pair: pair[0](pair[1]))
    | st.lists(st.tuples(NAMES, pickle_streams()), min_size=1, max_size=3).map(_tar_of)
    | st.lists(st.tuples(NAMES, pickle_streams()), min_size=1, max_size=3).map(zip_of)
    | st.lists(st.tuples(NAMES, st.sampled_from([_ZIPPED])), min_size=1, max_size=2)
    .map(zip_of)
    .map(lambda inner: zip_of([("nested.zip", inner)]))
)


@fuzz_settings(deadline_s=3)
@given(data=FILES, name=NAMES)
@example(data=b"\x80\x05.", name="model.pkl")
@example(data=b"S'\\K'\n.", name="model.pkl")  # was DeprecationWarning: invalid escape '\K'
def test_any_bytes_under_any_name_scan_to_a_report(data: bytes, name: str) -> None:
    event("pickletools-valid" if is_valid_pickle(data) else "not a pickle")
    report = refused_or(lambda: scan_bytes(data, name=name))
    assert report is None or isinstance(report, ScanReport)


@fuzz_settings(deadline_s=3)
@given(value=PICKLABLE, protocol=st.integers(0, pickle.HIGHEST_PROTOCOL), name=NAMES)
def test_a_pickled_call_is_never_clean(value: object, protocol: int, name: str) -> None:
    data = pickle.dumps([value, Payload()], protocol)
    if name.endswith((".npy", ".npz", ".safetensors", ".json", ".zip", ".tar", ".gz")):
        name = "model.pkl"  # those names make the bytes another format, judged as such
    report = scan_bytes(data, name=name)
    assert not report.clean
    if name == "noext" and protocol < 2:
        return  # no pickle suffix, no PROTO opcode: reported as unsupported, not read
    assert any("system" in finding.detail for finding in report.findings), report.findings


@fuzz_settings(deadline_s=5, scale=0.6)
@given(files=st.dictionaries(NAMES, FILES, max_size=4), link=st.booleans())
def test_a_folder_of_any_files_scans_to_a_report(
    sandbox: Sandbox, files: dict[str, bytes], link: bool
) -> None:
    with sandbox.folder() as folder:
        model = folder / "model"
        model.mkdir()
        for name, content in files.items():
            (model / name).write_bytes(content)
        if link:
            (folder / "outside.pkl").write_bytes(pickle.dumps(Payload()))
            (model / "linked.pkl").symlink_to(folder / "outside.pkl")
        report = refused_or(lambda: scan_path(model))
        assert report is None or isinstance(report, ScanReport)


@pytest.mark.parametrize("name", ["model.pkl", "model.pt", "bundle.zip", "x.npy"])
def test_an_empty_file_scans(tmp_path: Path, name: str) -> None:
    refused_or(lambda: scan_bytes(b"", name=name))
