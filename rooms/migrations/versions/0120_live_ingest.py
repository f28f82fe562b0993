"""live_channels.ingest_key (issue #18: the stream key of an RTMP ingest source)

Revision ID: 0120
Revises: 0119
Create Date: 2026-12-03 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0120"
down_revision: str | Sequence[str] | None = "0119"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("live_channels") as batch:
        batch.add_column(sa.Column("ingest_key", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("live_channels") as batch:
        batch.drop_column("ingest_key")
