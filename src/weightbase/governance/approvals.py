"""``wb.approvals``: approval policies per model, approval requests per version, decisions.

    wb.approvals.set_policy("bert", approvers=["ana", "ben"], required_approvals=2,
                            require_approval_for_production=True)
    request = wb.approvals.request("bert@1.2.0", comment="beats 1.1.0 on every eval")
    wb.approvals.decide(request.id, "approved", approver="ana")
    wb.approvals.decide(request.id, "approved", approver="ben")   # now approved
    wb.models.promote("bert@1.2.0", "production")                 # allowed

A request is ``approved`` once ``required_approvals`` of the model's approvers
approved it, and ``rejected`` at the first rejection. A requester cannot
decide their own request. When the model's policy requires it, a version
enters the ``production`` stage or alias only with an approved request for
``production`` (:func:`production_guard`, which the registry asks in the
transaction of the move); otherwise ``ApprovalRequired`` says what is missing.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select

from weightbase.catalog.schema import (
    APPROVAL_DECISIONS,
    APPROVAL_STATUSES,
    ApprovalDecisionRow,
    ApprovalRequestRow,
    ModelGovernanceRow,
    ModelRow,
    ModelVersionRow,
    utcnow,
)
from weightbase.errors import (
    ApprovalRequired,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationError,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.registry import ModelRegistry, ModelVersion

__all__ = [
    "ApprovalDecision",
    "ApprovalPolicy",
    "ApprovalRequest",
    "Approvals",
    "production_guard",
]

#: What a request approves when it names nothing else.
PRODUCTION = "production"

Decision = Literal["approved", "rejected"]


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    """Who approves a model's versions, how many must, and whether production needs it."""

    model: str
    approvers: tuple[str, ...] = ()
    required_approvals: int = 1
    require_approval_for_production: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "approvers": list(self.approvers),
            "required_approvals": self.required_approvals,
            "require_approval_for_production": self.require_approval_for_production,
        }


