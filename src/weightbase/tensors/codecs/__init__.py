"""Lossless codecs for chunk payloads, and the registry that finds them by name or id.

A codec turns the raw bytes of one chunk into a payload and back, bit for bit.
XOR-delta is not a codec of its own: it is a frame flag applied before a codec
(see ``weightbase.tensors.chunks``), so a delta chunk still names the codec that
compressed the XOR residual.
"""

from __future__ import annotations

from weightbase.errors import ValidationError
from weightbase.tensors.codecs.base import Buffer, Codec
from weightbase.tensors.codecs.basic import LZ4Codec, RawCodec, ZstdCodec
from weightbase.tensors.codecs.bytegroup import ByteGroupCodec

__all__ = ["CODEC_NAMES", "Buffer", "Codec", "codec_by_id", "codec_by_name"]

_CODECS: tuple[Codec, ...] = (RawCodec(), ZstdCodec(), LZ4Codec(), ByteGroupCodec())
_BY_NAME = {codec.name: codec for codec in _CODECS}
_BY_ID = {codec.codec_id: codec for codec in _CODECS}

# Names a caller may ask for: the concrete codecs, plus the two policies the
# writer resolves per tensor ("auto" picks, "delta" = XOR against the parent).
CODEC_NAMES = (*_BY_NAME, "auto", "delta")


def codec_by_name(name: str) -> Codec:
    """The codec called ``name``; ``ValidationError`` naming the choices if unknown."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValidationError(
            f"unknown codec {name!r}; choose one of {', '.join(CODEC_NAMES)}", codec=name
        ) from None


def codec_by_id(codec_id: int) -> Codec:
    """The codec with frame id ``codec_id``."""
    try:
        return _BY_ID[codec_id]
    except KeyError:
        raise ValidationError(f"unknown codec id {codec_id}", codec_id=codec_id) from None
