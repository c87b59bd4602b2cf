"""``wb.reactors``: fusion reactors, ensembles and cascades of served models.

    wb.reactors.create("digits", strategy="cascade", threshold=0.9,
                       members=[{"ref": "digits-small@1.0.0", "priority": 0},
                                {"ref": "digits-large@1.0.0", "priority": 1}])
    wb.reactors.fit_stacker("digits-stack", inputs, labels)  # a stacking reactor's combiner
    wb.reactors.operations("digits", limit=10)               # what each batch did

A reactor is served like a model (``weightbase serve reactor:digits``): its runnable
(:mod:`weightbase.serving.fusion.runnable`) runs the members and combines their answers
by the strategy, and logs each fusion operation here in batches. Every change is audited
on the reactor and emitted as an event.
"""

from __future__ import annotations

import builtins
import math
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from weightbase.catalog.schema import ReactorOperationRow, ReactorRow, utcnow
from weightbase.errors import Conflict, ValidationError
from weightbase.serving.abtest_rows import deployment_variant
from weightbase.serving.fusion.graph import check_graph
from weightbase.serving.fusion.records import (
    STRATEGIES,
    FusionOperation,
    Member,
    Reactor,
    Stacker,
)
from weightbase.serving.fusion.rows import (
    EdgeLike,
    MemberLike,
    check_name,
    edge_of,
    find_row,
    member_of,
    operation_record,
    operation_row,
    reactor_record,
)
from weightbase.serving.fusion.stacking import fit_combiner, stack_features

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.registry import ModelRegistry
    from weightbase.serving.runnable_base import Runnable
    from weightbase.tensors import TensorStore

__all__ = ["MAX_OPERATIONS_READ", "Reactors"]

#: The most operations one read returns.
MAX_OPERATIONS_READ = 10_000
#: The most operations one write carries.
_MAX_OPERATIONS_WRITE = 10_000
#: What a cascade or a vote can fuse: class scores, not embeddings.
_CLASS_KINDS = ("logits", "probabilities")


