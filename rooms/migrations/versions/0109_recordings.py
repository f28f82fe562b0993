"""recordings and recording_files; rooms.auto_record

Revision ID: 0109
Revises: 0108
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0109"
down_revision: str | Sequence[str] | None = "0108"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("auto_record", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("directory", sa.String(200), nullable=False),
        sa.Column("composite_path", sa.String(200), nullable=True),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_by", sa.String(200), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_recordings_account_id_accounts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name="fk_recordings_meeting_id_meetings", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name="fk_recordings_room_id_rooms", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_recordings"),
        sa.UniqueConstraint("directory", name="uq_recordings_directory"),
    )
    op.create_index("ix_recordings_account_id", "recordings", ["account_id"])
    op.create_index("ix_recordings_meeting_id", "recordings", ["meeting_id"])
    op.create_index("ix_recordings_room_id", "recordings", ["room_id"])
    op.create_index("ix_recordings_state_retain_until", "recordings", ["state", "retain_until"])
    op.create_table(
        "recording_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("participant", sa.String(200), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("checksum", sa.String(80), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name="fk_recording_files_recording_id_recordings",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_recording_files"),
    )
    op.create_index("ix_recording_files_recording_id", "recording_files", ["recording_id"])


def downgrade() -> None:
    op.drop_index("ix_recording_files_recording_id", table_name="recording_files")
    op.drop_table("recording_files")
    for name in ("state_retain_until", "room_id", "meeting_id", "account_id"):
        op.drop_index(f"ix_recordings_{name}", table_name="recordings")
    op.drop_table("recordings")
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("auto_record")
