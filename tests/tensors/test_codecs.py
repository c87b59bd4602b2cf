"""Codecs and chunk frames: bytes in, the same bytes out, for every codec and dtype.

Also: real floating-point data (NaN, infinities, denormals, XOR residuals) through
every path of the byte-grouped codec, compiled kernels and NumPy alike, and
corrupt payloads that must raise ``IntegrityError`` or decode to other bytes of
the right length, never crash.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

import blake3
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weightbase.errors import IntegrityError
from weightbase.tensors.chunks import (
    HEADER_SIZE,
    decode_frame,
    decode_frame_into,
    encode_frame,
    xor_bytes,
)
from weightbase.tensors.codecs import CODEC_NAMES, Codec, _native, codec_by_name
from weightbase.tensors.codecs._bitpack import pack_plane, unpack_plane
from weightbase.tensors.codecs._planes import PlaneLayout, Scratch, merge_planes, split_planes
from weightbase.tensors.codecs.bytegroup import ByteGroupCodec
from weightbase.tensors.dtypes import _ALL, DType, get_dtype

CODECS = [codec_by_name(name) for name in CODEC_NAMES if name not in ("auto", "delta")]
CODEC_IDS = [codec.name for codec in CODECS]
BYTEGROUP = codec_by_name("bytegroup")
FLOATS = [dtype for dtype in _ALL if dtype.is_float]

FAST = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(params=["compiled", "numpy"])
def kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on the compiled kernels, then again on the NumPy fallback."""
    if request.param == "numpy":
        monkeypatch.setattr(_native, "kernels", lambda: None)
    elif _native.kernels() is None:
        pytest.skip("the compiled kernels cannot be built here")
    return str(request.param)


def _digest(raw: bytes) -> str:
    return blake3.blake3(raw).hexdigest()


def _roundtrip(raw: bytes, dtype: DType, codec: Codec, base: bytes | None = None) -> bytes:
    if base is None:
        frame = encode_frame(raw, dtype, codec)
        return bytes(decode_frame(frame))
    frame = encode_frame(raw, dtype, codec, base=(_digest(base), base))
    return bytes(decode_frame(frame, base_raw=base))


def _elements(dtype: DType, max_bytes: int = 1200) -> st.SearchStrategy[bytes]:
    """Random bytes holding whole elements of ``dtype``, empty included."""
    return st.integers(0, max_bytes // dtype.itemsize).flatmap(
        lambda count: st.binary(min_size=count * dtype.itemsize, max_size=count * dtype.itemsize)
    )


