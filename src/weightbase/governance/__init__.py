"""Governance: who may do what, what a version must pass before production, and the record.

- :mod:`~weightbase.governance.audit`: the audit log of every change;
- :mod:`~weightbase.governance.access`: users, API tokens, roles, model ownership
  (``wb.access``; the rules as data in :mod:`~weightbase.governance.roles`);
- :mod:`~weightbase.governance.approvals`: approval policies, requests and decisions,
  and the production check the registry asks (``wb.approvals``);
- :mod:`~weightbase.governance.compliance`: policies evaluated per version into stored
  reports with a risk level (``wb.compliance``);
- :mod:`~weightbase.governance.scan`: the model-file scanner, which walks pickles
  without running them and judges every global against an allowlist.
"""

from weightbase.governance.audit import AuditEntry, AuditLog

__all__ = ["AuditEntry", "AuditLog"]
