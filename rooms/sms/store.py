"""The SMS platform's writes and reads: real-time and batch sends into the outbox, progress, statistics,
opt-outs, and the billable parts of a month for metering.

Texts arrive rendered (web/ renders them through the composition root's SMS service): the outbox keeps the
exact text that was sent, for reconciliation. Every send is billable; maintenance notices never go here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.database import Database
from rooms.errors import InvalidInput, NotFound, RoomsError
from rooms.outbox import store as outbox
from rooms.outbox.models import Notification, Suppression
from rooms.outbox.rules import retain_until
from rooms.sms.models import SmsBatch

CHANNEL = "sms"
KIND = "custom"  # real-time and batch sends; reminders are the outbox's own kind "reminder"
# What an MO opt-out stops: reminders and the account's own sends (MIIT: stop once refused).
OPT_OUT_SCOPES = ("reminder", KIND)
SEND_EXPIRY = timedelta(hours=24)
MAX_BATCH = 10_000
CHUNK = 500
GroupBy = Literal["day", "template", "status", "batch"]


def batch_key(batch_id: int) -> str:
    return f"sms-batch:{batch_id}"


class DailyCapReached(RoomsError):
    """The number got the day's maximum of SMS already (a carrier limit Yunhui keeps before the carrier)."""

    code = "daily_cap"


async def send_now(
    db: Database,
    *,
    account_id: int,
    recipient: str,
    text: str,
    locale: str,
    now: datetime,
    template_key: str = KIND,
    idempotency_key: str | None = None,
    daily_cap: int = 0,
) -> tuple[int, bool]:
    """Queue one SMS; returns (outbox id, created). A repeated idempotency key returns the first row; a
    number that got `daily_cap` SMS in the last 24 hours gets no more (0: no cap)."""
    # Without the caller's key every call is a new message.
    key = f"sms:{account_id}:{idempotency_key or uuid.uuid4().hex}"
    async with db.writer() as session:
        if idempotency_key:
            existing = await _same_key(session, key, account_id, recipient)
            if existing is not None:
                return existing, False
        if daily_cap and (await recent_counts(session, [recipient], now)).get(recipient, 0) >= daily_cap:
            raise DailyCapReached(f"{recipient} got {daily_cap} SMS in the last 24 hours", field="to")
        new_id = await outbox.enqueue(
            session,
            channel=CHANNEL,
            kind=KIND,
            recipient=recipient,
            idempotency_key=key,
            now=now,
            account_id=account_id,
            template_key=template_key,
            locale=locale,
            variables={"text": text},
            expires_at=now + SEND_EXPIRY,
            billable=True,
        )
        if new_id is None:  # the same key, committed by a concurrent request
            found = await _same_key(session, key, account_id, recipient)
            assert found is not None
            await session.rollback()
            return found, False
        await session.commit()
        return new_id, True


async def _same_key(session: AsyncSession, key: str, account_id: int, recipient: str) -> int | None:
    existing = await session.scalar(select(Notification).where(Notification.idempotency_key == key))
    if existing is None:
        return None
    if existing.account_id != account_id or existing.recipient != recipient:
        raise InvalidInput("this idempotency key was used for another message", field="idempotency_key")
    return existing.id


async def recent_counts(session: AsyncSession, numbers: Sequence[str], now: datetime) -> dict[str, int]:
    """How many account SMS (real-time and batch) each number was sent or is due in the last 24 hours."""
    counts: dict[str, int] = {}
    for start in range(0, len(numbers), CHUNK):
        rows = await session.execute(
            select(Notification.recipient, func.count())
            .where(
                Notification.channel == CHANNEL,
                Notification.kind == KIND,
                Notification.recipient.in_(list(numbers[start : start + CHUNK])),
                Notification.created_at > now - timedelta(hours=24),
                Notification.status.not_in(["cancelled", "suppressed"]),
            )
            .group_by(Notification.recipient)
        )
        counts.update({recipient: int(n) for recipient, n in rows.all()})
    return counts


async def suppressed_numbers(session: AsyncSession, numbers: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(numbers), CHUNK):
        rows = await session.scalars(
            select(Suppression.recipient).where(
                Suppression.channel == CHANNEL,
                Suppression.scope.in_([outbox.ALL, KIND]),
                Suppression.recipient.in_(list(numbers[start : start + CHUNK])),
            )
        )
        found.update(rows.all())
    return found


