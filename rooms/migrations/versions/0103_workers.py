"""workers (heartbeats), meetings.worker_id, billing_outages.cause: crash recovery (issue #14)

Revision ID: 0103
Revises: 0102
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0103"
down_revision: str | Sequence[str] | None = "0102"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    with op.batch_alter_table("workers") as batch:
        batch.create_index(batch.f("ix_workers_name"), ["name"], unique=False)
    with op.batch_alter_table("meetings") as batch:
        batch.add_column(sa.Column("worker_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_meetings_worker_id"), ["worker_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_meetings_worker_id_workers"), "workers", ["worker_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("billing_outages") as batch:
        batch.add_column(sa.Column("cause", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("billing_outages") as batch:
        batch.drop_column("cause")
    with op.batch_alter_table("meetings") as batch:
        batch.drop_constraint(batch.f("fk_meetings_worker_id_workers"), type_="foreignkey")
        batch.drop_index(batch.f("ix_meetings_worker_id"))
        batch.drop_column("worker_id")
    with op.batch_alter_table("workers") as batch:
        batch.drop_index(batch.f("ix_workers_name"))
    op.drop_table("workers")
