"""The tensor-store benchmark: writes, re-writes, reads, compression, deltas and dedup.

Each weightbase number is taken in the same process as its anchor (safetensors,
torch.save, ZipNN, zstd), interleaved round by round, into the records of
``benchmarks.store_results``; ``benchmarks.report`` turns them into the table in
``docs/benchmarks.md``.
"""

from __future__ import annotations

import mmap
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.store_results import (
    TOOLS,
    CompressionResult,
    DedupResult,
    DeltaResult,
    ReadResult,
    StoreResults,
    WriteResult,
    WriteTimings,
)
from benchmarks.timing import Stopwatch, fsync_path, interleave
from benchmarks.training_overhead import measure_checkpoint_stall
from weightbase.samples import minilm_folder
from weightbase.tensors.store import TensorStore
from weightbase.tensors.write import WriteStats

__all__ = [
    "StoreConfig",
    "measure_compression",
    "measure_dedup",
    "measure_delta",
    "measure_read",
    "measure_write",
    "run_store",
]

Log = Callable[[str], None]
TorchTensors = dict[str, torch.Tensor]

# (label, torch dtype, ZipNN's name for it)
_DTYPES = (
    ("fp32", torch.float32, "float32"),
    ("bf16", torch.bfloat16, "bfloat16"),
    ("fp16", torch.float16, "float16"),
)

# Sentence pairs with similarity scores (0..1) for a toy STS-style fine-tune, as
# sentence-transformers' CosineSimilarityLoss trains; the negations and contrasts
# are pairs a pretrained model scores too similar, so the loss has work to do.
_PAIRS = (
    ("A man is playing a guitar on stage.", "Someone performs a song with a guitar.", 0.9),
    ("The cat sleeps on the warm windowsill.", "The cat is wide awake and hungry.", 0.3),
    ("Stock markets fell sharply on Monday.", "Stock markets rose sharply on Monday.", 0.2),
    ("She is cooking pasta for dinner.", "A woman prepares spaghetti for supper.", 0.95),
    ("The train to Berlin was delayed.", "The train to Berlin left on time.", 0.2),
    ("Children are playing football in the park.", "Kids kick a ball around on the grass.", 0.85),
    ("It will rain heavily tomorrow.", "Tomorrow will be dry and sunny.", 0.1),
    ("He repaired the broken bicycle.", "He broke the bicycle.", 0.3),
)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Workload sizes and repetitions; ``quick`` shrinks the synthetic workloads."""

    workdir: Path  # on the disk whose writes are measured
    scratch: Path  # memory-backed where possible, so codec speed is not disk speed
    repeats: int = 5
    quick: bool = False
    seed: int = 0
    write_tensors: int = 32
    write_shape: tuple[int, int] = (2048, 4096)
    one_tensor_rounds: int = 5  # one-tensor reads are short: this many times more rounds
    dedup_tensors: int = 100
    dedup_shape: tuple[int, int] = (256, 1024)
    dedup_variants: int = 10
    dedup_changed: float = 0.1
    finetune_steps: int = 10
    finetune_lr: float = 2e-5

    @classmethod
    def create(
        cls, *, workdir: Path, scratch: Path, quick: bool, repeats: int | None
    ) -> StoreConfig:
        if quick:
            return cls(
                workdir,
                scratch,
                repeats=repeats or 1,
                quick=True,
                write_shape=(256, 4096),
                one_tensor_rounds=3,
                dedup_shape=(64, 1024),
            )
        return cls(workdir, scratch, repeats=repeats or 5)

    @property
    def tmpfs_scratch(self) -> bool:
        return self.scratch != self.workdir

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "workdir": str(self.workdir), "scratch": str(self.scratch)}


# -- the run ------------------------------------------------------------------------------


def run_store(config: StoreConfig, log: Log) -> StoreResults:
    """Run the six measurements in order; every file lives under the config's folders."""
    log(f"[1-3/6] {config.write_tensors} x {config.write_shape} fp32 state dict")
    tensors = _state_dict(config)
    write, files = measure_write(config, tensors, log)
    read = measure_read(config, tensors, files, log)
    del tensors
    files.remove()
    log("[4/6] compression of all-MiniLM-L6-v2 weights")
    compression = measure_compression(config, log)
    log("[5/6] delta of a fine-tune")
    delta = measure_delta(config, log)
    log("[6/6] dedup across snapshots")
    dedup = measure_dedup(config)
    log("[+] checkpoint stall vs torch.save + fsync, and bytes a registration writes (MiniLM)")
    checkpoints = measure_checkpoint_stall(config.workdir, rounds=config.repeats, seed=config.seed)
    return StoreResults(config, write, read, compression, delta, dedup, checkpoints)


