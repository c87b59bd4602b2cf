"""A separate process that logs into a run, for the crash and concurrency tests.

python child_logger.py crash HOME CATALOG_URL
    starts a run, prints its id, logs 500 points and flushes ("flushed"),
    logs 300 more that stay buffered ("buffered"), then sleeps until killed.
python child_logger.py spin HOME CATALOG_URL
    starts a run, prints its id and logs as fast as it can until killed.
python child_logger.py attach HOME CATALOG_URL RUN_ID INDEX POINTS
    attaches to RUN_ID and logs POINTS points of "shared" (steps
    INDEX*POINTS…) and of "proc<INDEX>", in small batches, then closes.
"""

from __future__ import annotations

import sys
import time

import weightbase
from weightbase.tracking import RunTracker

FLUSHED = 500
BUFFERED = 300


def main(argv: list[str]) -> None:
    mode, home, catalog_url = argv[:3]
    workspace = weightbase.open(home, catalog_url=catalog_url)
    if mode == "crash":
        tracker = RunTracker(
            workspace.catalog, workspace.store, batch_points=1_000_000, flush_interval=3600
        )
        run = tracker.start("crash")
        print(run.id, flush=True)
        for step in range(FLUSHED):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.flush()
        print("flushed", flush=True)
        for step in range(FLUSHED, FLUSHED + BUFFERED):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        print("buffered", flush=True)
        time.sleep(120)
        raise SystemExit("not killed in time")
    if mode == "spin":
        tracker = RunTracker(
            workspace.catalog, workspace.store, batch_points=20_000, flush_interval=3600
        )
        run = tracker.start("spin")
        print(run.id, flush=True)
        step = 0
        while True:  # until SIGTERM lands, most likely inside log()
            run.log({"loss": float(step)}, step=step)
            step += 1
    if mode == "attach":
        run_id, index, points = (int(value) for value in argv[3:6])
        tracker = RunTracker(
            workspace.catalog, workspace.store, batch_points=300, flush_interval=3600
        )
        with tracker.attach(run_id) as run:
            for i in range(points):
                run.log({"shared": float(i), f"proc{index}": float(index)}, step=index * points + i)
        workspace.close()
        print("done", flush=True)
        return
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
