"""The sent history: a monthly CSV statement per account and channel, then the purge after six months.

The statement comes first (its own transaction per month), so a purge never removes a row that no statement
lists; SMS numbers are masked in it (reconciliation needs the count and ids, not the whole number).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from rooms.database import Database
from rooms.outbox.models import Notification, NotificationPart, NotificationStatement
from rooms.outbox.rules import month_start, next_month

COLUMNS = (
    "id",
    "created_at",
    "sent_at",
    "channel",
    "kind",
    "template_key",
    "recipient",
    "parts",
    "provider_ids",
    "status",
    "billable",
)


@dataclass(frozen=True)
class PurgeReport:
    statements: int
    purged: int


def mask(recipient: str, channel: str) -> str:
    """+8613812345678 → +86138****5678; alice@example.com → a***@example.com."""
    if channel == "sms":
        keep_start = 6 if recipient.startswith("+") else 3
        if len(recipient) <= keep_start + 4:
            return recipient[:2] + "*" * max(len(recipient) - 2, 0)
        return recipient[:keep_start] + "*" * (len(recipient) - keep_start - 4) + recipient[-4:]
    if "@" in recipient:
        local, _, domain = recipient.partition("@")
        return f"{local[:1]}***@{domain}"
    return recipient


def statement_csv(rows: Sequence[Notification], provider_ids: dict[int, list[str]]) -> str:
    """Pure: the CSV of a month's rows (UTF-8 with a BOM so spreadsheet programs read Chinese right)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(
            [
                r.id,
                r.created_at.isoformat(),
                r.sent_at.isoformat() if r.sent_at else "",
                r.channel,
                r.kind,
                r.template_key,
                mask(r.recipient, r.channel),
                r.parts,
                " ".join(provider_ids.get(r.id, [])),
                r.status,
                "yes" if r.billable else "no",
            ]
        )
    return out.getvalue()


async def write_statements(db: Database, *, now: datetime) -> int:
    """A statement for every ended month that has rows and none yet; returns how many were written."""
    this_month = month_start(now)
    async with db.session() as session:
        oldest = await session.scalar(select(func.min(Notification.created_at)))
    if oldest is None:
        return 0
    written = 0
    month = month_start(oldest)
    while month < this_month:
        written += await _statements_of_month(db, month, now=now)
        month = next_month(month)
    return written


async def _statements_of_month(db: Database, month: datetime, *, now: datetime) -> int:
    async with db.writer() as session:
        done = await session.scalar(
            select(func.count())
            .select_from(NotificationStatement)
            .where(NotificationStatement.month == month.date())
        )
        if done:
            return 0
        rows = (
            await session.scalars(
                select(Notification)
                .where(Notification.created_at >= month, Notification.created_at < next_month(month))
                .order_by(Notification.account_id, Notification.channel, Notification.id)
            )
        ).all()
        if not rows:
            return 0
        ids = [r.id for r in rows]
        provider_ids: dict[int, list[str]] = {}
        for start in range(0, len(ids), 500):
            parts = await session.execute(
                select(NotificationPart.outbox_id, NotificationPart.provider_message_id)
                .where(NotificationPart.outbox_id.in_(ids[start : start + 500]))
                .order_by(NotificationPart.outbox_id, NotificationPart.seq)
            )
            for outbox_id, provider_id in parts.all():
                if provider_id:
                    provider_ids.setdefault(outbox_id, []).append(provider_id)
        groups: dict[tuple[int, str], list[Notification]] = {}
        for r in rows:
            groups.setdefault((r.account_id or 0, r.channel), []).append(r)
        for (account_key, channel), group in groups.items():
            session.add(
                NotificationStatement(
                    account_key=account_key,
                    channel=channel,
                    month=month.date(),
                    messages=len(group),
                    parts=sum(r.parts for r in group),
                    csv=statement_csv(group, provider_ids),
                    created_at=now,
                )
            )
        await session.commit()
        return len(groups)


async def purge_history(db: Database, *, now: datetime) -> PurgeReport:
    """Write the missing statements, then delete rows past `retain_until` (with their parts)."""
    statements = await write_statements(db, now=now)
    async with db.writer() as session:
        # Only rows of months that have a statement (every ended month has one after the step above).
        result = await session.execute(
            delete(Notification)
            .where(Notification.retain_until <= now, Notification.created_at < month_start(now))
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    return PurgeReport(statements=statements, purged=int(getattr(result, "rowcount", 0) or 0))


async def statements(db: Database, *, account_key: int | None = None) -> list[NotificationStatement]:
    query = select(NotificationStatement)
    if account_key is not None:
        query = query.where(NotificationStatement.account_key == account_key)
    async with db.session() as session:
        return list((await session.scalars(query.order_by(NotificationStatement.month))).all())
