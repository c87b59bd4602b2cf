"""``wb.reactors``: fusion reactors created, validated, read, stacked and logged.

Every test runs embedded and through a live server (``remote_or_embedded``), on SQLite and
PostgreSQL; a bad reactor is a typed error and leaves nothing stored.
"""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from tests.conftest import remote_variants

from weightbase.catalog.base import utcnow
from weightbase.errors import Conflict, NotFound, ValidationError
from weightbase.serving.fusion import Edge, FusionOperation, Member, MemberAnswer, Reactor
from weightbase.workspace import Workspace

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from weightbase.sample_models import DIGITS_MLP, DigitsMLP  # noqa: E402
from weightbase.serving.runnable import load_runnable  # noqa: E402

SMALL, LARGE, THIRD = "small@0.1.0", "large@0.1.0", "third@0.1.0"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    remote_variants(metafunc)


@pytest.fixture
def wb(remote_or_embedded: Workspace) -> Workspace:
    """``small``, ``large`` and ``third``: digits MLPs with seeded random weights."""
    for seed, (name, hidden) in enumerate((("small", 8), ("large", 32), ("third", 16))):
        torch.manual_seed(seed)
        remote_or_embedded.models.push(
            name, DigitsMLP(hidden=hidden), entry_point=DIGITS_MLP, init_args={"hidden": hidden}
        )
    return remote_or_embedded


def _audit(wb: Workspace, reactor_id: str, action: str) -> list[dict[str, Any]]:
    connection = getattr(wb, "connection", None)
    if connection is None:
        return [e.to_dict() for e in wb.audit.entries("reactor", reactor_id, action=action)]
    found = connection.get(
        "/api/v1/audit", entity_kind="reactor", entity_id=reactor_id, action=action
    )
    return list(found["items"])


def test_a_reactor_is_created_read_and_listed(wb: Workspace) -> None:
    created = wb.reactors.create(
        "digits",
        strategy="cascade",
        threshold=0.9,
        members=[
            {"ref": LARGE, "priority": 1, "weight": 2.0},
            {"ref": SMALL, "priority": 0},
            {"ref": THIRD, "role": "validator"},
        ],
        edges=[
            (SMALL, LARGE, "feeds_into"),
            {"source": THIRD, "target": LARGE, "relation": "validates"},
        ],
        description="small first",
    )
    assert created.name == "digits"
    assert created.strategy == "cascade"
    assert created.threshold == 0.9
    assert [m.ref for m in created.members] == [LARGE, SMALL, THIRD]
    assert created.member(LARGE) == Member(LARGE, weight=2.0, priority=1)
    assert created.member(THIRD).role == "validator"
    assert created.edges == (Edge(SMALL, LARGE), Edge(THIRD, LARGE, "validates"))
    assert wb.reactors.get("digits") == created
    assert wb.reactors.get(created.id) == created
    assert [r.name for r in wb.reactors.list()] == ["digits"]
    assert Reactor.from_dict(created.to_dict()) == created
    assert [e["action"] for e in _audit(wb, created.id, "reactor.create")] == ["reactor.create"]
    with pytest.raises(Conflict):
        wb.reactors.create("digits", members=[SMALL, LARGE])
    # a deployment id names the version it deploys
    deployment = wb.deployments.deploy(LARGE, environment="staging")
    mixed = wb.reactors.create("mixed", members=[SMALL, {"ref": deployment.id, "weight": 3}])
    member = mixed.members[1]
    assert (member.ref, member.deployment_id, member.weight) == (LARGE, deployment.id, 3.0)
    assert [r.name for r in wb.reactors.list()] == ["digits", "mixed"]


