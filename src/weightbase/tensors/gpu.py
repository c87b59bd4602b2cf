"""Reading snapshots straight onto a device through pinned staging buffers.

Reads are planned by ``weightbase.tensors.read.plan_reads``, as on the host.
Worker threads fetch, verify and decode chunks straight into a ring of pinned
host buffers; each buffer is copied to the device asynchronously on the worker's
own CUDA stream, and is reused only once its copy has finished. Decoding the
next chunk overlaps the copy of the last one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from weightbase.errors import DeviceError
from weightbase.tensors.dtypes import get_dtype
from weightbase.tensors.formats.torch import require_torch, to_torch
from weightbase.tensors.read import ChunkRead, ChunkReader, TensorRange, plan_reads, read_ranges

if TYPE_CHECKING:
    import torch

__all__ = ["read_to_device"]


def read_to_device(
    reader: ChunkReader, ranges: Mapping[str, TensorRange], device: str, *, workers: int
) -> dict[str, torch.Tensor]:
    """``ranges`` as torch tensors on ``device`` (``cpu`` or ``cuda[:n]``), chunks decoded
    on ``workers`` threads."""
    torch = require_torch()
    target = torch.device(device)
    if target.type == "cpu":
        arrays = read_ranges(reader, ranges, workers=workers)
        return {name: to_torch(arrays[name], ranges[name].entry.dtype) for name in ranges}
    if target.type != "cuda":
        raise DeviceError(f"device {device!r} is not supported; use 'cpu' or 'cuda'")
    if not torch.cuda.is_available():
        raise DeviceError("CUDA was requested but torch sees no CUDA device", device=device)
    return _read_cuda(reader, ranges, target, workers)


def _read_cuda(
    reader: ChunkReader, ranges: Mapping[str, TensorRange], device: torch.device, workers: int
) -> dict[str, torch.Tensor]:
    torch = require_torch()
    outputs = {
        name: torch.empty(wanted.nbytes, dtype=torch.uint8, device=device)
        for name, wanted in ranges.items()
    }
    reads = plan_reads(ranges)
    if reads:
        largest = max(read.nbytes for read in reads)
        workers = max(1, workers)
        staging: queue.Queue[tuple[Any, Any]] = queue.Queue()
        for _ in range(workers * 2):
            staging.put((torch.empty(largest, dtype=torch.uint8, pin_memory=True), None))
        local = threading.local()

        def job(read: ChunkRead) -> None:
            stream = getattr(local, "stream", None)
            if stream is None:
                stream = local.stream = torch.cuda.Stream(device=device)
            buffer, event = staging.get()
            try:
                if event is not None:
                    event.synchronize()  # the buffer's previous copy has landed
                host = buffer.numpy()
                # the slices side by side in the pinned buffer, each decoded straight there
                positions = []
                position = 0
                for piece in read.slices:
                    positions.append(position)
                    position += piece.length
                read.read_into(
                    reader,
                    [
                        host[at : at + p.length]
                        for at, p in zip(positions, read.slices, strict=True)
                    ],
                )
                with torch.cuda.stream(stream):
                    for at, piece in zip(positions, read.slices, strict=True):
                        outputs[piece.tensor][piece.at : piece.at + piece.length].copy_(
                            buffer[at : at + piece.length], non_blocking=True
                        )
                    event = torch.cuda.Event()
                    event.record(stream)
            finally:
                staging.put((buffer, event))

        with ThreadPoolExecutor(workers, thread_name_prefix="wb-gpu") as pool:
            for future in [pool.submit(job, read) for read in reads]:
                future.result()
        torch.cuda.synchronize(device)
    result = {}
    for name, wanted in ranges.items():
        dtype = get_dtype(wanted.entry.dtype)
        result[name] = (
            outputs[name].view(getattr(torch, str(dtype.torch_name))).reshape(wanted.shape)
        )
    return result
