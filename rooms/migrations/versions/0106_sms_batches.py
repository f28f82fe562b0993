"""Reserved for issue #19, SMS: SMS: templates, batches, receipts, metering.

Empty until that work lands; rename the file then, keeping the revision.

Revision ID: 0106
Revises: 0105
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0106"
down_revision: str | Sequence[str] | None = "0105"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
