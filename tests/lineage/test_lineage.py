"""Lineage edges and recursive walks, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from weightbase.catalog import Catalog
from weightbase.catalog.schema import LineageEdgeRow, utcnow
from weightbase.changes import ChangeRecorder
from weightbase.errors import NotFound, ValidationError
from weightbase.events import EventBus
from weightbase.governance import AuditLog
from weightbase.lineage import RELATIONS, LineageService, Node, ReachedNode


def version(number: int | str) -> Node:
    return Node("model_version", str(number))


@pytest.fixture
def lineage(catalog: Catalog) -> LineageService:
    return LineageService(catalog)


def _reached(found: list[ReachedNode]) -> list[tuple[str, int, str, str]]:
    return [(str(r.node), r.distance, r.relation, str(r.via)) for r in found]


def _chain(catalog: Catalog, length: int, relation: str = "derived_from") -> None:
    """model_version:i derived_from model_version:i-1, for i in 1..length-1, in one insert."""
    now = utcnow()
    rows = [
        {
            "source_kind": "model_version",
            "source_id": str(i),
            "target_kind": "model_version",
            "target_id": str(i - 1),
            "relation": relation,
            "created_at": now,
        }
        for i in range(1, length)
    ]
    with catalog.transaction() as session:
        session.execute(sa.insert(LineageEdgeRow), rows)


# -- nodes ---------------------------------------------------------------------------------


def test_nodes_parse_and_validate() -> None:
    assert Node.parse("model_version:42") == Node("model_version", "42")
    assert Node.parse("snapshot:ab:cd") == Node("snapshot", "ab:cd")
    assert str(Node("run", "r-1")) == "run:r-1"
    for bad in ("", "Model", "1run", "model version", "x" * 65):
        with pytest.raises(ValidationError):
            Node(bad, "1")
    with pytest.raises(ValidationError):
        Node("run", "")
    with pytest.raises(ValidationError):
        Node.parse("no-colon")


# -- edges ---------------------------------------------------------------------------------


def test_add_and_list_edges(lineage: LineageService) -> None:
    run = Node("run", "r1")
    data = Node("dataset_version", "d1")
    tuned = lineage.add_edge(version(2), version(1), "fine_tuned_from")
    lineage.add_edge(version(2), run, "produced_by")
    lineage.add_edge(run, data, "trained_on")
    assert tuned.source == version(2)
    assert tuned.target == version(1)
    assert tuned.created_at.tzinfo is not None

    out = lineage.edges(version(2), direction="out")
    assert [(str(e.target), e.relation) for e in out] == [
        ("model_version:1", "fine_tuned_from"),
        ("run:r1", "produced_by"),
    ]
    assert [str(e.source) for e in lineage.edges(run, direction="in")] == ["model_version:2"]
    assert len(lineage.edges(run)) == 2
    assert [e.relation for e in lineage.edges(version(2), relation="produced_by")] == [
        "produced_by"
    ]
    assert lineage.edges(Node("run", "unknown")) == []


def test_adding_an_edge_twice_returns_the_first(lineage: LineageService) -> None:
    first = lineage.add_edge(version(2), version(1), "derived_from")
    again = lineage.add_edge(version(2), version(1), "derived_from")
    assert again == first
    assert len(lineage.edges(version(2))) == 1
    # the same nodes under another relation are another edge
    lineage.add_edge(version(2), version(1), "fine_tuned_from")
    assert len(lineage.edges(version(2))) == 2


def test_remove_edge(lineage: LineageService) -> None:
    lineage.add_edge(version(2), version(1), "derived_from")
    removed = lineage.remove_edge(version(2), version(1), "derived_from")
    assert removed.relation == "derived_from"
    assert lineage.edges(version(2)) == []
    with pytest.raises(NotFound):
        lineage.remove_edge(version(2), version(1), "derived_from")


def test_relations_are_validated_and_extensible(catalog: Catalog) -> None:
    lineage = LineageService(catalog)
    assert lineage.relations == RELATIONS
    with pytest.raises(ValidationError, match="unknown lineage relation"):
        lineage.add_edge(version(2), version(1), "distilled_from")
    lineage.register_relation("distilled_from")
    assert lineage.add_edge(version(2), version(1), "distilled_from").relation == "distilled_from"
    assert "quantized_from" in LineageService(catalog, relations=["quantized_from"]).relations
    for bad in ("", "Distilled", "distilled from", "x" * 65):
        with pytest.raises(ValidationError):
            lineage.register_relation(bad)


def test_a_node_cannot_point_at_itself(lineage: LineageService) -> None:
    with pytest.raises(ValidationError):
        lineage.add_edge(version(1), version(1), "derived_from")


def test_an_edge_joins_the_callers_transaction(lineage: LineageService, catalog: Catalog) -> None:
    def write_then_fail() -> None:
        with catalog.transaction() as session:
            lineage.add_edge(version(2), version(1), "derived_from", session=session)
            assert len(lineage.edges(version(2), session=session)) == 1
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert lineage.edges(version(2)) == []


def test_edge_changes_are_audited_and_emitted(catalog: Catalog) -> None:
    audit, events = AuditLog(catalog, actor="alice"), EventBus(catalog)
    lineage = LineageService(catalog, recorder=ChangeRecorder(audit, events))
    heard: list[str] = []
    events.on("*", lambda event: heard.append(event.type))
    lineage.add_edge(version(2), version(1), "derived_from")
    lineage.add_edge(version(2), version(1), "derived_from")  # no change, no record
    lineage.remove_edge(version(2), version(1), "derived_from")
    assert heard == ["lineage_edge_added", "lineage_edge_removed"]
    entries = audit.entries("lineage_edge")
    assert [entry.action for entry in entries] == ["lineage.add_edge", "lineage.remove_edge"]
    assert entries[0].after is not None
    assert entries[0].after["relation"] == "derived_from"
    assert entries[1].before == entries[0].after


# -- walks ---------------------------------------------------------------------------------


def test_ancestors_and_descendants(lineage: LineageService) -> None:
    run, data = Node("run", "r1"), Node("dataset_version", "d1")
    lineage.add_edge(version(3), version(2), "fine_tuned_from")
    lineage.add_edge(version(2), version(1), "derived_from")
    lineage.add_edge(version(3), run, "produced_by")
    lineage.add_edge(run, data, "trained_on")
    lineage.add_edge(Node("deployment", "prod"), version(3), "deployed_as")

    assert _reached(lineage.ancestors(version(3))) == [
        ("model_version:2", 1, "fine_tuned_from", "model_version:3"),
        ("run:r1", 1, "produced_by", "model_version:3"),
        ("dataset_version:d1", 2, "trained_on", "run:r1"),
        ("model_version:1", 2, "derived_from", "model_version:2"),
    ]
    assert _reached(lineage.descendants(version(1))) == [
        ("model_version:2", 1, "derived_from", "model_version:1"),
        ("model_version:3", 2, "fine_tuned_from", "model_version:2"),
        ("deployment:prod", 3, "deployed_as", "model_version:3"),
    ]
    assert _reached(lineage.descendants(data)) == [
        ("run:r1", 1, "trained_on", "dataset_version:d1"),
        ("model_version:3", 2, "produced_by", "run:r1"),
        ("deployment:prod", 3, "deployed_as", "model_version:3"),
    ]
    assert lineage.ancestors(version(1)) == []
    assert lineage.ancestors(Node("run", "nowhere")) == []


def test_walks_can_follow_chosen_relations(lineage: LineageService) -> None:
    lineage.add_edge(version(3), version(2), "fine_tuned_from")
    lineage.add_edge(version(2), version(1), "derived_from")
    lineage.add_edge(version(3), Node("run", "r1"), "produced_by")
    only_tuning = lineage.ancestors(version(3), relations=["fine_tuned_from"])
    assert [str(r.node) for r in only_tuning] == ["model_version:2"]
    both = lineage.ancestors(version(3), relations={"fine_tuned_from", "derived_from"})
    assert [str(r.node) for r in both] == ["model_version:2", "model_version:1"]
    with pytest.raises(ValidationError):
        lineage.ancestors(version(3), relations=["no_such_relation"])


def test_a_node_reached_twice_is_reported_at_its_shortest_distance(
    lineage: LineageService,
) -> None:
    # 4 → 3 → 2 → 1 and a shortcut 4 → 1 (a merge of 3 with 1, say)
    lineage.add_edge(version(4), version(3), "derived_from")
    lineage.add_edge(version(3), version(2), "derived_from")
    lineage.add_edge(version(2), version(1), "derived_from")
    lineage.add_edge(version(4), version(1), "fine_tuned_from")
    assert _reached(lineage.ancestors(version(4))) == [
        ("model_version:1", 1, "fine_tuned_from", "model_version:4"),
        ("model_version:3", 1, "derived_from", "model_version:4"),
        ("model_version:2", 2, "derived_from", "model_version:3"),
    ]


def test_depth_limits(lineage: LineageService) -> None:
    for child in range(1, 6):
        lineage.add_edge(version(child), version(child - 1), "derived_from")
    assert [r.distance for r in lineage.ancestors(version(5), depth=2)] == [1, 2]
    assert lineage.ancestors(version(5), depth=0) == []
    assert len(lineage.ancestors(version(5), depth=100)) == 5  # past the cheap bound
    with pytest.raises(ValidationError):
        lineage.ancestors(version(5), depth=-1)


def test_a_long_chain_at_depth_limits(lineage: LineageService, catalog: Catalog) -> None:
    _chain(catalog, 1000)
    everything = lineage.ancestors(version(999))
    assert len(everything) == 999
    assert everything[0].node == version(998)
    assert everything[-1].node == version(0)
    assert everything[-1].distance == 999
    assert [r.distance for r in everything] == list(range(1, 1000))

    assert [str(r.node) for r in lineage.ancestors(version(999), depth=1)] == ["model_version:998"]
    assert len(lineage.ancestors(version(999), depth=64)) == 64
    assert len(lineage.ancestors(version(999), depth=65)) == 65
    assert len(lineage.ancestors(version(999), depth=500)) == 500
    assert len(lineage.ancestors(version(999), depth=998)) == 998
    assert len(lineage.ancestors(version(999), depth=5000)) == 999

    down = lineage.descendants(version(0))
    assert len(down) == 999
    assert down[-1] == ReachedNode(version(999), 999, "derived_from", version(998))
    assert len(lineage.descendants(version(500), depth=10)) == 10


@pytest.mark.parametrize("depth", [None, 3, 200])
def test_a_cycle_ends(lineage: LineageService, depth: int | None) -> None:
    # a → b → c → a, and c → d out of the cycle
    a, b, c, d = (Node("run", name) for name in "abcd")
    lineage.add_edge(a, b, "derived_from")
    lineage.add_edge(b, c, "derived_from")
    lineage.add_edge(c, a, "derived_from")
    lineage.add_edge(c, d, "derived_from")
    up = _reached(lineage.ancestors(a, depth=depth))
    down = _reached(lineage.descendants(a, depth=depth))
    if depth == 200 or depth is None:
        assert up == [
            ("run:b", 1, "derived_from", "run:a"),
            ("run:c", 2, "derived_from", "run:b"),
            ("run:d", 3, "derived_from", "run:c"),
        ]
    else:
        assert [node for node, *_ in up] == ["run:b", "run:c", "run:d"]
    assert down == [("run:c", 1, "derived_from", "run:a"), ("run:b", 2, "derived_from", "run:c")]


def test_a_dense_graph_with_cycles_stays_fast(lineage: LineageService, catalog: Catalog) -> None:
    # 40 nodes, every node points at the next 5 (mod 40): strongly connected, many paths.
    now = utcnow()
    rows = [
        {
            "source_kind": "run",
            "source_id": str(i),
            "target_kind": "run",
            "target_id": str((i + step) % 40),
            "relation": "derived_from",
            "created_at": now,
        }
        for i in range(40)
        for step in range(1, 6)
    ]
    with catalog.transaction() as session:
        session.execute(sa.insert(LineageEdgeRow), rows)
    reached = lineage.ancestors(Node("run", "0"))
    assert len(reached) == 39
    assert max(r.distance for r in reached) == 8  # ceil(39 / 5)
    assert {r.node.id: r.distance for r in reached}["5"] == 1