def _state_dict(config: StoreConfig) -> TorchTensors:
    generator = torch.Generator().manual_seed(config.seed)
    return {
        f"layers.{index}.weight": torch.randn(*config.write_shape, generator=generator) * 0.02
        for index in range(config.write_tensors)
    }


@dataclass(frozen=True, slots=True)
class _WrittenFiles:
    """What the last write round left on disk, for the reads to use."""

    store_root: Path
    snapshot_id: str
    safetensors: Path
    torch_save: Path

    def remove(self) -> None:
        shutil.rmtree(self.store_root, ignore_errors=True)
        self.safetensors.unlink(missing_ok=True)
        self.torch_save.unlink(missing_ok=True)


def measure_write(
    config: StoreConfig, tensors: TorchTensors, log: Log
) -> tuple[WriteResult, _WrittenFiles]:
    """Two series of rounds: every write onto new disk blocks, then into just-freed ones."""
    new_blocks, stored_bytes, files = _write_rounds(
        config, tensors, free_first=False, log=lambda text: log(f"  write, new blocks: {text}")
    )
    files.remove()
    reused_blocks, _, files = _write_rounds(
        config, tensors, free_first=True, log=lambda text: log(f"  write, freed blocks: {text}")
    )
    return WriteResult(_nbytes(tensors), stored_bytes, new_blocks, reused_blocks), files


def _write_rounds(
    config: StoreConfig, tensors: TorchTensors, *, free_first: bool, log: Log
) -> tuple[WriteTimings, int, _WrittenFiles]:
    """Interleaved write rounds; with ``free_first`` each tool deletes its last copy first.

    Returns the timings, weightbase's stored bytes, and the last copy each tool wrote
    (older copies are deleted).
    """
    from safetensors.torch import save_file

    outputs: dict[str, list[Path]] = {"weightbase": [], "safetensors": [], "torch_save": []}
    snapshot: dict[str, Any] = {}
    phase = "freed" if free_first else "new"

    def output(tool: str, suffix: str) -> Path:
        if free_first:
            for path in outputs[tool]:
                _remove(path)
            outputs[tool].clear()
        path = config.workdir / f"{tool}-{phase}-{len(outputs[tool])}{suffix}"
        outputs[tool].append(path)
        return path

    def weightbase(watch: Stopwatch) -> None:
        root = output("weightbase", "")
        with watch.step("write"):
            store = TensorStore.open(root)
            written = store.write(tensors)
        stats = WriteStats()
        with watch.step("rewrite"):
            again = store.write(tensors, stats=stats)
        if again.id != written.id or stats.new_bytes:
            raise RuntimeError(f"re-writing stored new data: {stats}")
        store.close()
        snapshot.update(id=written.id, stored_bytes=written.stored_bytes)

    def safetensors(watch: Stopwatch) -> None:
        path = output("safetensors", ".safetensors")
        with watch.step(""):
            save_file(tensors, path)
            fsync_path(path)

    def torch_save(watch: Stopwatch) -> None:
        path = output("torch_save", ".pt")
        with watch.step(""), open(path, "wb") as handle:
            torch.save(tensors, handle)
            handle.flush()
            os.fsync(handle.fileno())

    timings = interleave(
        {"weightbase": weightbase, "safetensors": safetensors, "torch_save": torch_save},
        config.repeats,
        log=log,
    )
    for paths in outputs.values():
        for path in paths[:-1]:
            _remove(path)
    files = _WrittenFiles(
        outputs["weightbase"][-1],
        snapshot["id"],
        outputs["safetensors"][-1],
        outputs["torch_save"][-1],
    )
    result = WriteTimings(
        timings["weightbase.write"],
        timings["weightbase.rewrite"],
        timings["safetensors"],
        timings["torch_save"],
    )
    return result, snapshot["stored_bytes"], files


