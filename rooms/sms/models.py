"""Tables of the SMS platform: a batch send (its messages are outbox rows carrying its batch_id)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rooms.models import Base


class SmsBatch(Base):
    """One CSV of numbers sent with one text or template; progress is counted from its outbox rows."""

    __tablename__ = "sms_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The account template the texts were rendered from, or None for a one-off text.
    template_key: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text)
    total: Mapped[int] = mapped_column(Integer)
    # Numbers of the CSV that were not queued (invalid, duplicate, opted out), kept for the report.
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
