"""Reading snapshots straight onto a device through pinned staging buffers.

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

import numpy as np

from weightbase.errors import DeviceError
from weightbase.tensors.dtypes import get_dtype
from weightbase.tensors.formats.torch import require_torch, to_torch
from weightbase.tensors.manifest import ChunkRef, TensorEntry
from weightbase.tensors.read import spans

if TYPE_CHECKING:
    import torch

    from weightbase.tensors.store import TensorStore

__all__ = ["read_to_device"]

Plan = Mapping[str, tuple[TensorEntry, int, int, tuple[int, ...]]]


def read_to_device(store: TensorStore, plan: Plan, device: str) -> dict[str, torch.Tensor]:
    """The planned byte ranges as torch tensors on ``device`` (``cpu`` or ``cuda[:n]``)."""
    torch = require_torch()
    target = torch.device(device)
    if target.type == "cpu":
        arrays = store._read_many(plan)
        return {name: to_torch(arrays[name], plan[name][0].dtype) for name in plan}
    if target.type != "cuda":
        raise DeviceError(f"device {device!r} is not supported; use 'cpu' or 'cuda'")
    if not torch.cuda.is_available():
        raise DeviceError("CUDA was requested but torch sees no CUDA device", device=device)
    return _read_cuda(store, plan, target)


def _read_cuda(store: TensorStore, plan: Plan, device: torch.device) -> dict[str, torch.Tensor]:
    torch = require_torch()
    outputs = {
        name: torch.empty(stop - start, dtype=torch.uint8, device=device)
        for name, (_, start, stop, _) in plan.items()
    }
    work: dict[str, list[tuple[ChunkRef, str, int, int, int]]] = {}
    for name, (entry, start, stop, _) in plan.items():
        for ref, offset, length, at in spans(entry, start, stop):
            work.setdefault(ref.digest, []).append((ref, name, offset, length, at))
    if work:
        largest = max(sum(t[3] for t in targets) for targets in work.values())
        workers = max(1, store.options.workers)
        staging: queue.Queue[tuple[Any, Any]] = queue.Queue()
        for _ in range(workers * 2):
            staging.put((torch.empty(largest, dtype=torch.uint8, pin_memory=True), None))
        local = threading.local()

        def job(targets: list[tuple[ChunkRef, str, int, int, int]]) -> None:
            stream = getattr(local, "stream", None)
            if stream is None:
                stream = local.stream = torch.cuda.Stream(device=device)
            buffer, event = staging.get()
            try:
                if event is not None:
                    event.synchronize()  # the buffer's previous copy has landed
                host = buffer.numpy()
                placed = []
                if len(targets) == 1:  # decoded straight into the pinned buffer
                    ref, name, offset, length, at = targets[0]
                    store.reader.read_into(ref, offset, host[:length], tensor=name)
                    placed.append((name, 0, length, at))
                else:  # a pack of small tensors: decoded once, then placed
                    raw = store.reader.raw(targets[0][0], tensor=targets[0][1])
                    source = np.frombuffer(raw, dtype=np.uint8)
                    position = 0
                    for _, name, offset, length, at in targets:
                        host[position : position + length] = source[offset : offset + length]
                        placed.append((name, position, length, at))
                        position += length
                with torch.cuda.stream(stream):
                    for name, pos, length, at in placed:
                        outputs[name][at : at + length].copy_(
                            buffer[pos : pos + length], non_blocking=True
                        )
                    event = torch.cuda.Event()
                    event.record(stream)
            finally:
                staging.put((buffer, event))

        with ThreadPoolExecutor(workers, thread_name_prefix="wb-gpu") as pool:
            for future in [pool.submit(job, targets) for targets in work.values()]:
                future.result()
        torch.cuda.synchronize(device)
    result = {}
    for name, (entry, _, _, shape) in plan.items():
        dtype = get_dtype(entry.dtype)
        result[name] = outputs[name].view(getattr(torch, str(dtype.torch_name))).reshape(shape)
    return result