@dataclass(frozen=True, slots=True)
class ApprovalDecision:
    """One approver's decision on a request."""

    approver: str
    decision: str
    comment: str | None
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "approver": self.approver,
            "decision": self.decision,
            "comment": self.comment,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A request that a version be approved for ``target``, and the decisions on it."""

    id: int
    model: str
    version: str
    version_id: int
    target: str
    requested_by: str
    comment: str | None
    status: str
    created_at: datetime
    decided_at: datetime | None
    decisions: tuple[ApprovalDecision, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "target": self.target,
            "requested_by": self.requested_by,
            "comment": self.comment,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "decided_at": None if self.decided_at is None else self.decided_at.isoformat(),
            "decisions": [decision.to_dict() for decision in self.decisions],
        }


class Approvals:
    """Approval policies, requests and decisions; the production check the registry asks."""

    def __init__(
        self, catalog: Catalog, *, recorder: ChangeRecorder, models: ModelRegistry
    ) -> None:
        self._catalog = catalog
        self._recorder = recorder
        self._models = models

    # -- policies --------------------------------------------------------------------

    def policy(self, model: str) -> ApprovalPolicy:
        """The model's policy (no approvers and no production check until one is set)."""
        model_id = self._models.get(model).id
        with self._catalog.session() as session:
            return _policy(session.get(ModelGovernanceRow, model_id), model)

    def set_policy(
        self,
        model: str,
        *,
        approvers: Iterable[str] | None = None,
        required_approvals: int | None = None,
        require_approval_for_production: bool | None = None,
        reason: str | None = None,
    ) -> ApprovalPolicy:
        """Change what is given (None keeps it): approvers, how many, and the production check."""
        names = None if approvers is None else _check_approvers(approvers)
        if required_approvals is not None and (
            isinstance(required_approvals, bool) or required_approvals < 1
        ):
            raise ValidationError(
                f"required_approvals must be at least 1, not {required_approvals}"
            )
        model_id = self._models.get(model).id

        def work(session: Session) -> ApprovalPolicy:
            row = session.get(ModelGovernanceRow, model_id, with_for_update=True)
            if row is None:
                row = ModelGovernanceRow(model_id=model_id, approvers=[], required_approvals=1)
                session.add(row)
            before = _policy(row, model).to_dict()
            if names is not None:
                row.approvers = list(names)
            if required_approvals is not None:
                row.required_approvals = required_approvals
            if require_approval_for_production is not None:
                row.require_approval_for_production = require_approval_for_production
            after = _policy(row, model)
            if after.require_approval_for_production and len(after.approvers) < (
                after.required_approvals
            ):
                raise ValidationError(
                    f"{model} needs {after.required_approvals} approvals but has "
                    f"{len(after.approvers)} approvers",
                    model=model,
                )
            session.flush()
            if after.to_dict() == before:
                return after  # nothing changed: nothing to record
            self._recorder.record(
                session,
                "policy.update",
                "model",
                model_id,
                before=before,
                after=after.to_dict(),
                reason=reason,
            )
            return after

        return self._catalog.write(work)

    # -- requests and decisions ------------------------------------------------------

    def request(
        self,
        ref: ModelVersion | str,
        *,
        target: str = PRODUCTION,
        comment: str | None = None,
        requested_by: str | None = None,
    ) -> ApprovalRequest:
        """Ask for ``ref`` to be approved for ``target``; a pending request for it is a Conflict."""
        found = self._models.version(ref)
        who = requested_by or self._recorder.actor

        def work(session: Session) -> int:
            pending = session.scalar(
                select(ApprovalRequestRow.id).where(
                    ApprovalRequestRow.version_id == found.id,
                    ApprovalRequestRow.target == target,
                    ApprovalRequestRow.status == "pending",
                )
            )
            if pending is not None:
                raise Conflict(
                    f"{found.ref} already has a pending request ({pending}) for {target}",
                    request=pending,
                )
            row = ApprovalRequestRow(
                version_id=found.id, requested_by=who, target=target, comment=comment
            )
            session.add(row)
            session.flush()
            after = {"request": row.id, "version": found.version, "target": target}
            self._recorder.record(
                session,
                "approval.request",
                "model",
                found.model_id,
                after=after,
                event="approval_requested",
                payload={"model": found.model, **after, "requested_by": who},
            )
            return row.id

        return self.get(self._catalog.write(work))

    def decide(
        self,
        request_id: int,
        decision: Decision,
        *,
        comment: str | None = None,
        approver: str | None = None,
    ) -> ApprovalRequest:
        """Record an approver's decision; the request is decided when the policy is met."""
        if decision not in APPROVAL_DECISIONS:
            raise ValidationError(
                f"a decision is one of {', '.join(APPROVAL_DECISIONS)}, not {decision!r}"
            )
        who = approver or self._recorder.actor

        def work(session: Session) -> None:
            request = session.get(ApprovalRequestRow, request_id, with_for_update=True)
            if request is None:
                raise NotFound(f"no approval request {request_id}", request=request_id)
            version = session.get_one(ModelVersionRow, request.version_id)
            model = session.get_one(ModelRow, version.model_id)
            policy = _policy(session.get(ModelGovernanceRow, model.id), model.name)
            if request.status != "pending":
                raise Conflict(f"request {request_id} is already {request.status}")
            if who not in policy.approvers:
                raise PermissionDenied(
                    f"{who} is not an approver of {model.name}", user=who, model=model.name
                )
            if who == request.requested_by:
                raise PermissionDenied(f"{who} cannot decide their own request", user=who)
            if session.scalar(
                select(ApprovalDecisionRow.id).where(
                    ApprovalDecisionRow.request_id == request_id,
                    ApprovalDecisionRow.approver == who,
                )
            ):
                raise Conflict(f"{who} has already decided request {request_id}")
            session.add(
                ApprovalDecisionRow(
                    request_id=request_id, approver=who, decision=decision, comment=comment
                )
            )
            session.flush()
            approvals = session.scalar(
                select(func.count()).where(
                    ApprovalDecisionRow.request_id == request_id,
                    ApprovalDecisionRow.decision == "approved",
                )
            )
            if decision == "rejected":
                request.status = "rejected"
            elif (approvals or 0) >= policy.required_approvals:
                request.status = "approved"
            if request.status != "pending":
                request.decided_at = utcnow()
            after = {
                "request": request_id,
                "version": version.version,
                "decision": decision,
                "approver": who,
                "status": request.status,
            }
            self._recorder.record(
                session,
                "approval.decide",
                "model",
                model.id,
                after=after,
                reason=comment,
                event="approval_decided",
                payload={"model": model.name, **after},
            )

        self._catalog.write(work)
        return self.get(request_id)

    def get(self, request_id: int) -> ApprovalRequest:
        """The approval request ``request_id`` with its decisions."""
        with self._catalog.session() as session:
            row = session.get(ApprovalRequestRow, request_id)
            if row is None:
                raise NotFound(f"no approval request {request_id}", request=request_id)
            return _requests(session, [row])[0]

    def requests(
        self,
        model: str | None = None,
        *,
        status: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> builtins.list[ApprovalRequest]:
        """Requests, newest first: of one model and in one status when given.

        ``before_id`` pages on: the id of the last (oldest) request seen.
        """
        if status is not None and status not in APPROVAL_STATUSES:
            raise ValidationError(
                f"a request's status is one of {', '.join(APPROVAL_STATUSES)}, not {status!r}"
            )
        query = (
            select(ApprovalRequestRow)
            .join(ModelVersionRow, ModelVersionRow.id == ApprovalRequestRow.version_id)
            .order_by(ApprovalRequestRow.id.desc())
            .limit(limit)
        )
        if model is not None:
            query = query.where(ModelVersionRow.model_id == self._models.get(model).id)
        if status is not None:
            query = query.where(ApprovalRequestRow.status == status)
        if before_id is not None:
            query = query.where(ApprovalRequestRow.id < before_id)
        with self._catalog.session() as session:
            return _requests(session, list(session.scalars(query)))


def production_guard(session: Session, model_id: int, row: ModelVersionRow) -> None:
    """Refuse ``row``'s move into production unless its model's policy is met.

    The registry calls this in the transaction of the move; it reads only that
    transaction's rows.
    """
    governance = session.get(ModelGovernanceRow, model_id)
    if governance is None or not governance.require_approval_for_production:
        return
    approved = session.scalar(
        select(ApprovalRequestRow.id).where(
            ApprovalRequestRow.version_id == row.id,
            ApprovalRequestRow.target == PRODUCTION,
            ApprovalRequestRow.status == "approved",
        )
    )
    if approved is None:
        model = session.get_one(ModelRow, model_id)
        raise ApprovalRequired(
            f"{model.name}@{row.version} needs an approved request for production "
            f"({governance.required_approvals} approval(s) from "
            f"{', '.join(governance.approvers) or 'no approvers yet'}); "
            "ask with wb.approvals.request or `weightbase approvals request`",
            model=model.name,
            version=row.version,
        )


def _check_approvers(approvers: Iterable[str]) -> tuple[str, ...]:
    names = [approvers] if isinstance(approvers, str) else list(approvers)
    for name in names:
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise ValidationError(f"invalid approver name {name!r}")
    return tuple(dict.fromkeys(names))


def _policy(row: ModelGovernanceRow | None, model: str) -> ApprovalPolicy:
    if row is None:
        return ApprovalPolicy(model)
    return ApprovalPolicy(
        model,
        tuple(row.approvers or ()),
        row.required_approvals,
        bool(row.require_approval_for_production),
    )


def _requests(
    session: Session, rows: builtins.list[ApprovalRequestRow]
) -> builtins.list[ApprovalRequest]:
    if not rows:
        return []
    ids = [row.id for row in rows]
    decisions: dict[int, builtins.list[ApprovalDecision]] = {}
    for decision in session.scalars(
        select(ApprovalDecisionRow)
        .where(ApprovalDecisionRow.request_id.in_(ids))
        .order_by(ApprovalDecisionRow.id)
    ):
        decisions.setdefault(decision.request_id, []).append(
            ApprovalDecision(decision.approver, decision.decision, decision.comment, decision.at)
        )
    names = {
        version_id: (model, number)
        for version_id, model, number in session.execute(
            select(ModelVersionRow.id, ModelRow.name, ModelVersionRow.version)
            .join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
            .where(ModelVersionRow.id.in_([row.version_id for row in rows]))
        )
    }
    return [
        ApprovalRequest(
            id=row.id,
            model=names[row.version_id][0],
            version=names[row.version_id][1],
            version_id=row.version_id,
            target=row.target or PRODUCTION,
            requested_by=row.requested_by,
            comment=row.comment,
            status=row.status,
            created_at=row.created_at,
            decided_at=row.decided_at,
            decisions=tuple(decisions.get(row.id, ())),
        )
        for row in rows
    ]