BAD: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"members": [SMALL]}, ValidationError, "at least 2"),
    ({"members": [SMALL, SMALL]}, ValidationError, "distinct"),
    ({"members": [SMALL, "nope@1.0.0"]}, NotFound, "nope"),
    ({"members": [SMALL, "0" * 32]}, NotFound, "deployment"),
    ({"members": [SMALL, LARGE], "strategy": "boosting"}, ValidationError, "strategy"),
    ({"members": [SMALL, LARGE], "strategy": "cascade"}, ValidationError, "threshold"),
    (
        {"members": [SMALL, LARGE], "strategy": "cascade", "threshold": 1.5},
        ValidationError,
        "threshold",
    ),
    ({"members": [SMALL, LARGE], "threshold": 0.5}, ValidationError, "threshold"),
    ({"members": [{"ref": SMALL, "role": "boss"}, LARGE]}, ValidationError, "role"),
    ({"members": [{"ref": SMALL, "weight": -1}, LARGE]}, ValidationError, "weight"),
    (
        {"members": [{"ref": SMALL, "weight": 0}, {"ref": LARGE, "weight": 0}]},
        ValidationError,
        "weights",
    ),
    (
        {"members": [{"ref": SMALL, "role": "validator"}, {"ref": LARGE, "role": "validator"}]},
        ValidationError,
        "primary",
    ),
    ({"members": [{"ref": SMALL, "output": "embeddings"}, LARGE]}, ValidationError, "embeddings"),
    (
        {
            "members": [
                {"ref": SMALL, "output": "embeddings"},
                {"ref": LARGE, "output": "embeddings"},
            ],
            "strategy": "majority_vote",
        },
        ValidationError,
        "embeddings",
    ),
    (
        {"members": [SMALL, LARGE], "edges": [(SMALL, THIRD, "feeds_into")]},
        ValidationError,
        "not a member",
    ),
    ({"members": [SMALL, LARGE], "edges": [(SMALL, LARGE, "likes")]}, ValidationError, "relation"),
    ({"members": [SMALL, LARGE], "edges": [(SMALL, SMALL, "augments")]}, ValidationError, "itself"),
    (
        {
            "members": [SMALL, LARGE, THIRD],
            "edges": [
                (SMALL, LARGE, "feeds_into"),
                (LARGE, THIRD, "feeds_into"),
                (THIRD, SMALL, "augments"),
            ],
        },
        ValidationError,
        "cycle",
    ),
    (
        {
            "members": [SMALL, LARGE],
            "edges": [(SMALL, LARGE, "feeds_into"), (SMALL, LARGE, "augments")],
        },
        ValidationError,
        "twice",
    ),
]


def test_a_bad_reactor_is_refused_and_nothing_is_stored(wb: Workspace) -> None:
    # one workspace for every case: each is refused before anything is written
    for options, error, match in BAD:
        with pytest.raises(error, match=match):
            wb.reactors.create("bad", **options)
    for name in ["", "has space", "a/b", "reactor:x", "-dash", "x" * 129]:
        with pytest.raises(ValidationError, match="name"):
            wb.reactors.create(name, members=[SMALL, LARGE])
    assert wb.reactors.list() == []
    with pytest.raises(NotFound):
        wb.reactors.get("bad")