def _outbox_values(
    *,
    account_id: int,
    recipient: str,
    text: str,
    locale: str,
    template_key: str,
    idempotency_key: str,
    batch_id: str,
    not_before: datetime,
    now: datetime,
) -> dict[str, Any]:
    """One batch row as rooms.outbox.store.enqueue would write it (the batch inserts many at once)."""
    return {
        "account_id": account_id,
        "channel": CHANNEL,
        "kind": KIND,
        "template_key": template_key,
        "locale": locale,
        "recipient": recipient,
        "variables": {"text": text},
        "attachments": [],
        "booking_id": None,
        "occurrence_start": None,
        "batch_id": batch_id,
        "idempotency_key": idempotency_key,
        "not_before": not_before,
        "expires_at": not_before + SEND_EXPIRY,
        "status": "queued",
        "attempts": 0,
        "next_attempt_at": not_before,
        "parts": 0,
        "billable": True,
        "created_at": now,
    }


@dataclass(frozen=True)
class BatchRow:
    recipient: str
    text: str


async def create_batch(
    db: Database,
    *,
    account_id: int,
    name: str,
    locale: str,
    template_key: str | None,
    text: str,
    rows: Sequence[BatchRow],
    skipped: int,
    now: datetime,
    spacing: float,
    created_by: int | None = None,
    daily_cap: int = 0,
) -> SmsBatch:
    """Queue a batch in one transaction: all of it or, on any failure, none. Row i may go `i × spacing`
    seconds from now, so a large batch is released at the channel's rate instead of crowding out
    reminders; numbers that opted out, or got `daily_cap` SMS in the last 24 hours, are skipped and
    counted."""
    if not rows:
        raise InvalidInput("the batch has no valid numbers", field="numbers")
    if len(rows) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} numbers per batch", field="numbers")
    async with db.writer() as session:
        opted_out = await suppressed_numbers(session, [r.recipient for r in rows])
        if daily_cap:
            counts = await recent_counts(session, [r.recipient for r in rows], now)
            opted_out |= {number for number, n in counts.items() if n >= daily_cap}
        batch = SmsBatch(
            account_id=account_id,
            name=name,
            template_key=template_key,
            locale=locale,
            text=text,
            total=0,
            skipped=skipped,
            created_by=created_by,
            created_at=now,
        )
        session.add(batch)
        await session.flush()
        values: list[dict[str, Any]] = []
        for row in rows:
            if row.recipient in opted_out:
                batch.skipped += 1
                continue
            not_before = now + timedelta(seconds=len(values) * spacing)
            values.append(
                _outbox_values(
                    account_id=account_id,
                    recipient=row.recipient,
                    text=row.text,
                    locale=locale,
                    template_key=template_key or KIND,
                    idempotency_key=f"{batch_key(batch.id)}:{row.recipient}",
                    batch_id=batch_key(batch.id),
                    not_before=not_before,
                    now=now,
                )
            )
        # One executemany: 10,000 single inserts held the write lock for many seconds.
        connection = await session.connection()
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        if values:
            await session.execute(
                insert(Notification).on_conflict_do_nothing(index_elements=["idempotency_key"]), values
            )
        queued = len(values)
        batch.total = queued
        if queued == 0:
            raise InvalidInput("every number of the batch opted out of SMS", field="numbers")
        await session.commit()
        return batch


@dataclass(frozen=True)
class BatchProgress:
    batch: SmsBatch
    statuses: dict[str, int]
    parts: int

    @property
    def done(self) -> int:
        return sum(n for status, n in self.statuses.items() if status not in ("queued", "sending"))


async def _batch(session: AsyncSession, account_id: int | None, batch_id: int) -> SmsBatch:
    batch = await session.get(SmsBatch, batch_id)
    if batch is None or (account_id is not None and batch.account_id != account_id):
        raise NotFound("no such batch", field="batch_id")
    return batch


async def batch_progress(db: Database, *, account_id: int | None, batch_id: int) -> BatchProgress:
    async with db.session() as session:
        batch = await _batch(session, account_id, batch_id)
        rows = await session.execute(
            select(Notification.status, func.count(), func.coalesce(func.sum(Notification.parts), 0))
            .where(Notification.batch_id == batch_key(batch_id))
            .group_by(Notification.status)
        )
        statuses: dict[str, int] = {}
        parts = 0
        for status, count, status_parts in rows.all():
            statuses[status] = int(count)
            parts += int(status_parts)
        return BatchProgress(batch, statuses, parts)


async def list_batches(db: Database, *, account_id: int, limit: int = 50) -> list[BatchProgress]:
    async with db.session() as session:
        ids = (
            await session.scalars(
                select(SmsBatch.id)
                .where(SmsBatch.account_id == account_id)
                .order_by(SmsBatch.id.desc())
                .limit(limit)
            )
        ).all()
    return [await batch_progress(db, account_id=account_id, batch_id=i) for i in ids]


