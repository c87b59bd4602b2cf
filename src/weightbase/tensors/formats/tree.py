"""The tree of a training checkpoint: its tensors by name and every other value as typed JSON.

A checkpoint (``{"model": ..., "optimizer": ..., "step": 1200}``) is kept as its
tensors, each named by its path in the tree, plus this encoding of the rest, so
it comes back with the same containers, key types, key order and values.

Each node of the JSON is one of::

    "text"  123  0.5  true  null        str, int, finite float, bool, None
    {"float": "nan" | "inf" | "-inf"}   a float JSON cannot spell
    {"list": [node, ...]}  {"tuple": [node, ...]}
    {"dict": [[key, node], ...]}        keys are str or int, in their order
    {"odict": [[key, node], ...], "meta": node}   an OrderedDict (``meta``:
                                        a state dict's ``_metadata``, when it has one)
    {"tensor": "name"}                  a tensor of the snapshot

Names join dict keys with ``.`` and write ints and list indices as ``[0]``:
``optimizer.state[0].exp_avg``. In a str key, ``%``, ``[``, ``]``, ``/``, ``\\``
and control characters are written ``%XX``, and an empty key is ``%``; a key
holding ``.`` is written as it is (state dict keys do), so two paths can name
one tensor (``{"a.b": x, "a": {"b": y}}``): such a tree is refused.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from weightbase.errors import IntegrityError, ValidationError

__all__ = ["ROOT_TENSOR", "TREE_FORMAT", "build_tree", "encode_tree", "tensor_path"]

TREE_FORMAT = 1
#: The name of a file's tensor when the file holds one tensor and nothing else.
ROOT_TENSOR = "tensor"
_ESCAPED = frozenset("%[]/\\")


def _key_segment(key: str | int) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    if not key:
        return "%"
    return "".join(
        f"%{ord(c):02X}" if c in _ESCAPED or ord(c) < 0x20 or ord(c) == 0x7F else c for c in key
    )


def tensor_path(path: str, key: str | int) -> str:
    """``path`` extended by one dict key or list index."""
    segment = _key_segment(key)
    if not path or segment.startswith("["):
        return path + segment
    return f"{path}.{segment}"


def encode_tree(
    root: Any, *, is_tensor: Callable[[Any], bool], where: str
) -> tuple[bytes, dict[str, Any]]:
    """The JSON of ``root`` and its tensors by name, in tree order.

    Anything but the types above is refused with a ``ValidationError`` whose
    ``path`` names where in the tree it is (``where`` names the file).
    """
    tensors: dict[str, Any] = {}

    def refuse(path: str, what: str) -> ValidationError:
        shown = path or "the top level"
        return ValidationError(
            f"{where}: {shown} is {what}; a checkpoint can hold dicts, lists, tuples, str, "
            "int, float, bool, None and tensors",
            path=path,
        )

    def pairs(mapping: Mapping[Any, Any], path: str) -> list[list[Any]]:
        out = []
        for key, value in mapping.items():
            if type(key) not in (str, int):
                raise refuse(path, f"a dict with a {type(key).__name__} key {key!r}")
            out.append([key, node(value, tensor_path(path, key))])
        return out

    def node(value: Any, path: str) -> Any:
        kind = type(value)
        if value is None or kind in (str, bool, int):
            return value
        if kind is float:
            if math.isfinite(value):
                return value
            return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
        if kind is list or kind is tuple:
            items = [node(item, tensor_path(path, index)) for index, item in enumerate(value)]
            return {kind.__name__: items}
        if kind is dict:
            return {"dict": pairs(value, path)}
        if kind is OrderedDict:
            encoded: dict[str, Any] = {"odict": pairs(value, path)}
            meta = getattr(value, "_metadata", None)
            if meta is not None:
                encoded["meta"] = node(meta, tensor_path(path, "_metadata"))
            return encoded
        if is_tensor(value):
            name = path or ROOT_TENSOR
            if name in tensors:
                raise ValidationError(
                    f"{where}: two entries of the tree have the same name {name!r}; rename one",
                    path=path,
                )
            tensors[name] = value
            return {"tensor": name}
        raise refuse(path, f"a {kind.__module__}.{kind.__qualname__}".replace("builtins.", ""))

    encoded = {"format": TREE_FORMAT, "root": node(root, "")}
    text = json.dumps(encoded, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode(), tensors


def build_tree(data: bytes, tensors: Mapping[str, Any]) -> Any:
    """The object ``data`` (from ``encode_tree``) describes, with ``tensors`` in their places."""
    try:
        doc = json.loads(data)
        if doc.get("format") != TREE_FORMAT:
            raise IntegrityError(f"unsupported checkpoint tree format {doc.get('format')!r}")
        return _build(doc["root"], tensors)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IntegrityError(f"checkpoint tree is malformed: {exc!r}") from None


def _build(node: Any, tensors: Mapping[str, Any]) -> Any:
    if node is None or type(node) in (str, bool, int, float):
        return node
    if type(node) is not dict or len(node.keys() - {"meta"}) != 1:
        raise ValueError(f"not a tree node: {node!r}")
    ((tag, body),) = ((k, v) for k, v in node.items() if k != "meta")
    if tag == "tensor":
        return tensors[body]
    if tag == "float":
        return float({"nan": "nan", "inf": "inf", "-inf": "-inf"}[body])
    if tag == "list":
        return [_build(item, tensors) for item in body]
    if tag == "tuple":
        return tuple(_build(item, tensors) for item in body)
    if tag == "dict":
        return {_key(key): _build(item, tensors) for key, item in body}
    if tag == "odict":
        built: OrderedDict[Any, Any] = OrderedDict(
            (_key(key), _build(item, tensors)) for key, item in body
        )
        if "meta" in node:
            built._metadata = _build(node["meta"], tensors)  # type: ignore[attr-defined]
        return built
    raise ValueError(f"unknown tree node {tag!r}")


def _key(key: Any) -> str | int:
    if type(key) not in (str, int):
        raise ValueError(f"not a dict key: {key!r}")
    return key  # type: ignore[no-any-return]
