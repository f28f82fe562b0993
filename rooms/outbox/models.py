"""Tables of the outbox (notifications, their parts, suppressions, templates) and of maintenance notices."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rooms.models import Base

CHANNELS = ("email", "sms", "announcement")
STATUSES = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "failed",
    "expired",
    "suppressed",
    "cancelled",
    "unknown",
)
# A row in one of these states is never touched by the dispatcher again (receipts may still move sent on).
FINAL_STATUSES = frozenset({"delivered", "failed", "expired", "suppressed", "cancelled", "unknown"})


class Notification(Base):
    """One message to one recipient; `idempotency_key` makes a second enqueue of the same message a no-op."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        Index("ix_notification_outbox_due", "status", "next_attempt_at"),
        Index("ix_notification_outbox_booking", "booking_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # None for platform mail (maintenance notices to several accounts are one row each, with the account).
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(40))
    template_key: Mapped[str] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(10))
    # An e-mail address, an E.164 number, or "meeting:{id}" / "all" for an announcement.
    recipient: Mapped[str] = mapped_column(String(320))
    variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Built when the row is written (an .ics must say what the booking was at that moment, not at send time).
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"))
    occurrence_start: Mapped[datetime | None]
    batch_id: Mapped[str | None] = mapped_column(String(64), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(500), unique=True)
    not_before: Mapped[datetime]
    expires_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    parts: Mapped[int] = mapped_column(Integer, default=0)
    billable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # The purge deletes the row (and its parts) after this instant; set when the row reaches its end.
    retain_until: Mapped[datetime | None] = mapped_column(index=True)


class NotificationPart(Base):
    """One accepted unit at the provider (an SMS part, or the one e-mail), matched by receipts later."""

    __tablename__ = "notification_parts"
    __table_args__ = (UniqueConstraint("outbox_id", "seq", name="uq_notification_parts_outbox_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("notification_outbox.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    provider_message_id: Mapped[str | None] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(20))  # sent, delivered, failed, unknown
    error: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime]


class Suppression(Base):
    """A recipient that must not get a scope of messages on a channel (a hard bounce, an opt-out)."""

    __tablename__ = "notification_suppressions"
    __table_args__ = (
        UniqueConstraint("channel", "recipient", "scope", name="uq_notification_suppressions_channel"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str] = mapped_column(String(320))
    # "all" (a bounce: nothing can reach it) or a kind ("reminder": an opt-out from reminders only).
    scope: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(500))
    at: Mapped[datetime]


class NotificationTemplate(Base):
    """An account's (or, with no account, the platform's) override of a shipped template in one locale."""

    __tablename__ = "notification_templates"
    __table_args__ = (
        UniqueConstraint(
            "account_id", "channel", "key", "locale", name="uq_notification_templates_account_id"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text)
    # The variable names the text may use, checked when the template is saved.
    variables: Mapped[list[Any]] = mapped_column(default=list)
    # A provider's approved template (SMS in mainland China): its code and approval state.
    provider_code: Mapped[str | None] = mapped_column(String(100))
    approval: Mapped[str] = mapped_column(String(20), default="none")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MaintenanceWindow(Base):
    """Planned (or, with `emergency_reason`, short-notice) downtime announced to the affected accounts."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(20))  # platform, account, site
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    # {"zh-CN": ..., "en": ...}
    title: Mapped[dict[str, Any]]
    text: Mapped[dict[str, Any]]
    # Given when the notice is shorter than the rule's 48 h; an input to SLA reporting.
    emergency_reason: Mapped[str | None] = mapped_column(String(1000))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]


class MaintenanceNotice(Base):
    """Proof of one notice of a window: to whom, how, when it was queued and when it went out."""

    __tablename__ = "maintenance_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_id: Mapped[int] = mapped_column(
        ForeignKey("maintenance_windows.id", ondelete="CASCADE"), index=True
    )
    # The outbox row is purged after 6 months; the proof keeps what it needs of it.
    outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("notification_outbox.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(40))  # notice, reminder, announcement
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recipient: Mapped[str] = mapped_column(String(320))
    locale: Mapped[str] = mapped_column(String(10))
    queued_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="queued")


class NotificationStatement(Base):
    """A month's sent history of one account and channel as CSV, made before those rows may be purged."""

    __tablename__ = "notification_statements"
    __table_args__ = (
        UniqueConstraint("account_key", "channel", "month", name="uq_notification_statements_account_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The account's id, 0 for platform mail; no foreign key: the statement outlives a deleted account.
    account_key: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(20))
    month: Mapped[date] = mapped_column(Date)
    messages: Mapped[int] = mapped_column(Integer)
    parts: Mapped[int] = mapped_column(Integer)
    csv: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class PasswordReset(Base):
    """A one-time password mailed to a user who forgot theirs; it replaces the password only when used."""

    __tablename__ = "password_resets"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    otp_hash: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
