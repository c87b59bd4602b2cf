"""Crash-safe file output for exports: a temporary name, fsync, then rename."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_file"]


@contextmanager
def atomic_file(target: Path) -> Iterator[BinaryIO]:
    """A handle whose content replaces ``target`` only once all of it is durable."""
    tmp = target.with_name(f".{target.name}.wb-tmp")
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