def _floats(dtype: DType, values: np.ndarray[Any, Any]) -> bytes:
    """``values`` (float64) as ``dtype``, with NaN, infinities, zeros and denormals mixed in."""
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        data = np.concatenate([values, special]).astype(dtype.numpy).tobytes()
    # The smallest positive denormal and a negative one, by bit pattern.
    width = dtype.itemsize
    denormals = (1).to_bytes(width, "little") + (3 | 1 << (8 * width - 1)).to_bytes(width, "little")
    return data + denormals


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
@pytest.mark.parametrize("dtype", _ALL, ids=[dtype.name for dtype in _ALL])
@FAST
@given(data=st.data())
def test_random_bytes_roundtrip(codec: Codec, dtype: DType, data: st.DataObject) -> None:
    raw = data.draw(_elements(dtype))
    assert _roundtrip(raw, dtype, codec) == raw
    base = data.draw(st.binary(min_size=len(raw), max_size=len(raw)))
    assert _roundtrip(raw, dtype, codec, base) == raw


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
@pytest.mark.parametrize("dtype", FLOATS, ids=[dtype.name for dtype in FLOATS])
@settings(max_examples=15, deadline=None)
@given(
    count=st.integers(0, 3000),
    scale=st.sampled_from([1e-3, 0.02, 1.0, 300.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_float_data_roundtrip(
    codec: Codec, dtype: DType, count: int, scale: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    raw = _floats(dtype, rng.standard_normal(count) * scale)
    assert _roundtrip(raw, dtype, codec) == raw
    # A fine-tune's residual: most values move a little, a few not at all.
    moved = _floats(dtype, rng.standard_normal(count) * scale * (1 + 1e-3))
    assert _roundtrip(moved, dtype, codec, raw) == moved


@pytest.mark.parametrize("prefer", ["ratio", "speed"])
@pytest.mark.parametrize("name", ["F32", "BF16", "F16", "F64", "C64"])
def test_bytegroup_compresses_weights(name: str, prefer: Any) -> None:
    codec = ByteGroupCodec(prefer=prefer)
    dtype = get_dtype(name)
    rng = np.random.default_rng(7)
    raw = _floats(dtype, rng.standard_normal(1 << 16) * 0.02)
    payload = codec.encode(raw, dtype)
    assert len(payload) < 0.9 * len(raw)
    assert bytes(codec.decode(payload, len(raw), dtype)) == raw
    assert bytes(BYTEGROUP.decode(payload, len(raw), dtype)) == raw  # any instance decodes it
    assert bytes(codec.encode(raw, dtype)) == bytes(payload)  # deterministic


def test_bytegroup_residual_compresses() -> None:
    dtype = get_dtype("F32")
    rng = np.random.default_rng(3)
    weights = (rng.standard_normal(1 << 16) * 0.02).astype(np.float32)
    tuned = weights.copy()
    tuned[: 1 << 12] += np.float32(1e-4) * np.sign(rng.standard_normal(1 << 12)).astype(np.float32)
    residual = xor_bytes(tuned.tobytes(), weights.tobytes()).tobytes()
    payload = BYTEGROUP.encode(residual, dtype)
    assert len(payload) < 0.1 * len(residual)
    assert bytes(BYTEGROUP.decode(payload, len(residual), dtype)) == residual


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(np.zeros(5000, np.float32), id="zeros"),
        pytest.param(np.full(5000, 2.5, np.float32), id="constant"),
        pytest.param(np.arange(5000, dtype=np.float32), id="arange"),
        pytest.param(np.array([0.01, -0.02, 1e30, 0.0] * 999, np.float32), id="outliers"),
    ],
)
def test_bytegroup_structured_float32(values: np.ndarray[Any, Any]) -> None:
    dtype = get_dtype("F32")
    raw = values.tobytes()
    for size in (len(raw), len(raw) - 3, 7, 5):  # tails that are not whole elements
        assert (
            bytes(BYTEGROUP.decode(BYTEGROUP.encode(raw[:size], dtype), size, dtype)) == raw[:size]
        )


def test_bytegroup_weights_with_outliers_bit_pack() -> None:
    """A zero or a value past 2 breaks the constant exponent bits: patched, not lost."""
    dtype = get_dtype("BF16")
    rng = np.random.default_rng(11)
    values = rng.standard_normal(1 << 15) * 0.02
    values[[5, 999, 30000]] = [0.0, 3.5, -1e-30]
    raw = _floats(dtype, values)
    payload = BYTEGROUP.encode(raw, dtype)
    assert len(payload) < 0.75 * len(raw)
    assert bytes(BYTEGROUP.decode(payload, len(raw), dtype)) == raw


def _corruptions(payload: bytes, rng: np.random.Generator) -> list[bytes]:
    cases = [payload[: len(payload) // 2], payload[:-1], payload + b"\0", b""]
    for _ in range(24):
        corrupt = bytearray(payload)
        at = int(rng.integers(0, len(payload)))
        corrupt[at] ^= 1 << int(rng.integers(0, 8))
        cases.append(bytes(corrupt))
    return cases


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
@pytest.mark.parametrize("name", ["F32", "BF16", "F16", "F64", "I32", "F8_E4M3"])
@pytest.mark.usefixtures("kernels")
def test_corrupt_payloads_never_crash(codec: Codec, name: str) -> None:
    dtype = get_dtype(name)
    rng = np.random.default_rng(5)
    if dtype.is_float:
        raw = _floats(dtype, rng.standard_normal(4000) * 0.02)
    else:
        raw = rng.integers(0, 50, 4000 * dtype.itemsize, dtype=np.uint8).tobytes()
    payload = bytes(codec.encode(raw, dtype))
    for corrupt in _corruptions(payload, rng):
        try:
            out = codec.decode(corrupt, len(raw), dtype)
        except IntegrityError:
            continue
        assert len(out) == len(raw)


@pytest.mark.parametrize("name", ["F32", "BF16", "F16"])
@pytest.mark.usefixtures("kernels")
def test_bytegroup_corrupt_plane_tables(name: str) -> None:
    """Flips in every byte of the plane table, on weights and on a residual."""
    dtype = get_dtype(name)
    rng = np.random.default_rng(9)
    raw = _floats(dtype, rng.standard_normal(3000) * 0.02)
    moved = _floats(dtype, rng.standard_normal(3000) * 0.02 * (1 + 1e-3))
    for data in (raw, xor_bytes(moved, raw).tobytes()):
        payload = bytes(BYTEGROUP.encode(data, dtype))
        for at in range(min(len(payload), 48)):
            for bit in (0, 3, 7):
                corrupt = bytearray(payload)
                corrupt[at] ^= 1 << bit
                try:
                    out = BYTEGROUP.decode(bytes(corrupt), len(data), dtype)
                except IntegrityError:
                    continue
                assert len(out) == len(data)


def test_corrupt_frame_payload_raises_or_differs() -> None:
    dtype = get_dtype("F32")
    raw = _floats(dtype, np.random.default_rng(1).standard_normal(2000))
    frame = bytearray(encode_frame(raw, dtype, BYTEGROUP))
    frame[HEADER_SIZE + 40] ^= 0xFF
    try:
        out = decode_frame(bytes(frame))
    except IntegrityError:
        return
    assert len(out) == len(raw)
    assert bytes(out) != raw


def test_wrong_raw_size_is_refused() -> None:
    dtype = get_dtype("F32")
    raw = _floats(dtype, np.random.default_rng(2).standard_normal(2000) * 0.02)
    payload = BYTEGROUP.encode(raw, dtype)
    for size in (len(raw) - 4, len(raw) + 4, len(raw) + (1 << 40)):
        with pytest.raises(IntegrityError):
            BYTEGROUP.decode(payload, size, dtype)


def test_xor_bytes() -> None:
    left, right = bytes(range(256)) * 3 + b"abc", bytes(reversed(range(256))) * 3 + b"xyz"
    out = xor_bytes(left, right)
    assert out.tobytes() == bytes(a ^ b for a, b in zip(left, right, strict=True))
    with pytest.raises(IntegrityError):
        xor_bytes(left, right[:-1])


def test_xor_into_and_decode_frame_into_resolve_a_delta_in_place() -> None:
    dtype = get_dtype("F32")
    rng = np.random.default_rng(4)
    base = _floats(dtype, rng.standard_normal(3000) * 0.02)
    tuned = _floats(dtype, rng.standard_normal(3000) * 0.02 * (1 + 1e-3))
    key = encode_frame(base, dtype, BYTEGROUP)
    delta = encode_frame(tuned, dtype, BYTEGROUP, base=(_digest(base), base))
    # a slice of a larger buffer, as when a chunk decodes into its tensor
    output = np.full(len(base) + 16, 0xAB, np.uint8)
    decode_frame_into(key, output[8:-8])
    assert output[8:-8].tobytes() == base
    decode_frame_into(delta, output[8:-8])
    assert output[8:-8].tobytes() == tuned
    assert set(output[:8].tolist()) == set(output[-8:].tolist()) == {0xAB}
    with pytest.raises(IntegrityError):
        decode_frame_into(key, output[:-1])


# -- compiled kernels -----------------------------------------------------------------


def test_compiled_kernels_build_where_they_can(tmp_path: Path) -> None:
    """With cffi, a C compiler and Python's headers, the kernels must build, not fall back."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"], "Python.h")
    buildable = (
        importlib.util.find_spec("cffi") is not None
        and (sys.version_info < (3, 12) or importlib.util.find_spec("setuptools") is not None)
        and shutil.which(compiler) is not None
        and headers.exists()
        and os.environ.get("WEIGHTBASE_NATIVE", "1") != "0"
    )
    if not buildable:
        pytest.skip("no cffi, C compiler or Python headers here")
    assert _native.kernels() is not None
    found = _native.kernels()
    assert found is not None
    with pytest.raises(ValueError, match="buffer"):  # C does not check lengths: Python must
        found.merge2(
            np.zeros(8, np.uint8), np.zeros(8, np.uint8), 5, 0xE01F, np.zeros(15, np.uint8)
        )


def _on_both_paths(monkeypatch: pytest.MonkeyPatch, run: Any) -> tuple[Any, Any]:
    if _native.kernels() is None:
        pytest.skip("the compiled kernels cannot be built here")
    compiled = run()
    with monkeypatch.context() as patch:
        patch.setattr(_native, "kernels", lambda: None)
        fallback = run()
    return compiled, fallback


@settings(max_examples=60, deadline=None)
@given(
    plane=st.binary(max_size=3000),
    step=st.integers(1, 9),
    skew=st.sampled_from([None, 0, 255, 7]),
)
def test_compiled_histogram_matches_bincount(plane: bytes, step: int, skew: int | None) -> None:
    found = _native.kernels()
    if found is None:
        pytest.skip("the compiled kernels cannot be built here")
    values = np.frombuffer(plane, np.uint8).copy()
    if skew is not None:
        values[::3] = skew  # repeated bytes, which the kernel counts in four tables
    counts = found.histogram(values, step)
    assert counts.dtype == np.int64
    assert np.array_equal(counts, np.bincount(values[::step], minlength=256))
    with pytest.raises(ValueError, match="step"):
        found.histogram(values, 0)


@pytest.mark.parametrize("width", [2, 4])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(split=st.integers(1, 8), count=st.integers(1, 700), seed=st.integers(0, 2**32 - 1))
def test_compiled_planes_match_numpy(width: int, split: int, count: int, seed: int) -> None:
    values = np.random.default_rng(seed).integers(0, 256, count * width, dtype=np.uint8)
    layout = PlaneLayout(width, split)

    def run() -> tuple[list[bytes], bytes, bytes]:
        planes = [plane.copy() for plane in split_planes(values, layout, Scratch())]
        merged = np.empty_like(values)
        merge_planes(planes, layout, merged, Scratch())
        low = values.view(np.uint32).astype(np.uint16).view(np.uint8) if width == 4 else None
        from_low = np.empty_like(values)
        merge_planes(planes, layout, from_low, Scratch(), low)
        return [plane.tobytes() for plane in planes], merged.tobytes(), from_low.tobytes()

    with pytest.MonkeyPatch.context() as monkeypatch:
        compiled, fallback = _on_both_paths(monkeypatch, run)
    assert compiled == fallback
    assert compiled[1] == compiled[2] == values.tobytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(1, 5000),
    fixed=st.integers(1, 255),
    broken=st.integers(0, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_compiled_bit_packing_matches_numpy(count: int, fixed: int, broken: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    const = int(rng.integers(0, 256)) & fixed
    plane = (rng.integers(0, 256, count, dtype=np.uint8) & (~fixed & 0xFF)) | const
    plane[rng.integers(0, count, broken)] ^= fixed  # values that break the constant bits

    def run() -> tuple[bytes, bytes] | None:
        packed = pack_plane(plane, Scratch())
        if packed is None:
            return None
        unpacked = unpack_plane(memoryview(packed.data), count, Scratch(), "unpacked")
        return bytes(packed.data), unpacked.tobytes()

    with pytest.MonkeyPatch.context() as monkeypatch:
        compiled, fallback = _on_both_paths(monkeypatch, run)
    assert compiled == fallback
    if compiled is not None:
        assert compiled[1] == plane.tobytes()


@pytest.mark.parametrize("dtype", FLOATS, ids=[dtype.name for dtype in FLOATS])
@settings(max_examples=10, deadline=None)
@given(count=st.integers(0, 3000), seed=st.integers(0, 2**32 - 1))
def test_bytegroup_payloads_are_the_same_on_both_paths(dtype: DType, count: int, seed: int) -> None:
    """Compiled or not, the encoder writes the same payload and either decoder reads it."""
    rng = np.random.default_rng(seed)
    raw = _floats(dtype, rng.standard_normal(count) * 0.02)
    residual = xor_bytes(_floats(dtype, rng.standard_normal(count) * 0.0201), raw).tobytes()
    for data in (raw, residual):

        def run(data: bytes = data) -> bytes:
            return bytes(BYTEGROUP.encode(data, dtype))

        with pytest.MonkeyPatch.context() as monkeypatch:
            compiled, fallback = _on_both_paths(monkeypatch, run)
            assert compiled == fallback
            monkeypatch.setattr(_native, "kernels", lambda: None)
            assert bytes(BYTEGROUP.decode(compiled, len(data), dtype)) == data
        out = np.empty(len(data), np.uint8)
        BYTEGROUP.decode_into(fallback, out, dtype)
        assert out.tobytes() == data


@pytest.mark.parametrize("dtype", FLOATS, ids=[dtype.name for dtype in FLOATS])
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_bytegroup_decode_into_on_both_paths(
    kernels: str, dtype: DType, data: st.DataObject
) -> None:
    raw = data.draw(_elements(dtype, max_bytes=4000))
    payload = BYTEGROUP.encode(raw, dtype)
    out = np.zeros(len(raw) + 2, np.uint8)
    BYTEGROUP.decode_into(payload, out[1:-1], dtype)
    assert out[1:-1].tobytes() == raw
    assert out[0] == out[-1] == 0
