"""Audit origin: which API token made a change, and from which address.

``audit_log`` gains ``token_id`` (the public id of the token the request
signed in with) and ``remote_address`` (the client's address as the server
saw it). Both stay null for changes made in-process or through the CLI,
which record the OS user as before. Written by ``weightbase.governance.audit``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("token_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("remote_address", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("remote_address")
        batch.drop_column("token_id")
