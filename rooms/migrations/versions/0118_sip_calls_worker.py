"""sip_calls.worker_id: the run whose gateway carried the call (issue #16), so a start closes only its own

Revision ID: 0118
Revises: 0117
Create Date: 2026-12-03 12:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0118"
down_revision: str | Sequence[str] | None = "0117"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sip_calls") as batch:
        batch.add_column(sa.Column("worker_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_sip_calls_worker_id"), ["worker_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_sip_calls_worker_id_workers"), "workers", ["worker_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("sip_calls") as batch:
        batch.drop_constraint(batch.f("fk_sip_calls_worker_id_workers"), type_="foreignkey")
        batch.drop_index(batch.f("ix_sip_calls_worker_id"))
        batch.drop_column("worker_id")
