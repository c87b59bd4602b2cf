"""Naming nodes as a person does, both walks at once, and the graph as JSON and DOT."""

from __future__ import annotations

import pytest

from weightbase.catalog import Catalog
from weightbase.errors import ValidationError
from weightbase.lineage import LineageGraph, LineageService, Node, NodeAddress, parse_address
from weightbase.lineage.graph import to_dot


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("model:bert@1.0.0", NodeAddress("model", "bert@1.0.0")),
        ("model:org/bert@production", NodeAddress("model", "org/bert@production")),
        ("dataset:iris@latest", NodeAddress("dataset", "iris@latest")),
        ("run:12", NodeAddress("run", "12")),
        ("checkpoint:runs/12/300", NodeAddress("checkpoint", "checkpoints/runs/12/300")),
        (
            "checkpoint:checkpoints/runs/12/300",
            NodeAddress("checkpoint", "checkpoints/runs/12/300"),
        ),
        ("model_version:7", NodeAddress("node", "model_version:7")),
        ("snapshot:ab:cd", NodeAddress("node", "snapshot:ab:cd")),
    ],
)
def test_addresses_parse(text: str, address: NodeAddress) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize(
    "text",
    [
        "",
        "bert@1.0.0",
        ":7",
        "Model:bert@1.0.0",
        "model:bert",
        "model:bert@",
        "dataset:@",
        "run:",
        "run:-1",
        "run:\uff11\uff12",
        "run:1.5",
        "run:9223372036854775808",
        "model_version:99999999999999999999999",
        "dataset_version:9223372036854775808",
        "checkpoint:",
        "model_version:",
        "x" * 65 + ":1",
        "deployment:" + "x" * 256,
    ],
)
def test_bad_addresses_are_validation_errors(text: str) -> None:
    with pytest.raises(ValidationError, match=r"lineage node|node id|node kind"):
        parse_address(text)


def test_graph_walks_both_ways(catalog: Catalog) -> None:
    lineage = LineageService(catalog)
    data, run, model, tuned = (
        Node("dataset_version", "1"),
        Node("run", "1"),
        Node("model_version", "1"),
        Node("model_version", "2"),
    )
    lineage.add_edge(run, data, "trained_on")
    lineage.add_edge(model, run, "produced_by")
    lineage.add_edge(tuned, model, "fine_tuned_from")
    graph = lineage.graph(run)
    assert [str(r.node) for r in graph.ancestors] == ["dataset_version:1"]
    assert [(str(r.node), r.distance) for r in graph.descendants] == [
        ("model_version:1", 1),
        ("model_version:2", 2),
    ]
    assert graph.nodes == [run, data, model, tuned]
    assert graph.edges == [
        (run, "trained_on", data),
        (model, "produced_by", run),
        (tuned, "fine_tuned_from", model),
    ]
    near = lineage.graph(run, depth=1)
    assert (near.depth, len(near.descendants)) == (1, 1)
    with pytest.raises(ValidationError):
        lineage.graph(run, depth=-1)


def test_graph_round_trips_through_json(catalog: Catalog) -> None:
    lineage = LineageService(catalog)
    lineage.add_edge(Node("model_version", "2"), Node("model_version", "1"), "derived_from")
    graph = lineage.graph(Node("model_version", "1")).named({Node("model_version", "1"): "m@0.1.0"})
    again = LineageGraph.from_dict(graph.to_dict())
    assert again.to_dict() == graph.to_dict()
    assert hash(again) == hash(graph)  # a frozen record, names and all
    assert again.name(Node("model_version", "1")) == "m@0.1.0"
    assert again.name(Node("model_version", "2")) == "model_version:2"
    with pytest.raises(ValidationError, match="not a lineage graph"):
        LineageGraph.from_dict({"node": {"kind": "run"}})


def test_dot_escapes_quotes_backslashes_and_line_breaks() -> None:
    start, odd = Node("run", "1"), Node("note", 'a "b" \\ c\nd')
    graph = LineageGraph(start, None, (), ()).named({start: 'run "1"'})
    text = to_dot(graph)
    assert '"run:1" [label="run \\"1\\"\\nrun"' in text
    from weightbase.lineage.records import ReachedNode

    with_odd = LineageGraph(start, None, (ReachedNode(odd, 1, "derived_from", start),), ())
    line = next(line for line in to_dot(with_odd).splitlines() if "->" in line)
    assert line == '  "run:1" -> "note:a \\"b\\" \\\\ c\\nd" [label="derived_from"];'
