"""The demo's governance step: production needs an approval, which is asked for and given."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape

from weightbase.cli._common import console
from weightbase.errors import ApprovalRequired

if TYPE_CHECKING:
    from weightbase.registry import ModelVersion
    from weightbase.workspace import Workspace

#: The demo's approver, who is not the one asking.
REVIEWER = "demo-reviewer"


def govern(wb: Workspace, version: ModelVersion) -> tuple[ModelVersion, dict[str, Any]]:
    """Require an approval for production, show it refused, approve it, then promote."""
    model = version.model
    wb.approvals.set_policy(
        model, approvers=[REVIEWER], required_approvals=1, require_approval_for_production=True
    )
    refused = None
    approved = [
        r for r in wb.approvals.requests(model, status="approved") if r.version_id == version.id
    ]
    if not approved:
        try:
            wb.models.set_alias(model, "production", version.version)
        except ApprovalRequired as exc:
            refused = str(exc)
        request = wb.approvals.request(version, comment="demo: the fine-tune is ready")
        decided = wb.approvals.decide(
            request.id, "approved", approver=REVIEWER, comment="diff and metrics reviewed"
        )
    else:
        decided = approved[0]
    production = wb.models.set_alias(model, "production", version.version)
    promoted = production
    if production.stage != "production":
        promoted = wb.models.promote(production, "production")
    return production, {
        "approvers": [REVIEWER],
        "refused_before_approval": refused,
        "request": decided.id,
        "status": decided.status,
        "decisions": [decision.to_dict() for decision in decided.decisions],
        "stage": promoted.stage,
    }


def render_governance(result: dict[str, Any], ref: str) -> None:
    """Print the governance step for people."""
    if result["refused_before_approval"]:
        console.print(
            f"[yellow]refused[/] before approval: {escape(result['refused_before_approval'])}"
        )
    console.print(
        f"approval request {result['request']} for {escape(ref)}: [bold]{result['status']}[/] "
        f"by {escape(', '.join(result['approvers']))}; stage {result['stage']}"
    )
