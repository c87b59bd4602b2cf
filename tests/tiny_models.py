"""Tiny transformer models for tests, built from a config in code (never downloaded)."""

from __future__ import annotations

from typing import Any

import pytest

#: A two-layer BERT small enough to build in milliseconds.
TINY_BERT = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "vocab_size": 100,
}


def tiny_bert_config(**overrides: Any) -> Any:
    """A ``BertConfig`` of :data:`TINY_BERT` with ``overrides``; skips without transformers."""
    transformers = pytest.importorskip("transformers")
    return transformers.BertConfig(**{**TINY_BERT, **overrides})
