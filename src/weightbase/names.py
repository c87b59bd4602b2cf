"""The rules for names users give things: models, datasets, tags, ``name@ref`` references."""

from __future__ import annotations

import re

from weightbase.errors import ValidationError

__all__ = ["check_entity_name", "check_tag", "split_ref", "split_version"]

_ENTITY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*\Z")


def check_entity_name(name: str, *, what: str = "model") -> str:
    """``name`` if it is a valid model or dataset name (``org/name`` style, ≤ 255 characters)."""
    if not isinstance(name, str) or len(name) > 255 or not _ENTITY_NAME.match(name):
        raise ValidationError(
            f"invalid {what} name {name!r}: letters, digits, '.', '_', '-' in parts "
            "separated by '/', each starting with a letter or digit, at most 255 characters",
            name=name,
        )
    return name


def check_tag(tag: str) -> str:
    """``tag`` if it is 1 to 255 printable characters without surrounding spaces."""
    if not isinstance(tag, str) or not tag or len(tag) > 255 or tag != tag.strip():
        raise ValidationError(
            f"invalid tag {tag!r}: 1 to 255 characters, no surrounding spaces", tag=tag
        )
    if any(ord(c) < 32 for c in tag):
        raise ValidationError(f"invalid tag {tag!r}: control characters", tag=tag)
    return tag


def split_ref(text: str) -> tuple[str, str | None]:
    """``"bert@1.2.0"`` → ``("bert", "1.2.0")``; ``"bert"`` → ``("bert", None)``."""
    name, sep, ref = text.rpartition("@")
    if not sep:
        return text, None
    if not ref:
        raise ValidationError(f"{text!r}: nothing after '@' (expected a version or alias)")
    return name, ref


def split_version(ref: str, version: str | None) -> tuple[str, str | None]:
    """The name and version of ``"name@ref"``, or of a name and a ``version`` given apart."""
    name, part = split_ref(ref)
    if version is None:
        return name, part
    if part is not None:
        raise ValidationError(f"{ref!r} already names a version; pass one or the other")
    return name, version
