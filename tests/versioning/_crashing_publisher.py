"""A child process that publishes a version and stops dead at a chosen step, for the crash tests.

    python _crashing_publisher.py MODE KIND HOME CATALOG_URL

MODE ``before-commit`` stops just before the catalog transaction that inserts the
row; ``before-pin`` stops after it committed, just before the permanent ref is
set. KIND is ``model`` or ``dataset``. At that step the child prints
``stopped`` and sleeps until the test SIGKILLs it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

import weightbase
from weightbase.catalog import Catalog
from weightbase.datasets import from_numpy
from weightbase.tensors import TensorStore


def _stop() -> None:
    print("stopped", flush=True)
    time.sleep(120)
    raise SystemExit("not killed in time")


def main(mode: str, kind: str, home: str, catalog_url: str) -> None:
    if mode == "before-pin":
        set_ref = TensorStore.set_ref

        def stopping_set_ref(self: TensorStore, name: str, snapshot: Any) -> None:
            if name.startswith("registry/"):  # a permanent ref: the row has committed
                _stop()
            set_ref(self, name, snapshot)

        TensorStore.set_ref = stopping_set_ref  # type: ignore[method-assign]
    else:
        write = Catalog.write

        def stopping_write(self: Catalog, work: Any, **options: Any) -> Any:
            _stop()
            return write(self, work, **options)

        Catalog.write = stopping_write  # type: ignore[method-assign]

    rng = np.random.default_rng(7)
    with weightbase.open(home, catalog_url=catalog_url) as wb:
        if kind == "model":
            weights = {"w": rng.standard_normal((64, 64)).astype(np.float32)}
            wb.models.push("crashy", weights)
        else:
            features = rng.standard_normal((40, 4)).astype(np.float32)
            wb.datasets.register("crashy", from_numpy(features, np.arange(40) % 2))


if __name__ == "__main__":
    main(*sys.argv[1:5])
