"""The outbox store: enqueue in the caller's transaction, claim with a lease, record what the sender did.

Callers (bookings, billing, incidents, recordings, maintenance) write with :func:`enqueue` inside the same
session and transaction as the change that causes the message, so a rollback sends nothing and a crash after
the commit still sends. The dispatcher (yunhui/dispatcher.py) is the only caller of the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.database import Database
from rooms.models import Booking
from rooms.outbox.errors import InvalidNotification
from rooms.outbox.models import (
    CHANNELS,
    MaintenanceNotice,
    Notification,
    NotificationPart,
    Suppression,
)
from rooms.outbox.rules import DEFAULT_EXPIRY, LEASE, retain_until, retry_at

CLAIM_BATCH = 50
# A suppression scope that blocks every message on the channel (a hard bounce).
ALL = "all"
# Kinds that are never suppressed by an opt-out: the recipient needs them whatever they chose.
ALWAYS_SENT_SCOPES = frozenset({"password_reset"})
# Kinds whose variables hold a secret: cleared once the row reaches its end.
SECRET_KINDS = frozenset({"password_reset"})


@dataclass(frozen=True)
class Attachment:
    """A file attached to a message: stored as text (an .ics), or named by `source` (e.g.
    "invoice_pdf:42:en"), a document the dispatcher renders when it sends, so a PDF is neither made in the
    transaction that queues it nor stored twice. `params` go on its Content-Type."""

    filename: str
    content_type: str
    text: str = ""
    params: Mapping[str, str] | None = None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "text": self.text,
            "params": dict(self.params or {}),
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attachment:
        return cls(
            data["filename"],
            data["content_type"],
            data.get("text", ""),
            dict(data.get("params") or {}),
            data.get("source"),
        )


@dataclass(frozen=True)
class Claim:
    """A row the dispatcher holds until `lease_until`; `attempts` (counted at claim) fences late writes."""

    id: int
    account_id: int | None
    channel: str
    kind: str
    template_key: str
    locale: str
    recipient: str
    variables: Mapping[str, Any]
    attachments: tuple[Attachment, ...]
    booking_id: int | None
    occurrence_start: datetime | None
    batch_id: str | None
    attempts: int
    expires_at: datetime
    billable: bool
    idempotency_key: str


async def enqueue(
    session: AsyncSession,
    *,
    channel: str,
    kind: str,
    recipient: str,
    idempotency_key: str,
    now: datetime,
    account_id: int | None = None,
    template_key: str | None = None,
    locale: str = "zh-CN",
    variables: Mapping[str, Any] | None = None,
    attachments: Sequence[Attachment] = (),
    booking_id: int | None = None,
    occurrence_start: datetime | None = None,
    batch_id: str | None = None,
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
    billable: bool = False,
) -> int | None:
    """Queue one message in the caller's transaction; return its id, or None if the key was queued before.

    Nothing is committed here. The insert skips a duplicate key without failing the caller's transaction, so
    two scheduler runs (or two workers) that plan the same reminder insert it once.
    """
    if channel not in CHANNELS:
        raise InvalidNotification(f"unknown channel {channel!r}", field="channel")
    if not recipient.strip():
        raise InvalidNotification("the recipient is empty", field="recipient")
    start = now if not_before is None else not_before
    expiry = start + DEFAULT_EXPIRY if expires_at is None else expires_at
    if expiry <= start:
        raise InvalidNotification("the message would expire before it may be sent", field="expires_at")
    values = {
        "account_id": account_id,
        "channel": channel,
        "kind": kind,
        "template_key": template_key or kind,
        "locale": locale,
        "recipient": recipient.strip(),
        "variables": dict(variables or {}),
        "attachments": [a.to_json() for a in attachments],
        "booking_id": booking_id,
        "occurrence_start": occurrence_start,
        "batch_id": batch_id,
        "idempotency_key": idempotency_key,
        "not_before": start,
        "expires_at": expiry,
        "status": "queued",
        "attempts": 0,
        "next_attempt_at": start,
        "parts": 0,
        "billable": billable,
        "created_at": now,
    }
    connection = await session.connection()
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(Notification)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Notification.id)
    )
    new_id: int | None = (await session.execute(statement)).scalar_one_or_none()
    return new_id


async def cancel_queued(
    session: AsyncSession, *, booking_id: int, kinds: Sequence[str], now: datetime
) -> int:
    """Cancel the booking's messages of `kinds` that have not gone out (a moved or cancelled booking's
    reminders), in the caller's transaction; return how many."""
    result = await session.execute(
        update(Notification)
        .where(
            Notification.booking_id == booking_id,
            Notification.kind.in_(list(kinds)),
            Notification.status == "queued",
        )
        .values(
            status="cancelled",
            last_error="the booking changed",
            retain_until=retain_until(now),
            # Frees the key, so the fresh plan of an unchanged occurrence can queue its reminder again.
            idempotency_key=Notification.idempotency_key + ":cancelled:" + cast(Notification.id, String),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def suppress(
    session: AsyncSession, *, channel: str, recipient: str, scope: str, reason: str, now: datetime
) -> None:
    """Record that `recipient` gets no `scope` messages on `channel` (idempotent), in the caller's session."""
    connection = await session.connection()
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    await session.execute(
        insert(Suppression)
        .values(
            channel=channel, recipient=recipient.strip().lower(), scope=scope, reason=reason[:500], at=now
        )
        .on_conflict_do_nothing(index_elements=["channel", "recipient", "scope"])
    )


async def suppression_of(session: AsyncSession, *, channel: str, recipient: str, kind: str) -> str | None:
    """The reason `recipient` must not get a `kind` message on `channel`, or None."""
    scopes = [ALL] if kind in ALWAYS_SENT_SCOPES else [ALL, kind]
    reason: str | None = await session.scalar(
        select(Suppression.reason).where(
            Suppression.channel == channel,
            Suppression.recipient == recipient.strip().lower(),
            Suppression.scope.in_(scopes),
        )
    )
    return reason


def _claim_of(row: Notification) -> Claim:
    return Claim(
        id=row.id,
        account_id=row.account_id,
        channel=row.channel,
        kind=row.kind,
        template_key=row.template_key,
        locale=row.locale,
        recipient=row.recipient,
        variables=dict(row.variables),
        attachments=tuple(Attachment.from_json(a) for a in row.attachments),
        booking_id=row.booking_id,
        occurrence_start=row.occurrence_start,
        batch_id=row.batch_id,
        attempts=row.attempts,
        expires_at=row.expires_at,
        billable=row.billable,
        idempotency_key=row.idempotency_key,
    )


def _end(row: Notification, status: str, now: datetime, error: str | None = None) -> None:
    if row.kind in SECRET_KINDS:
        # A one-time password is kept only while the message may still be sent.
        row.variables = {}
    row.status = status
    row.lease_until = None
    if error is not None:
        row.last_error = error[:1000]
    row.retain_until = retain_until(now)


async def _recover_leases(
    session: AsyncSession, *, now: datetime, resend_ambiguous: Mapping[str, bool]
) -> None:
    """A row still `sending` past its lease: its sender died between submit and commit. E-mail goes out
    again with the same Message-ID (the receiver's duplicate check); SMS becomes `unknown`, never resent."""
    query = select(Notification).where(Notification.status == "sending", Notification.lease_until < now)
    for row in (await session.scalars(query.with_for_update(skip_locked=True))).all():
        if resend_ambiguous.get(row.channel, False):
            row.status = "queued"
            row.lease_until = None
            row.next_attempt_at = now
            row.last_error = "the sender stopped mid-send; resending with the same Message-ID"
        else:
            _end(row, "unknown", now, "the sender stopped mid-send; not resent (reconcile with the provider)")


async def _booking_gone(session: AsyncSession, booking_id: int | None) -> bool:
    if booking_id is None:
        return False
    cancelled = await session.scalar(select(Booking.cancelled_at).where(Booking.id == booking_id))
    return cancelled is not None


async def claim(
    db: Database,
    *,
    now: datetime,
    channels: Sequence[str],
    resend_ambiguous: Mapping[str, bool] | None = None,
    limit: int = CLAIM_BATCH,
    lease: Any = LEASE,
) -> list[Claim]:
    """Take up to `limit` due rows of `channels` for sending: each is `sending` until `now + lease`.

    The transaction commits before any network I/O. On PostgreSQL, ``FOR UPDATE SKIP LOCKED`` lets a second
    dispatcher take other rows; the guards at send time run here too: an expired row becomes `expired`, a
    suppressed recipient `suppressed`, a reminder of a cancelled booking `cancelled`.
    """
    if not channels:
        return []
    claimed: list[Claim] = []
    async with db.writer() as session:
        await _recover_leases(session, now=now, resend_ambiguous=resend_ambiguous or {})
        query = (
            select(Notification)
            .where(
                Notification.status == "queued",
                Notification.channel.in_(list(channels)),
                Notification.next_attempt_at <= now,
            )
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        for row in (await session.scalars(query)).all():
            if row.expires_at <= now:
                _end(row, "expired", now, row.last_error or "not sent before it expired")
                continue
            reason = await suppression_of(
                session, channel=row.channel, recipient=row.recipient, kind=row.kind
            )
            if reason is not None:
                _end(row, "suppressed", now, reason)
                continue
            if row.kind == "reminder" and await _booking_gone(session, row.booking_id):
                _end(row, "cancelled", now, "the booking was cancelled")
                continue
            row.status = "sending"
            row.attempts += 1
            row.lease_until = now + lease
            claimed.append(_claim_of(row))
        await session.commit()
    return claimed


async def _held(session: AsyncSession, claimed: Claim) -> Notification | None:
    # Fencing: only the holder of the current attempt may write its outcome.
    row = await session.scalar(
        select(Notification)
        .where(
            Notification.id == claimed.id,
            Notification.status == "sending",
            Notification.attempts == claimed.attempts,
        )
        .with_for_update()
    )
    return row


async def mark_sent(
    db: Database, claimed: Claim, *, now: datetime, provider_ids: Sequence[str | None]
) -> bool:
    """The channel accepted the message as `provider_ids` (one per part). False: the lease was lost."""
    async with db.writer() as session:
        row = await _held(session, claimed)
        if row is None:
            return False
        _end(row, "sent", now)
        row.sent_at = now
        row.parts = len(provider_ids)
        for seq, provider_id in enumerate(provider_ids, start=1):
            session.add(
                NotificationPart(
                    outbox_id=row.id, seq=seq, provider_message_id=provider_id, status="sent", at=now
                )
            )
        await session.execute(
            update(MaintenanceNotice)
            .where(MaintenanceNotice.outbox_id == row.id)
            .values(sent_at=now, status="sent")
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    return True


async def mark_retry(
    db: Database,
    claimed: Claim,
    *,
    now: datetime,
    error: str,
    jitter: float = 0.0,
    not_before: datetime | None = None,
) -> str | None:
    """A temporary failure: queue the row again at the back-off time (or `not_before`, if later), or expire
    it when that is past its expiry. Returns the new status, or None if the lease was lost."""
    async with db.writer() as session:
        row = await _held(session, claimed)
        if row is None:
            return None
        at = retry_at(row.attempts, now, row.expires_at, jitter=jitter)
        if at is not None and not_before is not None:
            at = max(at, not_before)
        if at is None or at >= row.expires_at:
            _end(row, "expired", now, error)
        else:
            row.status = "queued"
            row.lease_until = None
            row.next_attempt_at = at
            row.last_error = error[:1000]
        status = row.status
        await _sync_notice(session, row)
        await session.commit()
    return status


async def mark_failed(
    db: Database, claimed: Claim, *, now: datetime, error: str, suppress_recipient: bool = False
) -> bool:
    """A permanent failure; with `suppress_recipient` (a hard bounce) nothing more goes to that address."""
    async with db.writer() as session:
        row = await _held(session, claimed)
        if row is None:
            return False
        _end(row, "failed", now, error)
        if suppress_recipient:
            await suppress(
                session, channel=row.channel, recipient=row.recipient, scope=ALL, reason=error, now=now
            )
        await _sync_notice(session, row)
        await session.commit()
    return True


async def mark_ambiguous(db: Database, claimed: Claim, *, now: datetime, error: str, resend: bool) -> bool:
    """The sender cannot tell whether the provider took the message. E-mail (`resend`) is retried with the
    same Message-ID; SMS becomes `unknown` for reconciliation, because a duplicate costs money and annoys."""
    if resend:
        return await mark_retry(db, claimed, now=now, error=error) is not None
    async with db.writer() as session:
        row = await _held(session, claimed)
        if row is None:
            return False
        _end(row, "unknown", now, error)
        await _sync_notice(session, row)
        await session.commit()
    return True


async def _sync_notice(session: AsyncSession, row: Notification) -> None:
    await session.execute(
        update(MaintenanceNotice)
        .where(MaintenanceNotice.outbox_id == row.id)
        .values(status=row.status)
        .execution_options(synchronize_session=False)
    )


async def record_receipt(
    db: Database, *, provider_message_id: str, status: str, error: str | None, now: datetime
) -> int | None:
    """A delivery receipt for one part; the row becomes `delivered` once every part is, `failed` on the first
    failed part. Returns the row's id, or None for a receipt of an unknown (or purged) part."""
    async with db.writer() as session:
        part = await session.scalar(
            select(NotificationPart).where(NotificationPart.provider_message_id == provider_message_id)
        )
        if part is None:
            return None
        part.status = status
        part.error = None if error is None else error[:500]
        part.at = now
        row = await session.scalar(
            select(Notification).where(Notification.id == part.outbox_id).with_for_update()
        )
        assert row is not None  # parts cascade with their row
        states = set(
            (
                await session.scalars(
                    select(NotificationPart.status).where(NotificationPart.outbox_id == row.id)
                )
            ).all()
        )
        if row.status in ("sent", "unknown"):
            if "failed" in states:
                row.status = "failed"
                row.last_error = f"part not delivered: {error or status}"[:1000]
            elif states == {"delivered"}:
                row.status = "delivered"
        await session.commit()
        return row.id


async def queue_depth(db: Database, *, now: datetime) -> dict[str, int]:
    """Rows waiting per channel (`queued` and due, or `sending`): a growing number means a stuck channel."""
    query = (
        select(Notification.channel, func.count())
        .where(
            or_(
                Notification.status == "sending",
                and_(Notification.status == "queued", Notification.next_attempt_at <= now),
            )
        )
        .group_by(Notification.channel)
    )
    async with db.session() as session:
        return {channel: int(count) for channel, count in (await session.execute(query)).all()}


async def due_soonest(db: Database, *, channels: Sequence[str]) -> datetime | None:
    """The earliest `next_attempt_at` of a queued row (for a dispatcher that sleeps until then)."""
    async with db.session() as session:
        at: datetime | None = await session.scalar(
            select(Notification.next_attempt_at)
            .where(Notification.status == "queued", Notification.channel.in_(list(channels)))
            .order_by(Notification.next_attempt_at)
            .limit(1)
        )
        return at


async def history(
    db: Database,
    *,
    account_id: int | None = None,
    channel: str | None = None,
    booking_id: int | None = None,
    limit: int = 100,
) -> list[Notification]:
    """Rows newest first, for the API and the tests."""
    query = select(Notification)
    filters = []
    if account_id is not None:
        filters.append(Notification.account_id == account_id)
    if channel is not None:
        filters.append(Notification.channel == channel)
    if booking_id is not None:
        filters.append(Notification.booking_id == booking_id)
    if filters:
        query = query.where(and_(*filters))
    async with db.session() as session:
        return list((await session.scalars(query.order_by(Notification.id.desc()).limit(limit))).all())


__all__ = [
    "Attachment",
    "Claim",
    "cancel_queued",
    "claim",
    "due_soonest",
    "enqueue",
    "history",
    "mark_ambiguous",
    "mark_failed",
    "mark_retry",
    "mark_sent",
    "record_receipt",
    "suppress",
    "suppression_of",
]
