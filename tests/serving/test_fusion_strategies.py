"""Reactors answering on real small models: each strategy's numbers are computed here from
the members' own forward passes (NumPy, scikit-learn), not written down; the interaction
graph orders the members; every batch is logged as one operation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax

import weightbase
from weightbase.catalog.base import utcnow
from weightbase.errors import ValidationError
from weightbase.serving.fusion import Edge, FusionOperation, Member
from weightbase.serving.fusion.graph import execution_order
from weightbase.serving.fusion.runnable import OperationLog, ReactorRunnable
from weightbase.serving.fusion.strategies import majority_vote, weighted_average
from weightbase.workspace import Workspace

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from weightbase.sample_models import DIGITS_MLP, DigitsMLP  # noqa: E402
from weightbase.serving.runnable import clear_runnables, load_runnable  # noqa: E402

SIZES = {"small": 8, "large": 32, "third": 16}
REFS = {name: f"{name}@0.1.0" for name in SIZES}
SMALL, LARGE, THIRD = REFS["small"], REFS["large"], REFS["third"]


def _module(name: str) -> Any:
    torch.manual_seed(sorted(SIZES).index(name))
    return DigitsMLP(hidden=SIZES[name]).eval()


@pytest.fixture(scope="module")
def wb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    clear_runnables()
    home: Path = tmp_path_factory.mktemp("fusion")
    with weightbase.open(home) as opened:
        for name, hidden in SIZES.items():
            opened.models.push(
                name, _module(name), entry_point=DIGITS_MLP, init_args={"hidden": hidden}
            )
        yield opened
    clear_runnables()


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return np.random.default_rng(7).random((40, 64)).astype(np.float32)


def _probs(name: str, rows: np.ndarray) -> np.ndarray:
    """The member's probabilities from its own forward pass, outside the reactor."""
    with torch.inference_mode():
        logits = _module(name)(torch.as_tensor(rows)).numpy().astype(np.float64)
    return np.asarray(softmax(logits, axis=1))


def _reactor(wb: Workspace, name: str, **options: Any) -> ReactorRunnable:
    wb.reactors.create(name, **options)
    runnable = load_runnable(wb, f"reactor:{name}")
    assert isinstance(runnable, ReactorRunnable)
    return runnable


def _answer(runnable: ReactorRunnable, inputs: np.ndarray) -> np.ndarray:
    return np.stack(runnable.predict(list(inputs)))


def test_weighted_average_is_the_weighted_mean_of_member_probabilities(
    wb: Workspace, inputs: np.ndarray
) -> None:
    members = [{"ref": SMALL, "weight": 1.0}, {"ref": LARGE, "weight": 3.0}]
    runnable = _reactor(wb, "average", members=members)
    expected = (_probs("small", inputs) * 1.0 + _probs("large", inputs) * 3.0) / 4.0
    np.testing.assert_allclose(_answer(runnable, inputs), expected, rtol=1e-5, atol=1e-7)
    # members are the runnables the server's loader built, shared, not built again
    assert runnable.members[SMALL] is load_runnable(wb, SMALL)


def test_majority_vote_gives_each_class_its_share_of_weighted_votes(
    wb: Workspace, inputs: np.ndarray
) -> None:
    members = [{"ref": SMALL, "weight": 1.0}, {"ref": LARGE, "weight": 2.0}, THIRD]
    runnable = _reactor(wb, "vote", strategy="majority_vote", members=members)
    votes = [np.argmax(_probs(name, inputs), axis=1) for name in ("small", "large", "third")]
    expected = np.zeros((len(inputs), 10))
    for vote, weight in zip(votes, (1.0, 2.0, 1.0), strict=True):
        expected[np.arange(len(inputs)), vote] += weight / 4.0
    np.testing.assert_allclose(_answer(runnable, inputs), expected)


