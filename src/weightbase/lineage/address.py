"""Naming a lineage node as a person would: ``model:bert@1.0.0``, ``dataset:iris@latest``,
``run:12``, ``checkpoint:runs/12/300``, or a graph node as stored (``model_version:7``).

:func:`parse_address` reads the text; :func:`lineage_of` finds the node through the
workspace's services (so a remote workspace resolves it on its server) and walks
the graph both ways from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

from weightbase.errors import NotFound, ValidationError
from weightbase.lineage.graph import LineageGraph
from weightbase.lineage.records import Node

__all__ = [
    "CHECKPOINT_KIND",
    "CHECKPOINT_REFS",
    "LineageSources",
    "NodeAddress",
    "Scheme",
    "lineage_of",
    "parse_address",
    "resolve",
]

#: The graph kind of a training checkpoint; its id is the checkpoint's store ref.
CHECKPOINT_KIND = "checkpoint"
#: Where checkpoints live in the tensor store (``checkpoints/<namespace>/<step>``).
CHECKPOINT_REFS = "checkpoints/"

#: The prefixes that name a node by what a person knows of it; any other
#: ``kind:`` names a graph node as stored.
Scheme = Literal["model", "dataset", "run", "checkpoint", "node"]

_SCHEMES: frozenset[str] = frozenset(get_args(Scheme)) - {"node"}
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")
#: The largest id a catalog row can have (a signed 64-bit integer).
_MAX_ID = 2**63 - 1
#: Graph kinds whose ids are catalog row ids.
_ROW_KINDS = frozenset({"model_version", "dataset_version", "run"})
_FORMS = (
    "model:NAME@VERSION, dataset:NAME@VERSION, run:ID, checkpoint:REF "
    "or a graph node KIND:ID such as model_version:7"
)


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """A node as the user wrote it: ``scheme`` says how ``ref`` names it.

    ``"node"`` is a graph node as stored: ``ref`` is its ``kind:id``.
    """

    scheme: Scheme
    ref: str

    def __str__(self) -> str:
        return self.ref if self.scheme == "node" else f"{self.scheme}:{self.ref}"


def parse_address(text: str) -> NodeAddress:
    """``"dataset:iris@1.0.0"`` → ``NodeAddress("dataset", "iris@1.0.0")``; ``ValidationError``
    for text that names no node."""
    if not isinstance(text, str):
        raise ValidationError(f"a lineage node is text such as {_FORMS}, not {text!r}")
    prefix, sep, ref = text.partition(":")
    if not sep or not _KIND.match(prefix):
        raise ValidationError(f"not a lineage node {text!r}: expected {_FORMS}", node=text)
    if not ref.strip():
        raise ValidationError(f"not a lineage node {text!r}: nothing after {prefix}:", node=text)
    if prefix in ("model", "dataset") and ("@" not in ref or not ref.partition("@")[2]):
        raise ValidationError(
            f"not a lineage node {text!r}: {prefix}:NAME@VERSION names one version "
            f"(such as {prefix}:{ref.partition('@')[0] or 'NAME'}@latest)",
            node=text,
        )
    if prefix == "run" and not (ref.isascii() and ref.isdigit() and int(ref) <= _MAX_ID):
        raise ValidationError(
            f"not a lineage node {text!r}: run:ID takes a run's number", node=text
        )
    if prefix == "checkpoint":
        # checkpoint:runs/3/120 and checkpoint:checkpoints/runs/3/120 name one checkpoint
        ref = ref if ref.startswith(CHECKPOINT_REFS) else CHECKPOINT_REFS + ref
        return NodeAddress("checkpoint", ref)
    if prefix in _SCHEMES:
        return NodeAddress(prefix, ref)  # type: ignore[arg-type]  # one of Scheme's by the test
    Node(prefix, ref)  # a graph node's id has its own rules: check them now
    if prefix in _ROW_KINDS and ref.isascii() and ref.isdigit() and int(ref) > _MAX_ID:
        raise ValidationError(
            f"not a lineage node {text!r}: a {prefix} id is at most {_MAX_ID}", node=text
        )
    return NodeAddress("node", text)


# -- finding the node and its neighbourhood ---------------------------------------------------


class _Versions(Protocol):
    def node(self, ref: str) -> Node: ...


class _Runs(Protocol):
    def get(self, run_id: int) -> object: ...


class _Refs(Protocol):
    def get_ref(self, name: str) -> str: ...


class _Walks(Protocol):
    def graph(self, node: Node, *, depth: int | None = None) -> LineageGraph: ...


class LineageSources(Protocol):
    """What :func:`lineage_of` uses of a workspace, embedded or remote."""

    @property
    def models(self) -> _Versions: ...
    @property
    def datasets(self) -> _Versions: ...
    @property
    def runs(self) -> _Runs: ...
    @property
    def store(self) -> _Refs: ...
    @property
    def lineage(self) -> _Walks: ...
    def describe(self, nodes: Iterable[Node]) -> dict[Node, str]: ...


def resolve(address: NodeAddress, sources: LineageSources) -> Node:
    """The graph node ``address`` names; ``NotFound`` if what it names does not exist.

    A graph node as stored (``"node"``) is returned as it is: whether it exists
    is known only from the catalog's names and edges (see :func:`lineage_of`).
    """
    match address.scheme:
        case "model":
            return sources.models.node(address.ref)
        case "dataset":
            return sources.datasets.node(address.ref)
        case "run":
            sources.runs.get(int(address.ref))
            return Node("run", address.ref)
        case "checkpoint":
            sources.store.get_ref(address.ref)  # NotFound when no such checkpoint
            return Node(CHECKPOINT_KIND, address.ref)
        case _:
            return Node.parse(address.ref)


def lineage_of(
    sources: LineageSources, node: str | NodeAddress | Node, *, depth: int | None = None
) -> LineageGraph:
    """Where ``node`` came from and what came from it, each node named.

    ``node`` is text (see :func:`parse_address`), an address or a graph node.
    A graph node given as stored that has no edges and that the catalog does
    not know by name is ``NotFound``, as is anything an address names that
    does not exist.
    """
    address = parse_address(node) if isinstance(node, str) else node
    start = address if isinstance(address, Node) else resolve(address, sources)
    graph = sources.lineage.graph(start, depth=depth)
    names = sources.describe(graph.nodes)
    checked = isinstance(address, NodeAddress) and address.scheme != "node"
    if not checked and not graph.edges and names.get(start, str(start)) == str(start):
        raise NotFound(
            f"no lineage node {start}: the catalog knows no such {start.kind} and no edge "
            f"names it (expected {_FORMS})",
            node=str(start),
        )
    for found in graph.nodes:
        if found.kind == CHECKPOINT_KIND and names.get(found, str(found)) == str(found):
            names[found] = f"checkpoint {found.id.removeprefix(CHECKPOINT_REFS)}"
    return graph.named(names)
