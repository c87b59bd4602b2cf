"""Lazy imports of tracking's optional dependencies (psutil, scikit-learn, MLflow, TensorBoard).

The core imports without them; a function that needs one says which extra to install.
"""

from __future__ import annotations

import importlib
from typing import Any

from weightbase.errors import MissingExtraError

__all__ = ["require"]


def require(*modules: str, purpose: str, extra: str, package: str | None = None) -> list[Any]:
    """Import ``modules``, or raise ``MissingExtraError`` naming ``extra``.

    ``package`` is what to call the missing dependency (default: the first
    module's top-level name).
    """
    try:
        return [importlib.import_module(module) for module in modules]
    except ImportError as exc:
        top = modules[0].split(".", maxsplit=1)[0]
        raise MissingExtraError(
            f"{purpose} needs {package or top}, which is not installed; "
            f"pip install 'weightbase[{extra}]'",
            module=top,
            extra=extra,
        ) from exc