class Reactors:
    """Fusion reactors: create, read, fit a stacking combiner, log and read operations."""

    def __init__(
        self,
        catalog: Catalog,
        store: TensorStore,
        *,
        recorder: ChangeRecorder,
        models: ModelRegistry,
        load: Callable[[str], Runnable],
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._recorder = recorder
        self._models = models
        self._load = load

    # -- changes ---------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        members: Sequence[MemberLike],
        strategy: str = "weighted_average",
        edges: Sequence[EdgeLike] = (),
        threshold: float | None = None,
        description: str | None = None,
    ) -> Reactor:
        """Create reactor ``name`` over ``members`` (model refs ``NAME@VERSION|ALIAS``,
        deployment ids, or mappings with ``ref``, ``role``, ``weight``, ``priority`` and
        ``output``: ``logits``, ``probabilities`` or ``embeddings``).

        ``strategy`` is one of ``weighted_average``, ``majority_vote``, ``stacking``,
        ``parallel`` or ``cascade`` (which needs ``threshold``, the max softmax probability
        a member must reach to answer without escalating). ``edges`` (``(source, target,
        relation)``) form the interaction graph and must hold no cycle. Everything is
        checked before anything is stored (``ValidationError``; ``Conflict`` for a name
        already taken; ``NotFound`` for a ref or deployment that does not exist).
        """
        check_name(name)
        if strategy not in STRATEGIES:
            raise ValidationError(
                f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}",
                field="strategy",
            )
        if isinstance(members, str | bytes) or len(members) < 2:
            raise ValidationError("a reactor needs at least 2 members", field="members")
        parsed = [member_of(item) for item in members]
        for item in parsed:
            if isinstance(item, Member):
                self._models.version(item.ref)  # NotFound for a ref that names nothing
        chosen_edges = tuple(edge_of(item) for item in edges)
        threshold = _threshold(strategy, threshold)
        if description is not None and (
            not isinstance(description, str) or len(description) > 10_000
        ):
            raise ValidationError("a description is at most 10000 characters", field="description")
        reactor_id = uuid.uuid4().hex

        def work(session: Session) -> Reactor:
            chosen = [
                _resolved(session, item, raw) for item, raw in zip(parsed, members, strict=True)
            ]
            _check_members(strategy, chosen)
            check_graph(chosen, chosen_edges)
            taken = session.scalar(select(ReactorRow.id).where(ReactorRow.name == name))
            if taken is not None:
                raise Conflict(f"a reactor named {name!r} exists", reactor=taken)
            now = utcnow()
            row = ReactorRow(
                id=reactor_id,
                name=name,
                description=description,
                strategy=strategy,
                members=[item.to_dict() for item in chosen],
                edges=[item.to_dict() for item in chosen_edges],
                threshold=threshold,
                created_at=now,
                updated_at=now,
                created_by=self._recorder.actor,
            )
            session.add(row)
            session.flush()
            created = reactor_record(row)
            self._change(session, created, "create", None, created.to_dict(), "created")
            return created

        return self._catalog.write(work)

    def fit_stacker(self, reactor: str, inputs: Sequence[Any], labels: Sequence[int]) -> Reactor:
        """Fit a stacking reactor's combiner: a logistic regression of ``labels`` (class
        indices) on the members' probabilities for ``inputs`` (validation data, one row per
        input); its coefficients are stored as a snapshot and the reactor points at it."""
        found = self.get(reactor)
        if found.strategy != "stacking":
            raise ValidationError(
                f"reactor {found.name!r} is {found.strategy}, not stacking", field="reactor"
            )
        rows = _input_rows(inputs)
        voters = [member for member in found.members if member.role != "validator"]
        from weightbase.serving.fusion.runnable import member_probabilities

        probs = [member_probabilities(member, self._load(member.ref), rows) for member in voters]
        width = probs[0].shape[1]
        combiner = fit_combiner(stack_features(probs), labels, width)
        snapshot = self._store.write(combiner.tensors(), ref=f"reactors/{found.id}/stacker")
        stacker = Stacker(
            snapshot_id=snapshot.id,
            classes=tuple(int(item) for item in combiner.classes),
            members=tuple(member.ref for member in voters),
            samples=len(rows),
            train_accuracy=combiner.train_accuracy,
        )

        def work(session: Session) -> Reactor:
            row = find_row(session, found.id, lock=True)
            before = None if row.stacker is None else dict(row.stacker)
            row.stacker_snapshot_id = stacker.snapshot_id
            described = stacker.to_dict()
            described.pop("snapshot_id")
            row.stacker = described
            row.updated_at = utcnow()
            fitted = reactor_record(row)
            self._change(
                session, fitted, "fit_stacker", before, stacker.to_dict(), "stacker_fitted"
            )
            return fitted

        return self._catalog.write(work)

    def record_operations(self, reactor: str, operations: Sequence[FusionOperation]) -> int:
        """Store fusion ``operations`` of ``reactor`` at once; how many were stored."""
        if isinstance(operations, str | bytes) or len(operations) > _MAX_OPERATIONS_WRITE:
            raise ValidationError(
                f"operations are a list of at most {_MAX_OPERATIONS_WRITE}", field="operations"
            )
        for operation in operations:
            if not isinstance(operation, FusionOperation):
                raise ValidationError(f"not a fusion operation: {operation!r}", field="operations")
            _check_operation(operation)

        def work(session: Session) -> int:
            row = find_row(session, reactor)
            session.add_all([operation_row(row.id, item) for item in operations])
            return len(operations)

        return self._catalog.write(work)

    # -- reads -----------------------------------------------------------------------

    def get(self, reactor: str) -> Reactor:
        """The reactor with that name (or id)."""
        with self._catalog.session() as session:
            return reactor_record(find_row(session, reactor))

    def list(self) -> builtins.list[Reactor]:
        """Every reactor, by name."""
        with self._catalog.session() as session:
            rows = session.scalars(select(ReactorRow).order_by(ReactorRow.name))
            return [reactor_record(row) for row in rows]

    def operations(
        self, reactor: str, *, since: datetime | None = None, limit: int = 100
    ) -> builtins.list[FusionOperation]:
        """The reactor's fusion operations at or after ``since``, oldest first, at most
        ``limit`` (1 to 10000)."""
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= MAX_OPERATIONS_READ
        ):
            raise ValidationError(
                f"limit is 1 to {MAX_OPERATIONS_READ}, not {limit!r}", field="limit"
            )
        if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
            raise ValidationError("since is a timezone-aware datetime", field="since")
        with self._catalog.session() as session:
            row = find_row(session, reactor)
            query = select(ReactorOperationRow).where(ReactorOperationRow.reactor_id == row.id)
            if since is not None:
                query = query.where(ReactorOperationRow.at >= since)
            query = query.order_by(ReactorOperationRow.at, ReactorOperationRow.id).limit(limit)
            return [operation_record(item, row.name) for item in session.scalars(query)]

    # -- helpers ---------------------------------------------------------------------

    def _change(
        self,
        session: Session,
        reactor: Reactor,
        action: str,
        before: Any,
        after: dict[str, Any],
        event: str,
    ) -> None:
        self._recorder.record(
            session,
            f"reactor.{action}",
            "reactor",
            reactor.id,
            before=before,
            after=after,
            event=f"reactor_{event}",
            payload={"reactor": reactor.id, "name": reactor.name, "action": action},
        )


