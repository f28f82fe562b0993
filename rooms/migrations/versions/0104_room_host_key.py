"""rooms.host_key: entered in a meeting to become its host; existing rooms get a random one

Revision ID: 0104
Revises: 0103
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0104"
down_revision: str | Sequence[str] | None = "0103"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _host_key() -> str:
    # A copy of rooms.numbers.host_key as of this revision: a migration must not change when the code does.
    return "".join(secrets.choice(string.digits) for _ in range(6))


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("host_key", sa.String(12), nullable=True))
    rooms = sa.table("rooms", sa.column("id", sa.Integer), sa.column("host_key", sa.String))
    connection = op.get_bind()
    for (room_id,) in connection.execute(sa.select(rooms.c.id)).all():
        connection.execute(sa.update(rooms).where(rooms.c.id == room_id).values(host_key=_host_key()))
    with op.batch_alter_table("rooms") as batch:
        batch.alter_column("host_key", existing_type=sa.String(12), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("host_key")
