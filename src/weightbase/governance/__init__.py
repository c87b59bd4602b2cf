"""Governance: the audit log of every change (policies and approvals come later)."""

from weightbase.governance.audit import AuditEntry, AuditLog

__all__ = ["AuditEntry", "AuditLog"]
