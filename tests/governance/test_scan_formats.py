"""The scanner on broken, odd and unsupported files: reported, never clean, never raising."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.governance.pickle_corpus import Pickle, hostile_corpus, zip_of

from weightbase.errors import NotFound
from weightbase.governance import scan as scan_module
from weightbase.governance.scan import Finding, FindingKind, ScanReport, scan_bytes, scan_path

HOSTILE = next(c for c in hostile_corpus(Path("/nonexistent")) if c.id == "os.system-inst")


def _kinds(report: ScanReport) -> list[str]:
    return [str(f.kind) for f in report.findings]


def _npy(descr: object, payload: bytes = b"", version: int = 1) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": (2,)}).encode()
    size = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header + payload


# -- files that are not what they seem ---------------------------------------------------------


def test_a_missing_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no file or folder"):
        scan_path(tmp_path / "missing")


def test_unknown_files_are_reported_not_clean(tmp_path: Path) -> None:
    (tmp_path / "modeling_evil.py").write_text("import os")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("hidden folders are not entered")
    report = scan_path(tmp_path)
    (finding,) = report.findings
    assert finding.kind == FindingKind.UNSUPPORTED
    assert finding.path.endswith("modeling_evil.py")
    assert [s.format for s in report.files_scanned] == ["unsupported"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_special_and_unreadable_files_are_reported(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    assert "not a regular file" in scan_path(tmp_path / "pipe").findings[0].detail
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    assert "cannot be read" in scan_path(tmp_path).findings[0].detail


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x04K",  # truncated: an int and no STOP
        b"\x80\x02\xff.",  # an unknown opcode
        b"\x80\x040.",  # POP on an empty stack
        b"\x80\x041.",  # POP_MARK without MARK
        b"\x80\x04(o.",  # OBJ without a class
        b"\x80\x04}(K\x01u.",  # SETITEMS with a key and no value
        b"\x80\x04R.",  # REDUCE on an empty stack
        b"\x80\x04\x94.",  # MEMOIZE with nothing to store
        b"\x80\x04t.",  # TUPLE without MARK
    ],
)
def test_malformed_pickles_are_reported(data: bytes) -> None:
    report = scan_bytes(data, name="broken.pkl")
    assert _kinds(report) == ["malformed"]
    assert report.findings[0].offset is not None


def test_every_opcode_the_unpickler_knows_is_walked() -> None:
    p = Pickle(5)
    p.raw(pickle.EMPTY_SET + pickle.MARK + pickle.NONE + pickle.ADDITEMS + pickle.POP)
    p.raw(pickle.MARK + pickle.NEWTRUE + pickle.FROZENSET + pickle.POP)
    p.raw(pickle.EMPTY_LIST + pickle.NEWFALSE + pickle.APPEND + pickle.POP)
    p.raw(pickle.MARK + pickle.BININT1 + b"\x01" + pickle.LIST + pickle.POP)
    p.raw(pickle.MARK + pickle.EMPTY_LIST + pickle.BININT1 + b"\x02" + pickle.DICT + pickle.POP)
    p.raw(pickle.EMPTY_LIST + pickle.MARK + pickle.NONE + pickle.APPENDS + pickle.POP)
    p.raw(pickle.EMPTY_TUPLE + pickle.MARK + pickle.NONE + pickle.APPENDS + pickle.POP)
    p.raw(pickle.NONE + pickle.DUP + pickle.POP + pickle.POP + pickle.MARK + pickle.POP_MARK)
    p.raw(pickle.PERSID + b"storage\n" + pickle.POP + pickle.NONE + pickle.BINPERSID + pickle.POP)
    p.raw(pickle.NEXT_BUFFER + pickle.READONLY_BUFFER + pickle.POP)
    p.raw(pickle.MARK + pickle.POP)  # POP with an empty stack pops the mark
    p.raw(pickle.BINGET + b"\x63")  # a memo slot never set: an unknown value
    p.raw(pickle.FRAME + struct.pack("<Q", 0))
    report = scan_bytes(p.bytes(), name="odd.pkl")
    assert report.findings == ()


def test_several_pickles_in_a_row_are_all_walked() -> None:
    data = pickle.dumps([1, 2]) + HOSTILE.data.replace(b"(", b"\x80\x02(", 1)
    report = scan_bytes(data, name="two.pkl")
    assert [f.global_name for f in report.findings] == ["os.system"]
    assert report.findings[0].offset is not None
    assert report.findings[0].offset > len(pickle.dumps([1, 2]))
    trailing = scan_bytes(pickle.dumps([1, 2]) + b"not a pickle", name="tail.pkl")
    assert trailing.clean


def test_python_2_names_are_judged_as_python_3_ones() -> None:
    p = Pickle(2)
    p.global_("copy_reg", "_reconstructor")
    p.raw(pickle.POP)
    p.global_("__builtin__", "set")
    p.raw(pickle.POP)
    p.global_("__builtin__", "xrange")  # Python 2's name for range
    p.raw(pickle.POP + pickle.NONE)
    assert scan_bytes(p.bytes()).clean


def test_torch_legacy_magic_with_a_truncated_tail() -> None:
    legacy = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + b"\x80\x02K"
    report = scan_bytes(legacy, name="old.pt")
    assert _kinds(report) == ["malformed"]
    assert report.files_scanned[0].format == "torch-legacy"


# -- NumPy, safetensors -----------------------------------------------------------------------


def test_npy_object_arrays_are_walked_as_pickles(tmp_path: Path) -> None:
    np.save(tmp_path / "objects.npy", np.array([1, "x"], dtype=object), allow_pickle=True)
    assert scan_path(tmp_path / "objects.npy").clean
    hostile = _npy("|O", HOSTILE.data)
    (finding,) = scan_bytes(hostile, name="evil.npy").findings
    assert finding.global_name == "os.system"
    structured = _npy([("a", "<f8"), ("b", [("c", "|O")])], HOSTILE.data, version=2)
    assert _kinds(scan_bytes(structured, name="s.npy")) == ["unsafe_global"]
    assert scan_bytes(_npy([("a", "<f8")], b"\0" * 16), name="plain.npy").clean


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x93NUMPY\x09\x00", "unknown format version"),
        (b"\x93NUMPY\x01\x00\x05", "ends early"),
        (b"\x93NUMPY\x01\x00\x10\x00{'descr'", "cut short"),
        (b"\x93NUMPY\x01\x00\x05\x00{'a':", "not a literal"),
        (b"\x93NUMPY\x01\x00\x04\x00[1,]", "no descr"),
        (_npy(3), "no known form"),
    ],
)
def test_malformed_npy_headers_are_reported(data: bytes, message: str) -> None:
    (finding,) = scan_bytes(data, name="x.npy").findings
    assert finding.kind == FindingKind.MALFORMED
    assert message in finding.detail


def test_safetensors_headers_are_checked_by_the_store_parser() -> None:
    header = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    good = struct.pack("<Q", len(header)) + header + b"\0" * 8
    report = scan_bytes(good, name="model.safetensors")
    assert report.clean
    assert report.files_scanned[0].format == "safetensors"
    assert scan_bytes(good, name="renamed").clean  # recognised by its first bytes
    short = struct.pack("<Q", len(header)) + header + b"\0" * 4
    (finding,) = scan_bytes(short, name="model.safetensors").findings
    assert finding.kind == FindingKind.MALFORMED
    assert "fall outside the 4 data bytes" in finding.detail
    assert _kinds(scan_bytes(b"\x01", name="tiny.safetensors")) == ["malformed"]


# -- archives and compressed streams ----------------------------------------------------------


def test_archives_nested_past_the_limit_are_reported() -> None:
    data = HOSTILE.data
    for level in range(6):
        data = zip_of({f"level{level}.zip" if level else "evil.pkl": data})
    report = scan_bytes(data, name="deep.zip", max_depth=3)
    (finding,) = report.findings
    assert finding.kind == FindingKind.TOO_DEEP
    assert finding.member == "level5.zip!level4.zip!level3.zip"
    (flagged,) = scan_bytes(data, name="deep.zip", max_depth=8).findings
    assert flagged.global_name == "os.system"
    gz = gzip.compress(gzip.compress(HOSTILE.data))
    assert _kinds(scan_bytes(gz, name="x.pkl.gz.gz", max_depth=1)) == ["too_deep"]


def test_compressed_pickles_are_scanned_inside() -> None:
    report = scan_bytes(gzip.compress(HOSTILE.data), name="evil.pkl.gz")
    (finding,) = report.findings
    assert (finding.member, finding.global_name) == ("evil.pkl", "os.system")
    assert [s.format for s in report.files_scanned] == ["gzip", "pickle"]
    broken = scan_bytes(b"\x1f\x8b\x08\x00garbage" * 4, name="x.gz")
    assert _kinds(broken) == ["malformed"]


def test_broken_archives_and_links_in_tars_are_reported() -> None:
    assert _kinds(scan_bytes(b"PK\x03\x04" + b"\0" * 40, name="x.zip")) == ["malformed"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        link = tarfile.TarInfo("weights.pt")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
        folder = tarfile.TarInfo("folder")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
    (finding,) = scan_bytes(buffer.getvalue(), name="x.tar").findings
    assert (finding.kind, finding.member) == (FindingKind.UNSUPPORTED, "weights.pt")


def test_members_too_large_to_copy_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_module, "MAX_MEMBER_BYTES", 10)
    in_zip = scan_bytes(zip_of({"big.pkl": pickle.dumps(list(range(50)))}), name="x.zip")
    assert "not scanned" in in_zip.findings[0].detail
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("big.pkl")
        info.size = 40
        archive.addfile(info, io.BytesIO(b"\0" * 40))
    assert _kinds(scan_bytes(buffer.getvalue(), name="x.tar")) == ["unsupported"]
    compressed = scan_bytes(gzip.compress(b"\0" * (2 << 20)), name="x.gz")
    assert "decompresses past" in compressed.findings[0].detail


# -- joblib's raw arrays ----------------------------------------------------------------------


def _joblib_wrapper(state: bytes, after: bytes) -> bytes:
    p = Pickle(4)
    p.stack_global("joblib.numpy_pickle", "NumpyArrayWrapper")
    p.raw(pickle.EMPTY_TUPLE + pickle.NEWOBJ)
    p.raw(state + pickle.BUILD)
    return p.bytes()[:-1] + after + pickle.STOP


def _wrapper_state(
    code: str, shape: tuple[int, ...], *, aligned: bool, fields: bool = False, call: bool = True
) -> bytes:
    p = Pickle(4)
    p.raw(pickle.EMPTY_DICT + pickle.MARK)
    p.text("shape")
    p.raw(pickle.MARK + b"".join(pickle.BININT1 + bytes([n]) for n in shape) + pickle.TUPLE)
    p.text("dtype")
    if not call:
        p.text(code)
    else:
        p.stack_global("numpy", "dtype")
        p.raw(pickle.MARK)
        p.text(code)
        p.raw(pickle.NEWFALSE + pickle.NEWTRUE + pickle.TUPLE + pickle.REDUCE)
    if fields:  # a structured dtype: its fields come in BUILD's state
        p.raw(pickle.MARK + pickle.BININT1 + b"\x03" + pickle.NONE * 2 + pickle.EMPTY_DICT)
        p.raw(pickle.TUPLE + pickle.BUILD)
    if aligned:
        p.text("numpy_array_alignment_bytes")
        p.raw(pickle.BININT1 + b"\x10")
    p.raw(pickle.SETITEMS)
    return bytes(p.parts[2:])


def test_joblib_arrays_are_skipped_as_joblib_reads_them() -> None:
    aligned = _joblib_wrapper(
        _wrapper_state("<f8", (2,), aligned=True), b"\x02\xff\xff" + b"\1" * 16
    )
    assert scan_bytes(aligned, name="a.joblib").clean
    unaligned = _joblib_wrapper(_wrapper_state("i4", (1,), aligned=False), b"\0\0\0\0")
    assert scan_bytes(unaligned, name="b.joblib").clean


@pytest.mark.parametrize(
    ("state", "after", "message"),
    [
        (_wrapper_state("<f8", (2,), aligned=True), b"\x02\xff\xff" + b"\1" * 3, "ends inside"),
        (_wrapper_state("<f8", (2,), aligned=True), b"K", "without its padding"),
        (_wrapper_state("i1", (1,), aligned=False), b"c", "reads as code"),
        (_wrapper_state("<U", (1,), aligned=False), b"", "cannot be worked out"),
        (_wrapper_state("", (1,), aligned=False), b"", "cannot be worked out"),
        (_wrapper_state("|O", (1,), aligned=False), b"\x80\x04K", "does not end"),
        (_wrapper_state("<f8", (1,), aligned=False, call=False), b"", "cannot be worked out"),
        (_wrapper_state("V16", (1,), aligned=False, fields=True), b"", "cannot be worked out"),
        (pickle.NONE, b"", "cannot be worked out"),
        (pickle.EMPTY_DICT, b"", "cannot be worked out"),
    ],
)
def test_joblib_arrays_that_cannot_be_skipped_are_malformed(
    state: bytes, after: bytes, message: str
) -> None:
    report = scan_bytes(_joblib_wrapper(state, after), name="x.joblib")
    assert "malformed" in _kinds(report)
    assert any(message in f.detail for f in report.findings)


# -- records and properties -------------------------------------------------------------------


def test_records_read_back_as_plain_data() -> None:
    finding = Finding(FindingKind.UNSUPPORTED, "a/b.py", "not scanned")
    assert (finding.global_name, finding.location) == (None, "a/b.py")
    report = ScanReport("a", (finding,), ())
    assert report.to_dict() == {
        "target": "a",
        "clean": False,
        "findings": [finding.to_dict()],
        "files_scanned": [],
    }


SUFFIXES = ["x.pkl", "x.pt", "x.bin", "x.joblib", "x.npy", "x.safetensors", "x.zip", "x.dat"]
OPCODE_BYTES = st.sampled_from(
    [bytes([b]) for b in b"().0123NIJKLMRTUVXabcdeghijklopqrstu}]\x80\x81\x82\x85\x86\x87"]
    + [b"\x88\x89\x8c\x01a", b"\x8c\x02os", b"\x8c\x06system", b"\x93", b"\x94", b"\x95"]
    + [b"cos\nsystem\n", b"ios\nsystem\n", b"\x8c\x01b\x94", b"h\x00", b"\x8f", b"\x90", b"\x91"]
)


@given(data=st.binary(max_size=600), name=st.sampled_from(SUFFIXES))
def test_random_bytes_give_a_report_never_an_exception(data: bytes, name: str) -> None:
    report = scan_bytes(data, name=name)
    assert isinstance(report, ScanReport)
    assert report.clean == (not report.findings)


@given(ops=st.lists(OPCODE_BYTES, max_size=60), protocol=st.integers(0, 5))
def test_random_opcode_streams_give_a_report_never_an_exception(
    ops: list[bytes], protocol: int
) -> None:
    data = b"\x80" + bytes([protocol]) + b"".join(ops) + b"."
    report = scan_bytes(data, name="soup.pkl")
    for finding in report.findings:
        assert finding.offset is None or 0 <= finding.offset <= len(data)
        assert finding.path == "soup.pkl"