def test_operations_are_stored_read_and_logged_by_a_loaded_reactor(wb: Workspace) -> None:
    wb.reactors.create("ops", members=[SMALL, LARGE])
    start = utcnow()
    made = [
        FusionOperation(
            reactor="ops",
            at=start + timedelta(seconds=index),
            batch_size=2,
            members={SMALL: MemberAnswer(2, 1.5, (index, 1), (0.5, 0.25))},
            argmax=(index, 1),
            confidence=(0.5, 0.25),
            escalated=index % 2,
            latency_ms=2.0 + index,
        )
        for index in range(5)
    ]
    assert wb.reactors.record_operations("ops", made) == 5
    found = wb.reactors.operations("ops")
    assert [(op.argmax, op.escalated, op.latency_ms) for op in found] == [
        (op.argmax, op.escalated, op.latency_ms) for op in made
    ]
    assert found[0].members[SMALL] == MemberAnswer(2, 1.5, (0, 1), (0.5, 0.25))
    later = wb.reactors.operations("ops", since=start + timedelta(seconds=3), limit=1)
    assert [op.argmax for op in later] == [(3, 1)]
    with pytest.raises(ValidationError):
        wb.reactors.operations("ops", limit=0)
    with pytest.raises(NotFound):
        wb.reactors.operations("missing")
    bad = FusionOperation(
        reactor="ops", at=start, batch_size=1, members={}, argmax=(), confidence=(),
        escalated=2, latency_ms=1.0,
    )  # fmt: skip
    with pytest.raises(ValidationError, match="escalated"):
        wb.reactors.record_operations("ops", [made[0], bad])
    assert len(wb.reactors.operations("ops")) == 5

    # a reactor loaded as the server loads it logs its batches through the workspace
    wb.reactors.create("served", strategy="majority_vote", members=[SMALL, LARGE, THIRD])
    runnable = load_runnable(wb, "reactor:served")
    rows = list(np.random.default_rng(5).random((3, 64)).astype(np.float32))
    shares = np.stack(runnable.predict(rows))
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert set(np.unique(shares * 3).round(6)) <= {0.0, 1.0, 2.0, 3.0}
    runnable.log.flush()  # type: ignore[attr-defined]
    (operation,) = wb.reactors.operations("served")
    assert operation.batch_size == 3
    assert list(operation.argmax) == np.argmax(shares, axis=1).tolist()
    assert set(operation.members) == {SMALL, LARGE, THIRD}


def test_a_stacker_is_fitted_stored_as_tensors_and_refused_elsewhere(wb: Workspace) -> None:
    from scipy.special import softmax
    from sklearn.linear_model import LogisticRegression

    stack = wb.reactors.create("stack", strategy="stacking", members=[SMALL, LARGE])
    assert stack.stacker is None
    rng = np.random.default_rng(0)
    inputs = rng.random((60, 64)).astype(np.float32)
    labels = rng.integers(0, 3, 60)
    fitted = wb.reactors.fit_stacker("stack", inputs, labels)
    assert fitted.stacker is not None
    assert fitted.stacker.classes == (0, 1, 2)
    assert fitted.stacker.members == (SMALL, LARGE)
    assert fitted.stacker.samples == 60
    # the coefficients scikit-learn fits on the members' probabilities, kept as tensors
    features = []
    for seed, hidden in ((0, 8), (1, 32)):
        torch.manual_seed(seed)
        module = DigitsMLP(hidden=hidden).eval()
        with torch.inference_mode():
            features.append(
                softmax(module(torch.as_tensor(inputs)).numpy().astype(np.float64), axis=1)
            )
    expected = LogisticRegression(max_iter=2000).fit(np.hstack(features), labels)
    stored = wb.store.read(fitted.stacker.snapshot_id)
    np.testing.assert_allclose(stored["coef"], expected.coef_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stored["intercept"], expected.intercept_, rtol=1e-4, atol=1e-6)
    assert wb.reactors.get("stack").stacker == fitted.stacker
    assert len(_audit(wb, stack.id, "reactor.fit_stacker")) == 1
    wb.reactors.create("plain", members=[SMALL, LARGE])
    with pytest.raises(ValidationError, match="not stacking"):
        wb.reactors.fit_stacker("plain", inputs, labels)
    with pytest.raises(ValidationError, match="one label per input"):
        wb.reactors.fit_stacker("stack", inputs, labels[:10])
    with pytest.raises(ValidationError, match="class indices"):
        wb.reactors.fit_stacker("stack", inputs, labels + 20)


def test_every_public_method_of_the_service_is_overridden_remotely() -> None:
    from weightbase.remote.fusion import RemoteReactors
    from weightbase.serving.fusion import Reactors

    public = {
        name
        for name in dir(Reactors)
        if not name.startswith("_") and callable(getattr(Reactors, name))
    }
    assert public == {"create", "get", "list", "fit_stacker", "record_operations", "operations"}
    assert sorted(name for name in public if name not in vars(RemoteReactors)) == []
    for name in public:
        remote = inspect.signature(getattr(RemoteReactors, name))
        assert remote == inspect.signature(getattr(Reactors, name)), name
