"""Manifests as YAML: one multi-document stream, or one file per kind in a folder.

A small emitter of its own, for the plain values manifests hold (mappings, lists,
strings, numbers, booleans), so that writing them needs no YAML library; a string that
YAML could read as something else is written as a quoted JSON string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from weightbase.errors import StorageError, ValidationError

__all__ = ["dump_manifests", "manifest_file_name", "write_manifests"]

_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*\Z")
# Words YAML 1.1 readers (PyYAML, kubectl's) take for booleans or null, lower-cased.
_RESERVED = frozenset(["y", "n", "yes", "no", "true", "false", "on", "off", "null"])
# What a YAML reader refuses raw, or reads as a line break even inside quotes (NEL, the
# Unicode line and paragraph separators): written as escapes.
_UNSAFE = re.compile(
    r"[^\x09\x0a\x0d\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def dump_manifests(objects: Sequence[Mapping[str, Any]]) -> str:
    """``objects`` as one YAML stream, each a document after a ``---`` line."""
    return "".join(f"---\n{_document(obj)}" for obj in objects)


def manifest_file_name(obj: Mapping[str, Any]) -> str:
    """``deployment.yaml`` for a Deployment: the file :func:`write_manifests` gives it."""
    return f"{str(obj['kind']).lower()}.yaml"


def write_manifests(objects: Sequence[Mapping[str, Any]], directory: str | Path) -> list[Path]:
    """Write each object to ``directory/<kind>.yaml`` (the folder is made); the paths."""
    folder = Path(directory)
    names = [manifest_file_name(obj) for obj in objects]
    if len(set(names)) != len(names):
        raise ValidationError("two manifests of one kind cannot share a folder", field="output")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, obj in zip(names, objects, strict=True):
            path = folder / name
            path.write_text(_document(obj), encoding="utf-8")
            paths.append(path)
    except OSError as exc:
        raise StorageError(f"cannot write manifests to {folder}: {exc}", path=str(folder)) from exc
    return paths


def _document(obj: Mapping[str, Any]) -> str:
    return "\n".join(_lines(obj, 0)) + "\n"


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, Mapping) and value:
        lines = []
        for key, item in value.items():
            label = f"{pad}{_scalar(str(key))}:"
            if _is_block(item):
                # Lists sit at their key's indent, as kubectl writes them.
                lines.append(label)
                lines.extend(_lines(item, indent if isinstance(item, list) else indent + 2))
            else:
                lines.append(f"{label} {_scalar(item)}")
        return lines
    if isinstance(value, list) and value:
        lines = []
        for item in value:
            if _is_block(item):
                nested = _lines(item, indent + 2)
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines.extend(nested[1:])
            else:
                lines.append(f"{pad}- {_scalar(item)}")
        return lines
    return [f"{pad}{_scalar(value)}"]


def _is_block(value: Any) -> bool:
    return isinstance(value, Mapping | list) and bool(value)


def _scalar(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list):
        return "[]"
    if isinstance(value, float) and "e" in repr(value) and "." not in repr(value):
        # YAML 1.1 reads 1e+20 as a string: its floats need a dot.
        return repr(value).replace("e", ".0e")
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    if not isinstance(value, str):
        raise ValidationError(f"a manifest cannot hold {type(value).__name__} values")
    if _PLAIN.match(value) and value.lower() not in _RESERVED:
        return value
    return _quoted(value)


def _quoted(text: str) -> str:
    """``text`` as a double-quoted scalar: JSON's escapes, which YAML shares."""
    quoted = json.dumps(text, ensure_ascii=False)
    return _UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)
