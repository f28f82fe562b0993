"""live_videos, live_playlist_items (issue #18: pre-recorded videos and the playlists of live channels)

Revision ID: 0115
Revises: 0114
Create Date: 2026-12-03 12:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0115"
down_revision: str | Sequence[str] | None = "0114"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "live_videos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("received_bytes", sa.BigInteger(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("directory", sa.String(100), nullable=False),
        sa.Column("normal_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("probe", sa.JSON(), nullable=True),
        sa.Column("checks", sa.JSON(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("upload_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_live_videos_account_id_accounts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_live_videos"),
        sa.UniqueConstraint("directory", name="uq_live_videos_directory"),
    )
    op.create_index("ix_live_videos_account_id", "live_videos", ["account_id"])
    op.create_index("ix_live_videos_state_lease_until", "live_videos", ["state", "lease_until"])
    op.create_table(
        "live_playlist_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["live_channels.id"],
            name="fk_live_playlist_items_channel_id_live_channels",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_live_playlist_items_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["live_videos.id"],
            name="fk_live_playlist_items_video_id_live_videos",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_live_playlist_items"),
    )
    op.create_index("ix_live_playlist_items_account_id", "live_playlist_items", ["account_id"])
    op.create_index("ix_live_playlist_items_video_id", "live_playlist_items", ["video_id"])
    op.create_index(
        "ix_live_playlist_items_channel_id_position", "live_playlist_items", ["channel_id", "position"]
    )


def downgrade() -> None:
    for name in ("channel_id_position", "video_id", "account_id"):
        op.drop_index(f"ix_live_playlist_items_{name}", table_name="live_playlist_items")
    op.drop_table("live_playlist_items")
    for name in ("state_lease_until", "account_id"):
        op.drop_index(f"ix_live_videos_{name}", table_name="live_videos")
    op.drop_table("live_videos")
