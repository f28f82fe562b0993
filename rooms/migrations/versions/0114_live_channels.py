"""live_channels, live_viewer_sessions, live_concurrency_samples (issue #18)

Revision ID: 0114
Revises: 0113
Create Date: 2026-12-03 12:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0114"
down_revision: str | Sequence[str] | None = "0113"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "live_channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("source_kind", sa.String(20), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("audio_participant", sa.String(200), nullable=False),
        sa.Column("standby_kind", sa.String(20), nullable=False),
        sa.Column("standby_override", sa.String(20), nullable=False),
        sa.Column("standby_video_id", sa.Integer(), nullable=True),
        sa.Column("rtmp_url", sa.Text(), nullable=True),
        sa.Column("directory", sa.String(200), nullable=True),
        sa.Column("show_viewer_count", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rehearsal_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_live_channels_account_id_accounts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name="fk_live_channels_room_id_rooms", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name="fk_live_channels_meeting_id_meetings", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_live_channels"),
    )
    op.create_index("ix_live_channels_account_id", "live_channels", ["account_id"])
    op.create_index("ix_live_channels_room_id", "live_channels", ["room_id"])
    op.create_table(
        "live_viewer_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("viewer_id", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(10), nullable=False),
        sa.Column("user_agent", sa.String(500), nullable=False),
        sa.Column("device_class", sa.String(10), nullable=False),
        sa.Column("browser", sa.String(40), nullable=False),
        sa.Column("os", sa.String(40), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["live_channels.id"],
            name="fk_live_viewer_sessions_channel_id_live_channels",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_live_viewer_sessions_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_live_viewer_sessions"),
    )
    op.create_index("ix_live_viewer_sessions_account_id", "live_viewer_sessions", ["account_id"])
    op.create_index(
        "ix_live_viewer_sessions_channel_id_last_seen", "live_viewer_sessions", ["channel_id", "last_seen"]
    )
    op.create_table(
        "live_concurrency_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("viewers", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["live_channels.id"],
            name="fk_live_concurrency_samples_channel_id_live_channels",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_live_concurrency_samples"),
        sa.UniqueConstraint("channel_id", "phase", "at", name="uq_live_concurrency_samples_at"),
    )
    op.create_index("ix_live_concurrency_samples_channel_id", "live_concurrency_samples", ["channel_id"])


def downgrade() -> None:
    op.drop_index("ix_live_concurrency_samples_channel_id", table_name="live_concurrency_samples")
    op.drop_table("live_concurrency_samples")
    op.drop_index("ix_live_viewer_sessions_channel_id_last_seen", table_name="live_viewer_sessions")
    op.drop_index("ix_live_viewer_sessions_account_id", table_name="live_viewer_sessions")
    op.drop_table("live_viewer_sessions")
    op.drop_index("ix_live_channels_room_id", table_name="live_channels")
    op.drop_index("ix_live_channels_account_id", table_name="live_channels")
    op.drop_table("live_channels")
