"""sip_calls: one call record per SIP leg (issue #16)

Revision ID: 0113
Revises: 0112
Create Date: 2026-12-03 12:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0113"
down_revision: str | Sequence[str] | None = "0112"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sip_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("endpoint_id", sa.Integer(), nullable=True),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("sip_call_id", sa.String(200), nullable=False),
        sa.Column("dialled", sa.String(100), nullable=False),
        sa.Column("meeting_number", sa.String(20), nullable=True),
        sa.Column("participant_id", sa.String(100), nullable=True),
        sa.Column("transport", sa.String(3), nullable=False),
        sa.Column("remote", sa.String(100), nullable=False),
        sa.Column("user_agent", sa.String(200), nullable=False),
        sa.Column("audio_codec", sa.String(60), nullable=False),
        sa.Column("video_codec", sa.String(60), nullable=False),
        sa.Column("srtp", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(40), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_sip_calls_account_id_accounts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name="fk_sip_calls_site_id_sites", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["endpoints.id"], name="fk_sip_calls_endpoint_id_endpoints", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name="fk_sip_calls_meeting_id_meetings", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sip_calls"),
    )
    op.create_index("ix_sip_calls_account_id_started_at", "sip_calls", ["account_id", "started_at"])
    op.create_index("ix_sip_calls_site_id", "sip_calls", ["site_id"])
    op.create_index("ix_sip_calls_endpoint_id", "sip_calls", ["endpoint_id"])
    op.create_index("ix_sip_calls_meeting_id", "sip_calls", ["meeting_id"])


def downgrade() -> None:
    op.drop_table("sip_calls")
