"""``monitoring_overhead_pct``: what request sampling costs a served request.

A first, in-process version: per round, ``SampleRecorder.observe`` is called for every
request of a stream (rate 0.1, as a server would) and the kept samples are flushed into
an embedded workspace (SQLite); its cost per request (observe + the flush's share) is
set against a bare request, one forward pass of a digits-sized MLP (64 → 128 → 10) on
one row in this process — the cheapest request a server answers, so the percentage is an
upper bound of what sampling adds to ``weightbase serve``. The lead's serve-throughput
measurement (monitoring on vs off) may replace this row.

    from benchmarks.monitoring_overhead import measure
    measure(quick=True)["monitoring_overhead_pct"]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["measure"]

#: The target the issue sets for sampling on vs off.
TARGET_PCT = 5.0


def _bare_request_s(requests: int, seed: int) -> float:
    """Seconds per request of one forward pass of a small MLP on one row."""
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    ).eval()
    rows = torch.randn(requests, 1, 64)
    with torch.inference_mode():
        for row in rows[:50]:  # warm up
            model(row)
        start = time.perf_counter()
        for row in rows:
            model(row).argmax(dim=1).tolist()
        return (time.perf_counter() - start) / requests


def _monitoring_s(wb: Any, requests: int, rate: float, seed: int) -> tuple[float, float, float]:
    """Seconds per request of observe, of the flush's share, and of a not-kept observe."""
    recorder = wb.monitoring.recorder(rate=rate, max_per_window=requests)
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal(64).round(4).tolist() for _ in range(256)]
    outputs = [{"label": int(i % 10), "scores": [0.1] * 10} for i in range(256)]
    ids = [f"{seed}-{i:08d}" for i in range(requests)]
    start = time.perf_counter()
    for i, request_id in enumerate(ids):
        recorder.observe("bench@0.1.0", request_id, inputs[i & 255], outputs[i & 255], 1.5)
    observed = time.perf_counter() - start
    start = time.perf_counter()
    written = recorder.flush()
    flushed = time.perf_counter() - start
    assert written == recorder.kept, (written, recorder.kept)
    skipped = [request_id for request_id in ids if not recorder.keeps(request_id)][:10_000]
    none = wb.monitoring.recorder(rate=rate)
    start = time.perf_counter()
    for request_id in skipped:
        none.observe("bench@0.1.0", request_id, None, None, 1.0)
    unsampled = (time.perf_counter() - start) / max(1, len(skipped))
    return observed / requests, flushed / requests, unsampled


def measure(quick: bool = False) -> dict[str, Any]:
    """The overhead of sampling at rate 0.1 per request, in percent of a bare request:
    the median over rounds with its range, and the parts it is made of."""
    import weightbase

    rounds, requests, rate = (3, 5_000, 0.1) if quick else (7, 50_000, 0.1)
    shares, observes, flushes, unsampled_calls, bares = [], [], [], [], []
    with tempfile.TemporaryDirectory() as folder, weightbase.open(Path(folder) / "home") as wb:
        wb.models.push("bench", {"w": np.zeros(4, np.float32)})
        for round_ in range(rounds + 1):  # the first round warms up; not counted
            observe_s, flush_s, unsampled_s = _monitoring_s(wb, requests, rate, round_)
            bare_s = _bare_request_s(min(requests, 5_000), round_)
            if round_ == 0:
                continue
            shares.append(100.0 * (observe_s + flush_s) / bare_s)
            observes.append(observe_s)
            flushes.append(flush_s)
            unsampled_calls.append(unsampled_s)
            bares.append(bare_s)
    return {
        "monitoring_overhead_pct": {
            "value": statistics.median(shares),
            "range": [min(shares), max(shares)],
            "target": TARGET_PCT,
            "meets": max(shares) <= TARGET_PCT,
            "rounds": shares,
            "rate": rate,
            "requests_per_round": requests,
            "observe_ns_per_request": statistics.median(observes) * 1e9,
            "observe_not_kept_ns": statistics.median(unsampled_calls) * 1e9,
            "flush_us_per_request": statistics.median(flushes) * 1e6,
            "bare_request_us": statistics.median(bares) * 1e6,
            "method": "in-process: SampleRecorder.observe + flush (SQLite) per request vs one "
            "MLP forward pass on one row",
        }
    }


if __name__ == "__main__":  # pragma: no cover - a manual run
    import json

    print(json.dumps(measure(quick=True), indent=2))
