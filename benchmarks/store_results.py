"""What the store benchmark reports: one frozen record per measurement, and their JSON.

``benchmarks.store`` measures and fills these; ``benchmarks.report`` renders them,
and ``summary()``/``details()`` are the keys of ``python -m benchmarks store --json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from benchmarks.timing import MB, Timing

if TYPE_CHECKING:
    from benchmarks.store import StoreConfig

__all__ = [
    "TOOLS",
    "CompressionResult",
    "DedupResult",
    "DeltaResult",
    "ReadResult",
    "StoreResults",
    "WriteResult",
    "WriteTimings",
]

#: The compressors measurement 4 compares, in report order.
TOOLS = ("weightbase", "zipnn", "zstd")


@dataclass(frozen=True, slots=True)
class WriteTimings:
    """One series of interleaved write rounds: weightbase (fresh store, then again) and anchors."""

    weightbase: Timing
    rewrite: Timing
    safetensors: Timing
    torch_save: Timing

    def to_dict(self, nbytes: int) -> dict[str, object]:
        steps = {
            "weightbase": self.weightbase,
            "rewrite": self.rewrite,
            "safetensors": self.safetensors,
            "torch_save": self.torch_save,
        }
        out: dict[str, object] = {f"{k}_mb_s": t.rate(nbytes) for k, t in steps.items()}
        out.update({k: t.to_dict() for k, t in steps.items()})
        return out


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Measurements 1 and 2, onto new disk blocks and into blocks just freed.

    This machine's virtual disk writes blocks a deleted file has just freed several
    times faster than new ones, so the two are measured apart; the headline numbers
    use new blocks, where the disk runs at the speed it sustains.
    """

    nbytes: int
    stored_bytes: int
    new_blocks: WriteTimings
    reused_blocks: WriteTimings

    def to_dict(self) -> dict[str, object]:
        return {
            "raw_bytes": self.nbytes,
            "stored_bytes": self.stored_bytes,
            "stored_ratio": self.stored_bytes / self.nbytes,
            "new_blocks": self.new_blocks.to_dict(self.nbytes),
            "reused_blocks": self.reused_blocks.to_dict(self.nbytes),
        }


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Measurement 3: whole state dict to torch tensors, and one tensor of it."""

    nbytes: int
    one_tensor_bytes: int
    weightbase: Timing
    torch_load: Timing
    safetensors: Timing
    one_weightbase: Timing
    one_safetensors: Timing

    def to_dict(self) -> dict[str, object]:
        return {
            "raw_bytes": self.nbytes,
            "one_tensor_bytes": self.one_tensor_bytes,
            "weightbase_mb_s": self.weightbase.rate(self.nbytes),
            "torch_load_mb_s": self.torch_load.rate(self.nbytes),
            "safetensors_mb_s": self.safetensors.rate(self.nbytes),
            "one_weightbase_ms": self.one_weightbase.median * 1e3,
            "one_safetensors_ms": self.one_safetensors.median * 1e3,
            "weightbase": self.weightbase.to_dict(),
            "torch_load": self.torch_load.to_dict(),
            "safetensors": self.safetensors.to_dict(),
            "one_weightbase": self.one_weightbase.to_dict(),
            "one_safetensors": self.one_safetensors.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class CompressionResult:
    """Measurement 4 for one dtype: stored sizes and codec speeds on MiniLM's weights."""

    dtype: str
    raw_bytes: int
    stored: Mapping[str, int]  # tool -> compressed bytes
    compress: Mapping[str, Timing]  # tool -> time for all tensors
    decompress: Mapping[str, Timing]

    def ratio(self, tool: str) -> float:
        return self.stored[tool] / self.raw_bytes

    def to_dict(self) -> dict[str, object]:
        return {
            "raw_bytes": self.raw_bytes,
            "stored_bytes": dict(self.stored),
            "ratio": {tool: self.ratio(tool) for tool in self.stored},
            "compress_mb_s": {t: x.rate(self.raw_bytes) for t, x in self.compress.items()},
            "decompress_mb_s": {t: x.rate(self.raw_bytes) for t, x in self.decompress.items()},
            "compress": {tool: timing.to_dict() for tool, timing in self.compress.items()},
            "decompress": {tool: timing.to_dict() for tool, timing in self.decompress.items()},
        }


@dataclass(frozen=True, slots=True)
class DeltaResult:
    """Measurement 5: a fine-tuned snapshot stored against its original, and alone."""

    raw_bytes: int
    delta_new_bytes: int
    whole_new_bytes: int
    tensors: int
    tensors_changed: int
    delta_chunks: int
    reused_chunks: int
    steps: int
    losses: tuple[float, ...]
    delta_write_s: float
    whole_write_s: float

    @property
    def delta_ratio(self) -> float:
        return self.delta_new_bytes / self.raw_bytes

    @property
    def whole_ratio(self) -> float:
        return self.whole_new_bytes / self.raw_bytes

    def to_dict(self) -> dict[str, object]:
        return {
            "raw_bytes": self.raw_bytes,
            "delta_new_bytes": self.delta_new_bytes,
            "whole_new_bytes": self.whole_new_bytes,
            "delta_ratio": self.delta_ratio,
            "whole_ratio": self.whole_ratio,
            "tensors": self.tensors,
            "tensors_changed": self.tensors_changed,
            "delta_chunks": self.delta_chunks,
            "reused_chunks": self.reused_chunks,
            "steps": self.steps,
            "losses": [round(loss, 5) for loss in self.losses],
            "delta_write_s": self.delta_write_s,
            "whole_write_s": self.whole_write_s,
        }


