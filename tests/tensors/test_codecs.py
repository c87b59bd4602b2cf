"""Codecs and chunk frames: bytes in, the same bytes out, for every codec and dtype.

Also: real floating-point data (NaN, infinities, denormals, XOR residuals) through
every path of the byte-grouped codec, and corrupt payloads that must raise
``IntegrityError`` or decode to other bytes of the right length, never crash.
"""

from __future__ import annotations

from typing import Any

import blake3
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weightbase.errors import IntegrityError
from weightbase.tensors.chunks import HEADER_SIZE, decode_frame, encode_frame, xor_bytes
from weightbase.tensors.codecs import CODEC_NAMES, Codec, codec_by_name
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
