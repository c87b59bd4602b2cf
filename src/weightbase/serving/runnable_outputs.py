"""What a runnable model hands back, and how a generation is asked for (frozen records)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from weightbase.errors import ValidationError

__all__ = ["Classification", "Generation", "GenerationParams", "TokenTag"]


@dataclass(frozen=True, slots=True)
class Classification:
    """A text's most likely label, its probability and every label's."""

    label: str
    score: float
    scores: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", MappingProxyType(dict(self.scores)))

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": self.score, "scores": dict(self.scores)}


@dataclass(frozen=True, slots=True)
class TokenTag:
    """One token's label; ``start``/``end`` are character offsets in the text (None where
    the tokenizer cannot tell them)."""

    token: str
    label: str
    score: float
    start: int | None
    end: int | None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Generation:
    """A prompt's continuation: ``stop`` at the end-of-text token or a stop string,
    ``length`` at ``max_tokens``."""

    text: str
    tokens: int
    finish_reason: Literal["stop", "length"]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "tokens": self.tokens, "finish_reason": self.finish_reason}


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """How to continue a prompt: ``temperature`` 0 is greedy; above 0 samples, within
    ``top_k`` tokens and the ``top_p`` probability mass where given. ``stop`` strings end
    the text before them; ``seed`` makes sampling repeatable."""

    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    max_tokens: int = 32
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop))
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise ValidationError(f"temperature must be 0 or more, not {self.temperature}")
        if self.top_k is not None and (isinstance(self.top_k, bool) or self.top_k < 1):
            raise ValidationError(f"top_k must be a positive integer, not {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValidationError(f"top_p must be in (0, 1], not {self.top_p}")
        if isinstance(self.max_tokens, bool) or self.max_tokens < 1:
            raise ValidationError(f"max_tokens must be a positive integer, not {self.max_tokens}")
        if any(not isinstance(text, str) or not text for text in self.stop):
            raise ValidationError("stop must hold non-empty strings")

    @property
    def sampling(self) -> bool:
        return self.temperature > 0

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["stop"] = list(self.stop)
        return out