def measure_read(
    config: StoreConfig, tensors: TorchTensors, files: _WrittenFiles, log: Log
) -> ReadResult:
    from safetensors import safe_open
    from safetensors.torch import load_file

    def weightbase_all() -> TorchTensors:
        return TensorStore.open(files.store_root).read_torch(files.snapshot_id)

    def torch_load_all() -> TorchTensors:
        loaded: TorchTensors = torch.load(files.torch_save, weights_only=True)
        return loaded

    def safetensors_all() -> TorchTensors:
        # load_file maps the file; touching every page is what makes it all readable memory
        loaded = load_file(files.safetensors)
        _touch_pages(loaded.values())
        return loaded

    # One untimed pass of each checks the bytes and leaves all three equally warm in the
    # page cache (they were just written, and dropping the cache needs root).
    for read in (weightbase_all, torch_load_all, safetensors_all):
        _check_equal(tensors, read(), what=read.__name__)

    def timed(read: Callable[[], TorchTensors]) -> Callable[[Stopwatch], None]:
        def case(watch: Stopwatch) -> None:
            with watch.step(""):
                loaded = read()
            del loaded  # freed before the next case allocates

        return case

    full = interleave(
        {
            "weightbase": timed(weightbase_all),
            "torch_load": timed(torch_load_all),
            "safetensors": timed(safetensors_all),
        },
        config.repeats,
        log=lambda text: log(f"  full read {text}"),
    )

    name = list(tensors)[len(tensors) // 2]
    expected = tensors[name]

    def weightbase_one(watch: Stopwatch) -> None:
        with watch.step(""):
            array = TensorStore.open(files.store_root).read_tensor(files.snapshot_id, name)
        if not np.array_equal(array, expected.numpy()):
            raise RuntimeError(f"weightbase read_tensor returned wrong bytes for {name}")

    def safetensors_one(watch: Stopwatch) -> None:
        with watch.step(""):
            with safe_open(files.safetensors, "pt") as handle:
                tensor = handle.get_tensor(name)
            _touch_pages([tensor])
        if not torch.equal(tensor, expected):
            raise RuntimeError(f"safetensors get_tensor returned wrong bytes for {name}")

    one = interleave(
        {"weightbase": weightbase_one, "safetensors": safetensors_one},
        config.repeats * config.one_tensor_rounds,
    )
    return ReadResult(
        _nbytes(tensors),
        expected.numel() * expected.element_size(),
        full["weightbase"],
        full["torch_load"],
        full["safetensors"],
        one["weightbase"],
        one["safetensors"],
    )


def measure_compression(config: StoreConfig, log: Log) -> tuple[CompressionResult, ...]:
    from safetensors.torch import load_file

    weights = load_file(minilm_folder() / "model.safetensors")
    # ZipNN needs one float dtype per call; position_ids (int64) is not a weight
    floats = {name: tensor for name, tensor in weights.items() if tensor.is_floating_point()}
    return tuple(
        _compress_dtype(
            config,
            label,
            {name: tensor.to(dtype).contiguous() for name, tensor in floats.items()},
            zipnn_dtype,
            log,
        )
        for label, dtype, zipnn_dtype in _DTYPES
    )


def _compress_dtype(
    config: StoreConfig, label: str, tensors: TorchTensors, zipnn_dtype: str, log: Log
) -> CompressionResult:
    import zipnn
    import zstandard

    # the anchors get bytes ready-made; weightbase reads the tensors in place
    payloads = [_raw_bytes(tensor) for tensor in tensors.values()]
    stored: dict[str, int] = {}
    zipnn_codec = zipnn.ZipNN(input_format="byte", bytearray_dtype=zipnn_dtype)
    root = config.scratch / f"minilm-{label}"

    def weightbase(watch: Stopwatch) -> None:
        store = TensorStore.open(root)  # a fresh store each round: nothing to deduplicate
        with watch.step("compress"):
            snapshot = store.write(tensors)
        with watch.step("decompress"):
            arrays = store.read(snapshot)
        restored = [arrays[name].reshape(-1).view(np.uint8) for name in tensors]
        _check_payloads(restored, payloads, "weightbase")
        stored["weightbase"] = snapshot.stored_bytes
        store.close()
        shutil.rmtree(root)

    def zipnn_case(watch: Stopwatch) -> None:
        # ZipNN reorders its input's bytes in place: hand it copies, check against originals
        inputs = [bytes(memoryview(payload)) for payload in payloads]
        with watch.step("compress"):
            compressed = [zipnn_codec.compress(data) for data in inputs]
        with watch.step("decompress"):
            restored = [zipnn_codec.decompress(blob) for blob in compressed]
        _check_payloads(restored, payloads, "zipnn")
        stored["zipnn"] = sum(len(blob) for blob in compressed)

    def zstd_case(watch: Stopwatch) -> None:
        compressor = zstandard.ZstdCompressor(level=3)
        decompressor = zstandard.ZstdDecompressor()
        with watch.step("compress"):
            compressed = [compressor.compress(payload) for payload in payloads]
        with watch.step("decompress"):
            restored = [decompressor.decompress(blob) for blob in compressed]
        _check_payloads(restored, payloads, "zstd")
        stored["zstd"] = sum(len(blob) for blob in compressed)

    timings = interleave(
        {"weightbase": weightbase, "zipnn": zipnn_case, "zstd": zstd_case},
        config.repeats,
        log=lambda text: log(f"  {label} {text}"),
    )
    return CompressionResult(
        label,
        sum(len(payload) for payload in payloads),
        stored,
        {tool: timings[f"{tool}.compress"] for tool in TOOLS},
        {tool: timings[f"{tool}.decompress"] for tool in TOOLS},
    )


def measure_delta(config: StoreConfig, log: Log) -> DeltaResult:
    original, tuned, losses = finetune_minilm(config)
    log(f"  fine-tuned {config.finetune_steps} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    with TensorStore.open(config.workdir / "delta") as store:
        base = store.write(original)
        delta_stats = WriteStats()
        start = time.perf_counter()
        snapshot = store.write(tuned, parent=base, stats=delta_stats)
        delta_write_s = time.perf_counter() - start
        _check_equal(tuned, store.read_torch(snapshot), what="weightbase delta read")
    with TensorStore.open(config.workdir / "whole") as store:
        whole_stats = WriteStats()
        start = time.perf_counter()
        store.write(tuned, stats=whole_stats)
        whole_write_s = time.perf_counter() - start
    shutil.rmtree(config.workdir / "delta")
    shutil.rmtree(config.workdir / "whole")
    return DeltaResult(
        raw_bytes=delta_stats.raw_bytes,
        delta_new_bytes=delta_stats.new_bytes,
        whole_new_bytes=whole_stats.new_bytes,
        tensors=len(tuned),
        tensors_changed=sum(not torch.equal(original[n], tuned[n]) for n in tuned),
        delta_chunks=delta_stats.delta_chunks,
        reused_chunks=delta_stats.reused_chunks,
        steps=config.finetune_steps,
        losses=tuple(losses),
        delta_write_s=delta_write_s,
        whole_write_s=whole_write_s,
    )


def finetune_minilm(config: StoreConfig) -> tuple[TorchTensors, TorchTensors, list[float]]:
    """MiniLM's state dict before and after a few AdamW steps of a cosine-similarity loss."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import transformers
    from transformers import AutoModel, AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.manual_seed(config.seed)
    folder = minilm_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder)
    original = {name: t.detach().clone() for name, t in model.state_dict().items()}
    first = tokenizer([a for a, _, _ in _PAIRS], padding=True, return_tensors="pt")
    second = tokenizer([b for _, b, _ in _PAIRS], padding=True, return_tensors="pt")
    scores = torch.tensor([score for _, _, score in _PAIRS])
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.finetune_lr)
    model.train()
    losses = []
    for _ in range(config.finetune_steps):
        similarity = (_embed(model, first) * _embed(model, second)).sum(dim=-1)
        loss = torch.nn.functional.mse_loss(similarity, scores)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    tuned = {name: t.detach().clone() for name, t in model.state_dict().items()}
    return original, tuned, losses


def _embed(model: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def measure_dedup(config: StoreConfig) -> DedupResult:
    rng = np.random.default_rng(config.seed)
    rows, cols = config.dedup_shape

    def random_tensor() -> np.ndarray[Any, Any]:
        return rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(0.02)

    names = [f"blocks.{index:03d}.weight" for index in range(config.dedup_tensors)]
    changed = max(1, round(config.dedup_tensors * config.dedup_changed))
    if changed * config.dedup_variants > len(names):
        raise ValueError("the variants would not each change different tensors")
    base = {name: random_tensor() for name in names}
    root = config.workdir / "dedup"
    logical = 0
    with TensorStore.open(root) as store:
        # no parent: sharing comes from content addressing alone, not from lineage
        ideal = store.write(base).stored_bytes
        logical += sum(array.nbytes for array in base.values())
        for variant in range(config.dedup_variants):
            replaced = names[variant * changed : (variant + 1) * changed]
            fresh = {name: random_tensor() for name in replaced}
            store.write({**base, **fresh})
            logical += sum(array.nbytes for array in base.values())
            alone_root = config.workdir / f"dedup-alone-{variant}"
            with TensorStore.open(alone_root) as alone:
                ideal += alone.write(fresh).stored_bytes
            shutil.rmtree(alone_root)
        chunk_bytes = sum(info.size for info in store.objects.list("chunks/"))
        metadata_bytes = sum(
            info.size
            for prefix in ("snapshots/", "refs/", "index/")
            for info in store.objects.list(prefix)
        )
    shutil.rmtree(root)
    return DedupResult(
        config.dedup_variants,
        config.dedup_tensors,
        changed,
        logical,
        chunk_bytes,
        ideal,
        metadata_bytes,
    )


# -- helpers ------------------------------------------------------------------------------


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _nbytes(tensors: Mapping[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _raw_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.reshape(-1).view(torch.uint8).numpy().tobytes()


def _touch_pages(tensors: Any) -> None:
    """Fault in every page of (memory-mapped) tensors by reading one byte of each."""
    for tensor in tensors:
        flat = tensor.reshape(-1).view(torch.uint8)
        if flat.numel():
            flat[:: mmap.PAGESIZE].sum()


def _check_equal(expected: TorchTensors, got: TorchTensors, *, what: str) -> None:
    if expected.keys() != got.keys():
        raise RuntimeError(f"{what} returned other tensor names")
    for name, tensor in expected.items():
        if not torch.equal(tensor, got[name]):
            raise RuntimeError(f"{what} returned wrong values for {name}")


def _check_payloads(got: list[Any], expected: list[bytes], what: str) -> None:
    for restored, payload in zip(got, expected, strict=True):
        if not np.array_equal(np.frombuffer(restored, np.uint8), np.frombuffer(payload, np.uint8)):
            raise RuntimeError(f"{what} did not restore the exact bytes")
