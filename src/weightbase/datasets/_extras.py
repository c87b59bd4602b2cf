"""Lazy imports of the ``[data]`` extra: pandas, pyarrow and Pillow.

The core imports without them; a function that needs one says which extra to install.
"""

from __future__ import annotations

import importlib
from typing import Any

from weightbase.errors import MissingExtraError

__all__ = ["require"]


def require(module: str, *, purpose: str) -> Any:
    """Import ``module`` or raise ``MissingExtraError`` naming the ``[data]`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".", maxsplit=1)[0]
        raise MissingExtraError(
            f"{purpose} needs {top}, which is not installed; pip install 'weightbase[data]'",
            module=top,
            extra="data",
        ) from exc