def _resolved(session: Session, item: Member | str, raw: MemberLike) -> Member:
    """A member whose deployment id is resolved to the version it serves."""
    if isinstance(item, Member):
        return item
    variant = deployment_variant(session, item)
    given = dict(raw) if not isinstance(raw, str | Member) else {}
    given.update(ref=variant.ref, deployment_id=variant.deployment_id)
    return Member.from_dict(given)


def _threshold(strategy: str, threshold: Any) -> float | None:
    if strategy != "cascade":
        if threshold is not None:
            raise ValidationError(
                f"a threshold is for a cascade, not {strategy}", field="threshold"
            )
        return None
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not math.isfinite(threshold)
        or not 0 <= threshold <= 1
    ):
        raise ValidationError(
            f"a cascade needs a threshold between 0 and 1 (a max softmax probability), "
            f"not {threshold!r}",
            field="threshold",
        )
    return float(threshold)


def _check_members(strategy: str, members: Sequence[Member]) -> None:
    refs = [member.ref for member in members]
    if len(set(refs)) != len(refs):
        raise ValidationError("members must be distinct", field="members")
    voters = [member for member in members if member.role != "validator"]
    if not voters:
        raise ValidationError("a reactor needs a primary or secondary member", field="members")
    if strategy == "cascade" and len(voters) < 2:
        raise ValidationError("a cascade needs 2 members that answer", field="members")
    if strategy in ("weighted_average", "majority_vote") and sum(m.weight for m in voters) <= 0:
        raise ValidationError("the members' weights must not all be 0", field="weight")
    kinds = {member.output for member in members}
    if "embeddings" in kinds:
        if strategy not in ("weighted_average", "parallel"):
            raise ValidationError(
                f"{strategy} fuses class scores; embeddings are averaged (weighted_average) "
                "or returned side by side (parallel)",
                field="output",
            )
        if kinds != {"embeddings"} and strategy == "weighted_average":
            raise ValidationError("embeddings cannot be averaged with class scores", field="output")


def _check_operation(operation: FusionOperation) -> None:
    if (
        operation.batch_size < 0
        or operation.escalated < 0
        or operation.escalated > operation.batch_size
    ):
        raise ValidationError(
            "an operation's batch_size and escalated are counts, escalated ≤ batch_size",
            field="operations",
        )
    if not math.isfinite(operation.latency_ms) or operation.latency_ms < 0:
        raise ValidationError("an operation's latency is a finite number ≥ 0", field="operations")
    if operation.at.tzinfo is None:
        raise ValidationError("an operation's time is timezone-aware", field="operations")


def _input_rows(inputs: Sequence[Any]) -> builtins.list[Any]:
    try:
        array = np.asarray(inputs, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"inputs are rows of numbers ({exc})", field="inputs") from None
    if array.ndim < 2 or array.shape[0] < 2:
        raise ValidationError("inputs are at least 2 rows of numbers", field="inputs")
    if not np.all(np.isfinite(array)):
        raise ValidationError("inputs must be finite numbers", field="inputs")
    return builtins.list(array)