@dataclass(frozen=True, slots=True)
class DedupResult:
    """Measurement 6: snapshots that share most tensors with a base, against ideal dedup."""

    variants: int
    tensors: int
    changed_per_variant: int
    logical_bytes: int  # every snapshot's raw bytes, added up
    chunk_bytes: int  # every chunk object in the store
    ideal_bytes: int  # the base once, plus each variant's new tensors stored alone
    metadata_bytes: int  # manifests, refs and the content index, not counted in the ratio

    @property
    def overhead(self) -> float:
        return self.chunk_bytes / self.ideal_bytes

    def to_dict(self) -> dict[str, object]:
        return {
            "variants": self.variants,
            "tensors": self.tensors,
            "changed_per_variant": self.changed_per_variant,
            "logical_bytes": self.logical_bytes,
            "chunk_bytes": self.chunk_bytes,
            "ideal_bytes": self.ideal_bytes,
            "metadata_bytes": self.metadata_bytes,
            "overhead": self.overhead,
        }


@dataclass(frozen=True, slots=True)
class StoreResults:
    """Everything ``python -m benchmarks store`` measured."""

    config: StoreConfig
    write: WriteResult
    read: ReadResult
    compression: tuple[CompressionResult, ...]
    delta: DeltaResult
    dedup: DedupResult
    # benchmarks.training_overhead.measure_checkpoint_stall: its two keys join the summary
    checkpoints: Mapping[str, float] = field(default_factory=dict)

    def by_dtype(self, dtype: str) -> CompressionResult:
        return next(result for result in self.compression if result.dtype == dtype)

    def aggregate_rate(self, phase: Literal["compress", "decompress"], tool: str) -> float:
        """MB/s over all dtypes together: total raw bytes over total median time."""
        raw = sum(result.raw_bytes for result in self.compression)
        seconds = sum(
            (result.compress if phase == "compress" else result.decompress)[tool].median
            for result in self.compression
        )
        return raw / seconds / MB

    def summary(self) -> dict[str, float]:
        """The headline ratios: speeds weightbase ÷ anchor (> 1: faster), sizes stored ÷ raw."""
        write, read = self.write.new_blocks, self.read
        values = {
            "write_speedup_vs_safetensors": write.safetensors.median / write.weightbase.median,
            "rewrite_speedup_vs_safetensors": write.safetensors.median / write.rewrite.median,
            "read_speedup_vs_torch_load": read.torch_load.median / read.weightbase.median,
            "one_tensor_time_vs_safetensors": (
                read.one_weightbase.median / read.one_safetensors.median
            ),
            "ratio_fp32": self.by_dtype("fp32").ratio("weightbase"),
            "ratio_bf16": self.by_dtype("bf16").ratio("weightbase"),
            "ratio_fp16": self.by_dtype("fp16").ratio("weightbase"),
            "zipnn_ratio_fp32": self.by_dtype("fp32").ratio("zipnn"),
            "zipnn_ratio_bf16": self.by_dtype("bf16").ratio("zipnn"),
            "zipnn_ratio_fp16": self.by_dtype("fp16").ratio("zipnn"),
            "compress_speedup_vs_zipnn": (
                self.aggregate_rate("compress", "weightbase")
                / self.aggregate_rate("compress", "zipnn")
            ),
            "decompress_speedup_vs_zipnn": (
                self.aggregate_rate("decompress", "weightbase")
                / self.aggregate_rate("decompress", "zipnn")
            ),
            "delta_ratio": self.delta.delta_ratio,
            "dedup_overhead": self.dedup.overhead,
        }
        values.update(
            {
                key: self.checkpoints[key]
                for key in ("checkpoint_stall_vs_torch_save", "register_new_bytes")
                if key in self.checkpoints
            }
        )
        return {key: round(value, 4) for key, value in values.items()}

    def details(self) -> dict[str, object]:
        return {
            "config": self.config.to_dict(),
            "write": self.write.to_dict(),
            "read": self.read.to_dict(),
            "compression": {result.dtype: result.to_dict() for result in self.compression},
            "compression_all_dtypes_mb_s": {
                "compress": {tool: self.aggregate_rate("compress", tool) for tool in TOOLS},
                "decompress": {tool: self.aggregate_rate("decompress", tool) for tool in TOOLS},
            },
            "delta": self.delta.to_dict(),
            "dedup": self.dedup.to_dict(),
            "checkpoints": dict(self.checkpoints),
        }
