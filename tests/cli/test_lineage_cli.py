"""``weightbase lineage NODE``: any node's ancestors and descendants, as a tree, JSON or DOT."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from tests.lineage.lineage_support import Made, record_lineage

from weightbase.cli import ExitCode
from weightbase.lineage import Node

GROUP = "lineage"  # the command the fixtures in conftest.py run


@pytest.fixture
def made(weightbase_home: Path) -> Made:
    import weightbase

    with weightbase.open() as wb:
        return record_lineage(wb)


def _walk(found: list[dict[str, Any]]) -> list[tuple[str, str, int, str]]:
    return [(n["name"], n["relation"], n["distance"], n["via_name"]) for n in found]


def test_a_dataset_shows_what_came_from_it(cli_json: Any, made: Made) -> None:
    found = cli_json("dataset:digits@0.1.0")
    assert (found["node"], found["name"], found["depth"]) == (
        made.dataset.to_dict(),
        "digits@0.1.0",
        None,
    )
    assert found["ancestors"] == []
    run = f"run {made.run_id}"
    assert _walk(found["descendants"]) == [
        ("mlp@0.1.0", "trained_on", 1, "digits@0.1.0"),
        (run, "trained_on", 1, "digits@0.1.0"),
        (f"checkpoint runs/{made.run_id}/10", "produced_by", 2, run),
        ("mlp-tuned@0.1.0", "fine_tuned_from", 2, "mlp@0.1.0"),
    ]  # nearest first, then by kind and id


def test_a_model_both_ways_and_depth(cli_json: Any, made: Made) -> None:
    found = cli_json("model:mlp@0.1.0")
    assert {(n["name"], n["distance"]) for n in found["ancestors"]} == {
        ("digits@0.1.0", 1),
        (f"run {made.run_id}", 1),
        (f"checkpoint runs/{made.run_id}/10", 1),
    }
    assert _walk(found["descendants"]) == [("mlp-tuned@0.1.0", "fine_tuned_from", 1, "mlp@0.1.0")]
    near = cli_json("model:mlp-tuned@latest", "--depth", "1")
    assert near["depth"] == 1
    assert _walk(near["ancestors"]) == [("mlp@0.1.0", "fine_tuned_from", 1, "mlp-tuned@0.1.0")]
    assert near["descendants"] == []


def test_runs_checkpoints_and_stored_graph_nodes(cli_json: Any, made: Made) -> None:
    run = cli_json(f"run:{made.run_id}")
    assert [n["name"] for n in run["ancestors"]] == ["digits@0.1.0"]
    # checkpoint:REF takes the ref with or without its checkpoints/ prefix
    short = cli_json("checkpoint:" + made.checkpoint.removeprefix("checkpoints/"))
    assert short == cli_json("checkpoint:" + made.checkpoint)
    assert _walk(short["ancestors"]) == [
        (f"run {made.run_id}", "produced_by", 1, f"checkpoint runs/{made.run_id}/10"),
        ("digits@0.1.0", "trained_on", 2, f"run {made.run_id}"),
    ]
    assert [n["name"] for n in short["descendants"]] == ["mlp@0.1.0", "mlp-tuned@0.1.0"]
    stored = cli_json(str(made.tuned))
    assert stored["name"] == "mlp-tuned@0.1.0"
    assert stored["ancestors"][0]["name"] == "mlp@0.1.0"


def test_the_tree_shows_both_directions(cli: Any, made: Made) -> None:
    text = cli("model:mlp@0.1.0").stdout
    assert "ancestors" in text
    assert "descendants" in text
    assert re.search(r"trained_on →.*digits@0\.1\.0", text)
    assert re.search(r"mlp-tuned@0\.1\.0.*fine_tuned_from", text)
    alone = cli("model:mlp-tuned@0.1.0", "--depth", "1").stdout
    assert "no recorded descendants" in alone


# -- DOT ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(?P<quoted>"(?:[^"\\]|\\.)*")|(?P<word>[\w.]+)|(?P<op>->|[{}\[\];=,]))')


def parse_dot(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str, dict[str, str]]]]:
    """A strict reader of the DOT subset ``to_dot`` writes: nodes and edges with attributes.

    Any token outside the grammar fails, so a quote left unescaped is caught.
    """
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        assert match, f"not DOT at {position}: {text[position : position + 40]!r}"
        kind = match.lastgroup
        assert kind is not None
        value = match.group(kind)
        if kind == "quoted":
            body = value[1:-1]
            value = re.sub(r'\\(["\\])', r"\1", body)
        tokens.append((kind, value))
        position = match.end()
    assert tokens[:3] == [("word", "digraph"), ("word", "lineage"), ("op", "{")]
    assert tokens[-1] == ("op", "}")
    nodes: dict[str, dict[str, str]] = {}
    edges: list[tuple[str, str, dict[str, str]]] = []
    statements: list[list[tuple[str, str]]] = [[]]
    for token in tokens[3:-1]:
        if token == ("op", ";"):
            statements.append([])
        else:
            statements[-1].append(token)
    for statement in filter(None, statements):
        attributes: dict[str, str] = {}
        head = statement
        if ("op", "[") in statement:
            at = statement.index(("op", "["))
            head = statement[:at]
            assert statement[-1] == ("op", "]")
            pairs = [t for t in statement[at + 1 : -1] if t != ("op", ",")]
            for i in range(0, len(pairs), 3):
                key, equals, value = pairs[i : i + 3]
                assert (equals, key[0]) == (("op", "="), "word")
                assert value[0] != "op"
                attributes[key[1]] = value[1]
        if len(head) == 3 and head[1] == ("op", "->"):
            assert head[0][0] == head[2][0] == "quoted"
            edges.append((head[0][1], head[2][1], attributes))
        elif len(head) == 1 and head[0][0] == "quoted":
            nodes[head[0][1]] = attributes
        else:
            assert head[0][0] == "word", statement  # graph-wide settings: rankdir=BT, node […]
    return nodes, edges


def test_dot_is_a_graph_graphviz_reads(cli: Any, made: Made) -> None:
    nodes, edges = parse_dot(cli("dataset:digits@0.1.0", "--dot").stdout)
    assert set(nodes) == {
        str(made.dataset),
        f"run:{made.run_id}",
        str(made.base),
        str(made.tuned),
        f"checkpoint:{made.checkpoint}",
    }
    assert nodes[str(made.dataset)]["label"] == "digits@0.1.0\\ndataset_version"
    assert "bold" in nodes[str(made.dataset)]["style"]  # the start stands out
    assert sorted((a, b, attrs["label"]) for a, b, attrs in edges) == sorted(
        [
            (str(made.base), str(made.dataset), "trained_on"),
            (f"run:{made.run_id}", str(made.dataset), "trained_on"),
            (str(made.tuned), str(made.base), "fine_tuned_from"),
            (f"checkpoint:{made.checkpoint}", f"run:{made.run_id}", "produced_by"),
        ]
    )


def test_dot_quotes_ids_that_look_like_dot(cli: Any, weightbase_home: Path) -> None:
    import weightbase

    odd = Node("note", 'say "hi" \\ {x -> y}; [label=z]\nnext')
    with weightbase.open() as wb:
        wb.lineage.add_edge(odd, Node("deployment", "prod"), "derived_from")
    nodes, edges = parse_dot(cli("deployment:prod", "--dot").stdout)
    assert set(nodes) == {"deployment:prod", 'note:say "hi" \\ {x -> y}; [label=z]\\nnext'}
    assert [(a, b) for a, b, _ in edges] == [
        ('note:say "hi" \\ {x -> y}; [label=z]\\nnext', "deployment:prod")
    ]


# -- refused -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "node",
    [
        "digits@0.1.0",  # no kind
        "model:mlp",  # a model, not one version
        "dataset:digits@",
        "run:abc",
        "Model:mlp@0.1.0",
        "model:",
    ],
)
def test_bad_node_text_is_a_usage_error(fail: Any, made: Made, node: str) -> None:
    assert "not a lineage node" in fail(node, code=ExitCode.USAGE)


@pytest.mark.parametrize(
    "node",
    ["model:nope@0.1.0", "dataset:digits@9.0.0", "run:999", "checkpoint:runs/9/9", "deployment:7"],
)
def test_an_unknown_node_is_not_found(fail: Any, made: Made, node: str) -> None:
    fail(node, code=ExitCode.NOT_FOUND)


def test_json_and_dot_together_are_refused(fail: Any, made: Made) -> None:
    assert "--json" in fail("run:1", "--json", "--dot", code=ExitCode.USAGE)


@pytest.mark.parametrize(
    ("node", "code"),
    [
        ("model:[/x]@0.1.0", ExitCode.USAGE),  # markup in a name is refused, not rendered
        ("dataset:a\x00b@0.1.0", ExitCode.USAGE),
        ("run:" + "9" * 400, ExitCode.USAGE),  # past any row id: no OverflowError
        ("run:9223372036854775807", ExitCode.NOT_FOUND),
        ("note:" + "x" * 256, ExitCode.USAGE),
        ("checkpoint:../../etc/passwd", ExitCode.USAGE),
        ("checkpoint:runs/1/\n10", ExitCode.USAGE),
        ("note:[bold]x[/bold]", ExitCode.NOT_FOUND),
    ],
)
def test_hostile_node_text_is_one_error_line(fail: Any, made: Made, node: str, code: int) -> None:
    fail(node, code=code)
