"""Timing helpers: cases run round-robin for several rounds, reported by their medians.

Interleaving matters on a noisy machine: a slow minute then slows every tool a
little instead of one tool a lot.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Stopwatch", "Timing", "fsync_path", "interleave"]

MB = 1_000_000


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds taken by each run of one measured step."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def rate(self, nbytes: int) -> float:
        """Throughput of the median run, in MB (10^6 bytes) per second."""
        return nbytes / self.median / MB

    def to_dict(self) -> dict[str, object]:
        return {
            "median_s": round(self.median, 6),
            "min_s": round(min(self.samples), 6),
            "max_s": round(max(self.samples), 6),
            "samples_s": [round(s, 6) for s in self.samples],
        }


class Stopwatch:
    """Collects the named steps one run of a case times, leaving its setup untimed."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.steps[name] = time.perf_counter() - start


# A case does one run: it prepares what it needs, times its steps on the stopwatch,
# and cleans up after itself.
Case = Callable[[Stopwatch], None]


def interleave(
    cases: Mapping[str, Case],
    repeats: int,
    *,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Timing]:
    """Run every case once per round, rotating which goes first, for ``repeats`` rounds.

    Returns the timings of every step the cases named, keyed ``case`` or ``case.step``
    (``case`` alone for a step named ``""``).
    """
    names = list(cases)
    samples: dict[str, list[float]] = {}
    for round_index in range(repeats):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            gc.collect()  # a collection triggered inside a timed step would be charged to it
            watch = Stopwatch()
            cases[name](watch)
            for step, seconds in watch.steps.items():
                samples.setdefault(f"{name}.{step}" if step else name, []).append(seconds)
        log(f"round {round_index + 1}/{repeats}")
    return {key: Timing(tuple(values)) for key, values in samples.items()}


def fsync_path(path: Path) -> None:
    """Flush a file that another library wrote to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