def test_a_cascade_escalates_exactly_the_inputs_under_the_threshold(
    wb: Workspace, inputs: np.ndarray
) -> None:
    small, large = _probs("small", inputs), _probs("large", inputs)
    threshold = float(np.median(small.max(axis=1)))
    members = [{"ref": LARGE, "priority": 1}, {"ref": SMALL, "priority": 0}]
    runnable = _reactor(wb, "cascade", strategy="cascade", threshold=threshold, members=members)
    unsure = small.max(axis=1) < threshold
    assert 0 < unsure.sum() < len(inputs)
    expected = np.where(unsure[:, None], large, small)
    np.testing.assert_allclose(_answer(runnable, inputs), expected, rtol=1e-5, atol=1e-7)
    runnable.log.flush()  # type: ignore[union-attr]
    (operation,) = wb.reactors.operations("cascade")
    assert operation.batch_size == len(inputs)
    assert operation.escalated == int(unsure.sum())
    assert operation.members[SMALL].rows == len(inputs)
    assert operation.members[LARGE].rows == int(unsure.sum())
    assert list(operation.argmax) == np.argmax(expected, axis=1).tolist()
    np.testing.assert_allclose(operation.confidence, expected.max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(operation.members[SMALL].confidence, small.max(axis=1), rtol=1e-5)
    assert all(answer.latency_ms >= 0 for answer in operation.members.values())
    assert operation.latency_ms >= operation.members[SMALL].latency_ms


def test_an_edge_makes_a_cascade_run_its_target_after_its_source(
    wb: Workspace, inputs: np.ndarray
) -> None:
    large = _probs("large", inputs)
    threshold = float(np.median(large.max(axis=1)))
    runnable = _reactor(
        wb,
        "large-first",
        strategy="cascade",
        threshold=threshold,
        members=[{"ref": SMALL, "priority": 0}, {"ref": LARGE, "priority": 1}],
        edges=[(LARGE, SMALL, "feeds_into")],
    )
    expected = np.where((large.max(axis=1) < threshold)[:, None], _probs("small", inputs), large)
    np.testing.assert_allclose(_answer(runnable, inputs), expected, rtol=1e-5, atol=1e-7)


def test_stacking_answers_what_the_fitted_regression_predicts(
    wb: Workspace, inputs: np.ndarray
) -> None:
    from sklearn.linear_model import LogisticRegression

    wb.reactors.create("stacked", strategy="stacking", members=[SMALL, LARGE])
    with pytest.raises(ValidationError, match="fit_stacker"):
        load_runnable(wb, "reactor:stacked")
    labels = np.random.default_rng(3).integers(0, 4, len(inputs))
    wb.reactors.fit_stacker("stacked", inputs, labels)
    runnable = load_runnable(wb, "reactor:stacked")
    features = np.hstack([_probs("small", inputs), _probs("large", inputs)])
    fitted = LogisticRegression(max_iter=2000).fit(features, labels)
    expected = np.zeros((len(inputs), 10))
    expected[:, fitted.classes_] = fitted.predict_proba(features)
    np.testing.assert_allclose(np.stack(runnable.predict(list(inputs))), expected, atol=1e-4)


def test_parallel_returns_every_members_outputs_and_validators_do_not_vote(
    wb: Workspace, inputs: np.ndarray
) -> None:
    members = [SMALL, LARGE, {"ref": THIRD, "role": "validator"}]
    fanned = _reactor(wb, "fan", strategy="parallel", members=members)
    answer = _answer(fanned, inputs[:5])
    assert answer.shape == (5, 3, 10)
    with torch.inference_mode():
        logits = _module("large")(torch.as_tensor(inputs[:5])).numpy()
    np.testing.assert_allclose(answer[:, 1], logits, rtol=1e-5, atol=1e-6)
    checked = _reactor(wb, "checked", members=members)
    expected = (_probs("small", inputs) + _probs("large", inputs)) / 2
    np.testing.assert_allclose(_answer(checked, inputs), expected, rtol=1e-5, atol=1e-7)
    checked.log.flush()  # type: ignore[union-attr]
    (operation,) = wb.reactors.operations("checked")
    assert set(operation.members) == {SMALL, LARGE, THIRD}  # the validator answered too


def test_embeddings_are_averaged_as_vectors(wb: Workspace, inputs: np.ndarray) -> None:
    members = [
        {"ref": SMALL, "output": "embeddings", "weight": 1},
        {"ref": THIRD, "output": "embeddings", "weight": 1},
    ]
    runnable = _reactor(wb, "vectors", members=members)
    with torch.inference_mode():
        rows = torch.as_tensor(inputs[:4])
        expected = (_module("small")(rows).numpy() + _module("third")(rows).numpy()) / 2
    np.testing.assert_allclose(_answer(runnable, inputs[:4]), expected, rtol=1e-5, atol=1e-6)
    runnable.log.flush()  # type: ignore[union-attr]
    (operation,) = wb.reactors.operations("vectors")
    assert operation.argmax == ()
    assert operation.members[SMALL].argmax == ()


@st.composite
def _graphs(draw: st.DrawFn) -> tuple[list[Member], list[Edge]]:
    count = draw(st.integers(2, 7))
    members = [Member(f"m{i}@1", priority=draw(st.integers(0, 3))) for i in range(count)]
    # edges only from an earlier to a later index of a shuffled order: acyclic by construction
    rank = draw(st.permutations(range(count)))
    pairs = draw(st.sets(st.tuples(st.integers(0, count - 1), st.integers(0, count - 1))))
    edges = [
        Edge(members[a].ref, members[b].ref)
        for a, b in sorted(pairs)
        if rank.index(a) < rank.index(b)
    ]
    return members, edges


@settings(max_examples=60, deadline=None)
@given(_graphs())
def test_the_execution_order_follows_every_edge(graph: tuple[list[Member], list[Edge]]) -> None:
    members, edges = graph
    order = [member.ref for member in execution_order(members, edges)]
    assert sorted(order) == sorted(member.ref for member in members)
    for edge in edges:
        assert order.index(edge.source) < order.index(edge.target)
    if not edges:  # nothing constrains it: priority, then the order given
        assert order == [m.ref for m in sorted(members, key=lambda m: m.priority)]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda members: st.tuples(
            st.lists(
                st.lists(st.floats(0, 1), min_size=3, max_size=3),
                min_size=members,
                max_size=members,
            ),
            st.lists(st.floats(0.1, 5), min_size=members, max_size=members),
        )
    )
)
def test_fused_rows_are_weighted_means_and_vote_shares(
    drawn: tuple[list[list[float]], list[float]],
) -> None:
    rows, weights = drawn
    outputs = [np.asarray([row]) for row in rows]
    mean = weighted_average(outputs, weights)
    expected = sum(w * np.asarray(r) for w, r in zip(weights, rows, strict=True)) / sum(weights)
    np.testing.assert_allclose(mean[0], expected, rtol=1e-9, atol=1e-12)
    shares = majority_vote(outputs, weights)
    assert shares.sum() == pytest.approx(1.0)
    for cls in range(3):
        voted = sum(w for w, r in zip(weights, rows, strict=True) if int(np.argmax(r)) == cls)
        assert shares[0, cls] == pytest.approx(voted / sum(weights))


def _operation(reactor: str, index: int) -> FusionOperation:
    return FusionOperation(
        reactor=reactor, at=utcnow(), batch_size=1, members={}, argmax=(index,),
        confidence=(1.0,), escalated=0, latency_ms=0.1,
    )  # fmt: skip


def test_the_operation_log_drops_rather_than_blocks_and_survives_a_failed_write(
    wb: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    wb.reactors.create("logged", members=[SMALL, LARGE])
    log = OperationLog(wb.reactors, "logged", interval_s=3600, max_queued=2)
    for index in range(5):
        log.add(_operation("logged", index))  # the writer sleeps: the queue fills at 2
    assert log.dropped == 3
    log.flush()
    assert log.written == 2
    assert [op.argmax for op in wb.reactors.operations("logged")] == [(0,), (1,)]
    broken = OperationLog(wb.reactors, "no-such-reactor", interval_s=3600)
    broken.add(_operation("no-such-reactor", 0))
    broken.flush()
    assert broken.written == 0
    assert "not written" in caplog.text
    broken.add(_operation("no-such-reactor", 1))  # still taking operations
    broken.flush()
    assert broken.written == 0