async def cancel_batch(db: Database, *, account_id: int | None, batch_id: int, now: datetime) -> int:
    """Cancel what of the batch has not gone out (rows being sent finish); returns how many."""
    async with db.writer() as session:
        batch = await _batch(session, account_id, batch_id)
        if batch.cancelled_at is None:
            batch.cancelled_at = now
        result = await session.execute(
            update(Notification)
            .where(Notification.batch_id == batch_key(batch_id), Notification.status == "queued")
            .values(status="cancelled", last_error="the batch was cancelled", retain_until=retain_until(now))
            .execution_options(synchronize_session=False)
        )
        await session.commit()
        return int(getattr(result, "rowcount", 0) or 0)


@dataclass
class StatRow:
    """One group of the statistics: messages by final state and the parts the SMSC took."""

    key: str
    messages: int = 0
    # Messages the SMSC took (at least one part accepted), and their parts.
    accepted: int = 0
    parts: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


async def stats(
    db: Database,
    *,
    account_id: int | None,
    since: datetime,
    until: datetime,
    group_by: GroupBy,
    time_zone: str = "Asia/Shanghai",
) -> list[StatRow]:
    """SMS sent in [since, until) grouped by local day, template, status or batch (reminders included).

    Derived from the outbox rows, which are kept six months; older statistics are the monthly statements."""
    query = select(
        Notification.created_at,
        Notification.template_key,
        Notification.status,
        Notification.batch_id,
        Notification.parts,
    ).where(
        Notification.channel == CHANNEL, Notification.created_at >= since, Notification.created_at < until
    )
    if account_id is not None:
        query = query.where(Notification.account_id == account_id)
    zone = ZoneInfo(time_zone)
    groups: dict[str, StatRow] = {}
    async with db.session() as session:
        for created_at, template_key, status, batch_id, parts in (await session.execute(query)).all():
            if group_by == "day":
                key = created_at.astimezone(zone).date().isoformat()
            elif group_by == "template":
                key = template_key
            elif group_by == "status":
                key = status
            else:
                key = batch_id or "-"
            row = groups.setdefault(key, StatRow(key))
            row.messages += 1
            row.parts += parts or 0
            row.accepted += 1 if parts else 0
            row.statuses[status] = row.statuses.get(status, 0) + 1
    return [groups[k] for k in sorted(groups)]


async def history(
    db: Database, *, account_id: int | None, limit: int, offset: int, batch_id: int | None = None
) -> list[Notification]:
    query = select(Notification).where(Notification.channel == CHANNEL)
    if account_id is not None:
        query = query.where(Notification.account_id == account_id)
    if batch_id is not None:
        query = query.where(Notification.batch_id == batch_key(batch_id))
    async with db.session() as session:
        rows = await session.scalars(query.order_by(Notification.id.desc()).limit(limit).offset(offset))
        return list(rows.all())


async def opt_out(db: Database, *, number: str, text: str, now: datetime) -> None:
    """An MO opt-out from `number`: no more reminders or account SMS to it (idempotent)."""
    async with db.writer() as session:
        for scope in OPT_OUT_SCOPES:
            await outbox.suppress(
                session, channel=CHANNEL, recipient=number, scope=scope, reason=f"MO reply {text!r}", now=now
            )
        await session.commit()


async def billable_parts(session: AsyncSession, account_id: int, lo: datetime, hi: datetime) -> int:
    """SMS parts the SMSC took for the account in [lo, hi) (by the time they were taken), billable only:
    what the invoice's `sms` usage counts. A message left `unknown` without parts is not billed."""
    total = await session.scalar(
        select(func.coalesce(func.sum(Notification.parts), 0)).where(
            Notification.account_id == account_id,
            Notification.channel == CHANNEL,
            Notification.billable.is_(True),
            Notification.sent_at >= lo,
            Notification.sent_at < hi,
        )
    )
    return int(total or 0)


async def record_taken_parts(
    db: Database, outbox_id: int, provider_ids: Sequence[str], *, now: datetime
) -> None:
    """A message left `unknown` after some of its parts were taken: count those parts (billing meters
    them) and stamp when. No part rows are written, so their receipts cannot make the message look
    delivered."""
    async with db.writer() as session:
        row = await session.get(Notification, outbox_id)
        if row is not None and row.status == "unknown":
            row.parts = len(provider_ids)
            row.sent_at = now
            row.last_error = f"{row.last_error or ''} (taken: {', '.join(provider_ids)})"[:1000]
        await session.commit()
