"""The codec interface: raw chunk bytes in, payload out, and back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from weightbase.errors import IntegrityError
from weightbase.tensors.dtypes import DType

# Anything exposing the buffer protocol: bytes, bytearray, memoryview, mmap, NumPy arrays.
Buffer = bytes | bytearray | memoryview


class Codec(ABC):
    """A lossless transform of one chunk's bytes.

    ``decode(encode(raw, dtype), len(raw), dtype) == raw`` for every input;
    implementations may use ``dtype`` to pick a better layout but must not
    depend on it for correctness beyond its ``itemsize``.
    """

    name: ClassVar[str]
    codec_id: ClassVar[int]

    @abstractmethod
    def encode(self, raw: Buffer, dtype: DType) -> Buffer:
        """Compress ``raw`` (the bytes of whole elements of ``dtype``)."""

    def encode_parts(self, raw: Buffer, dtype: DType) -> list[Buffer]:
        """``encode`` as pieces whose concatenation is the payload.

        Spares a copy where the caller joins the payload with more (a frame
        header). Pieces may be views of ``raw`` or of per-thread scratch
        buffers: join them before this thread encodes again.
        """
        return [self.encode(raw, dtype)]

    @abstractmethod
    def decode(self, payload: Buffer, raw_size: int, dtype: DType) -> Buffer:
        """Restore exactly ``raw_size`` bytes from ``payload``."""

    def decode_into(self, payload: Buffer, out: npt.NDArray[np.uint8], dtype: DType) -> None:
        """Restore ``out.size`` bytes from ``payload`` into ``out``.

        Codecs that can write their output in place override this: it spares a
        buffer of the chunk's size, its page faults and a copy.
        """
        decoded = np.frombuffer(self.decode(payload, out.size, dtype), dtype=np.uint8)
        if decoded.size != out.size:
            raise IntegrityError(f"{self.name} payload decoded to {decoded.size} bytes")
        out[:] = decoded
