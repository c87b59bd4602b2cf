"""``weightbase approvals …``: approval policies, requests and decisions (``wb.approvals``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.options import JsonOption, ModelNameArgument, ReasonOption, VersionRefArgument
from weightbase.cli.render import table

if TYPE_CHECKING:
    from weightbase.governance.approvals import ApprovalRequest

__all__ = ["approvals_app"]

approvals_app = typer.Typer(
    help="Approvals: who approves a model, requests per version, and decisions on them.",
    no_args_is_help=True,
)

RequestIdArgument = Annotated[int, typer.Argument(help="The request's id (`approvals list`).")]
CommentOption = Annotated[str | None, typer.Option(help="Why: kept with the request.")]


def _show(request: ApprovalRequest) -> None:
    console.print(
        f"request {request.id}: {escape(request.ref)} for {request.target} is "
        f"[bold]{request.status}[/] (asked by {escape(request.requested_by)})"
    )
    for decision in request.decisions:
        note = f": {escape(decision.comment)}" if decision.comment else ""
        console.print(f"  {escape(decision.approver)} {decision.decision}{note}")


@approvals_app.command("policy")
def policy(
    model: ModelNameArgument,
    approver: Annotated[
        list[str] | None, typer.Option("--approver", "-a", help="An approver (repeat it).")
    ] = None,
    required: Annotated[
        int | None, typer.Option(help="How many approvers must approve a request.")
    ] = None,
    production: Annotated[
        bool | None,
        typer.Option(
            "--require-for-production/--no-require-for-production",
            help="Whether production needs an approved request.",
        ),
    ] = None,
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Show a model's approval policy, or change the parts given."""
    with open_workspace() as wb:
        if approver is None and required is None and production is None:
            found = wb.approvals.policy(model)
        else:
            found = wb.approvals.set_policy(
                model,
                approvers=approver,
                required_approvals=required,
                require_approval_for_production=production,
                reason=reason,
            )
    if json:
        emit_json(found.to_dict())
        return
    needs = "needs" if found.require_approval_for_production else "does not need"
    console.print(
        f"{escape(model)}: production {needs} approval; {found.required_approvals} of "
        f"{escape(', '.join(found.approvers)) or 'no approvers'}"
    )


@approvals_app.command("request")
def request(
    version: VersionRefArgument,
    target: Annotated[str, typer.Option(help="What the approval is for.")] = "production",
    comment: CommentOption = None,
    json: JsonOption = False,
) -> None:
    """Ask for a version to be approved (for production unless --target says otherwise)."""
    with open_workspace() as wb:
        made = wb.approvals.request(version, target=target, comment=comment)
    if json:
        emit_json(made.to_dict())
        return
    _show(made)


@approvals_app.command("decide")
def decide(
    request_id: RequestIdArgument,
    decision: Annotated[str, typer.Argument(help="approved or rejected.")],
    comment: CommentOption = None,
    json: JsonOption = False,
) -> None:
    """Approve or reject a request, as the acting user."""
    with open_workspace() as wb:
        decided = wb.approvals.decide(request_id, decision, comment=comment)  # type: ignore[arg-type]
    if json:
        emit_json(decided.to_dict())
        return
    _show(decided)


@approvals_app.command("list")
def list_requests(
    model: Annotated[str | None, typer.Argument(help="Only this model's requests.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only requests in this status: pending, approved, rejected.")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Approval requests, newest first."""
    with open_workspace() as wb:
        found = wb.approvals.requests(model, status=status)
    if json:
        emit_json([item.to_dict() for item in found])
        return
    shown = table(["id", "version", "for", "status", "asked by", "decisions"], right={"id"})
    for item in found:
        decisions = ", ".join(f"{d.approver} {d.decision}" for d in item.decisions)
        shown.add_row(
            str(item.id),
            escape(item.ref),
            escape(item.target),
            item.status,
            escape(item.requested_by),
            escape(decisions),
        )
    console.print(shown)


@approvals_app.command("show")
def show(request_id: RequestIdArgument, json: JsonOption = False) -> None:
    """One request and every decision on it."""
    with open_workspace() as wb:
        found = wb.approvals.get(request_id)
    if json:
        emit_json(found.to_dict())
        return
    _show(found)
