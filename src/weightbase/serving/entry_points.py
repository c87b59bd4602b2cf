"""Entry points: the user's own importable code that builds a version (``pkg.mod:Name``).

A push records one in the snapshot's metadata with its JSON init arguments, so that it is
part of the version's content; loading imports the named object by its name alone, never
from code found inside a stored file.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from weightbase.errors import ValidationError

if TYPE_CHECKING:
    from weightbase.tensors.manifest import Snapshot

__all__ = [
    "METADATA_KEY",
    "EntryPoint",
    "check_recorded",
    "entry_point_of",
    "parse_entry_point",
]

#: The snapshot metadata key a push records the entry point under.
METADATA_KEY = "entry_point"

# dotted identifiers, a colon, one identifier: what importlib and getattr can resolve alone
_TARGET = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*", re.ASCII)


@dataclass(frozen=True, slots=True)
class EntryPoint:
    """``target`` (``package.module:Name``) built with ``init_args``.

    A class is a torch module (built with ``init_args``, the version's weights loaded into
    it strictly); a function is a ``predict`` callable taking a batch of inputs.
    """

    target: str
    init_args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "init_args", MappingProxyType(dict(self.init_args)))

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    @property
    def name(self) -> str:
        return self.target.partition(":")[2]

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "init_args": dict(self.init_args)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EntryPoint:
        return parse_entry_point(data["target"], data.get("init_args"))

    def to_metadata(self) -> str:
        """The canonical JSON kept under :data:`METADATA_KEY` (sorted keys: one text per value)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def resolve(self) -> Any:
        """The named object, imported from the user's installed code."""
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            raise ValidationError(
                f"entry point {self.target}: cannot import {self.module} ({exc}); "
                "install the package that defines it in this environment",
                entry_point=self.target,
            ) from None
        try:
            return getattr(module, self.name)
        except AttributeError:
            raise ValidationError(
                f"entry point {self.target}: {self.module} has no {self.name!r}",
                entry_point=self.target,
            ) from None


def parse_entry_point(target: object, init_args: object = None) -> EntryPoint:
    """An :class:`EntryPoint`, or a ``ValidationError`` saying what is wrong with it."""
    if not isinstance(target, str) or not _TARGET.fullmatch(target):
        raise ValidationError(
            f"entry point {target!r} is not 'package.module:Name' "
            "(a module path, a colon, a class or function name)",
            entry_point=target,
        )
    if init_args is None:
        init_args = {}
    if not isinstance(init_args, Mapping) or not all(isinstance(k, str) for k in init_args):
        raise ValidationError(
            "init_args must be a JSON object of keyword arguments", entry_point=target
        )
    try:
        # JSON round trip: what is recorded is exactly what a later build receives
        plain = json.loads(json.dumps(dict(init_args), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"init_args of {target} are not JSON ({exc})", entry_point=target
        ) from None
    return EntryPoint(target, plain)


def entry_point_of(snapshot: Snapshot) -> EntryPoint | None:
    """The entry point a push recorded in ``snapshot``, or None."""
    text = snapshot.metadata.get(METADATA_KEY)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise ValidationError(
            f"snapshot {snapshot.id[:12]}: its entry point is not JSON", entry_point=text
        ) from None
    if not isinstance(data, dict) or "target" not in data:
        raise ValidationError(
            f"snapshot {snapshot.id[:12]}: its entry point has no target", entry_point=text
        )
    return EntryPoint.from_dict(data)


def check_recorded(snapshot: Snapshot, entry_point: EntryPoint | None) -> None:
    """A stored snapshot keeps the entry point it was written with; pushing it with another
    is refused (push the weights themselves to record one)."""
    if entry_point is not None and entry_point_of(snapshot) != entry_point:
        raise ValidationError(
            f"snapshot {snapshot.id[:12]} was stored without the entry point "
            f"{entry_point.target}; push the weights themselves to record one",
            entry_point=entry_point.target,
        )
