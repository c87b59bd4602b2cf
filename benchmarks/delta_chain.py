"""Read time against delta-chain depth: ``python -m benchmarks.delta_chain [--depth 20]``.

Writes a base and ``depth`` fine-tune steps, each with the previous as parent,
once with the chain left unbounded and once with the default ``max_delta_chain``,
then times a verified read of the base and of the last step (medians, warm cache).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from weightbase.tensors import TensorStore, WriteOptions

MB = 1_000_000


def _steps(depth: int, tensors: int, elements: int) -> list[dict[str, np.ndarray]]:
    """A base and ``depth`` steps that nudge every weight, as an optimizer step does."""
    rng = np.random.default_rng(0)
    state = {f"layer{i}.weight": rng.standard_normal(elements, np.float32) for i in range(tensors)}
    steps = [state]
    for _ in range(depth):
        state = {
            name: (value + rng.standard_normal(elements, np.float32) * 1e-4).astype(np.float32)
            for name, value in state.items()
        }
        steps.append(state)
    return steps


def _read_time(store: TensorStore, ref: str, rounds: int) -> float:
    store.read(ref)  # warm the page cache
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        store.read(ref)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.delta_chain")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--tensors", type=int, default=4)
    parser.add_argument("--elements", type=int, default=4 << 20, help="fp32 values per tensor")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bound", type=int, action="append", help="max_delta_chain to compare")
    args = parser.parse_args(argv)
    steps = _steps(args.depth, args.tensors, args.elements)
    raw = sum(value.nbytes for value in steps[0].values())
    default = WriteOptions().max_delta_chain
    print(f"{len(steps) - 1} steps of {raw / MB:.1f} MB fp32; default max_delta_chain={default}")
    bounds = [("unbounded", args.depth + 1), (f"default ({default})", default)]
    bounds += [(f"max_delta_chain={bound}", bound) for bound in args.bound or ()]
    for label, bound in bounds:
        with tempfile.TemporaryDirectory() as folder:
            with TensorStore.open(folder, max_delta_chain=bound) as store:
                parent = None
                stored = 0
                levels = []
                for index, state in enumerate(steps):
                    snapshot = store.write(state, parent=parent, ref=f"step-{index}")
                    stored += snapshot.stored_bytes
                    levels.append(
                        max(len(r.bases) for e in snapshot.tensors.values() for r in e.chunks)
                    )
                    parent = snapshot
                worst = max(range(len(levels)), key=lambda index: (levels[index], index))
                base = _read_time(store, "step-0", args.rounds)
                last = _read_time(store, f"step-{args.depth}", args.rounds)
                deepest = _read_time(store, f"step-{worst}", args.rounds)
            print(
                f"{label}: read base {base * 1e3:.0f} ms; step {args.depth} "
                f"({levels[-1]} delta levels) {last * 1e3:.0f} ms; deepest, step {worst} "
                f"({levels[worst]} levels) {deepest * 1e3:.0f} ms; "
                f"all steps stored {stored / MB:.1f} MB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
