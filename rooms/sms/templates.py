"""SMS templates of an account (or, with no account, of the platform) in notification_templates, one row per
locale; the texts are checked by the caller (web/ through the SMS service) before they are saved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from rooms.database import Database
from rooms.outbox.models import NotificationTemplate

CHANNEL = "sms"


async def template_rows(db: Database, *, account_id: int | None) -> list[NotificationTemplate]:
    query = select(NotificationTemplate).where(NotificationTemplate.channel == CHANNEL)
    query = query.where(
        NotificationTemplate.account_id.is_(None)
        if account_id is None
        else NotificationTemplate.account_id == account_id
    )
    async with db.session() as session:
        rows = await session.scalars(query.order_by(NotificationTemplate.key, NotificationTemplate.locale))
        return list(rows.all())


async def save_template(
    db: Database,
    *,
    account_id: int | None,
    key: str,
    texts: Mapping[str, str],
    variables: Sequence[Mapping[str, Any]],
    provider_code: str | None,
    now: datetime,
) -> list[NotificationTemplate]:
    """Write a template checked by the caller (both locales, declared variables), one row per locale."""
    async with db.writer() as session:
        existing = {
            row.locale: row
            for row in (
                await session.scalars(
                    select(NotificationTemplate).where(
                        NotificationTemplate.channel == CHANNEL,
                        NotificationTemplate.key == key,
                        NotificationTemplate.account_id.is_(None)
                        if account_id is None
                        else NotificationTemplate.account_id == account_id,
                    )
                )
            ).all()
        }
        rows = []
        for locale, text in texts.items():
            row = existing.get(locale)
            if row is None:
                row = NotificationTemplate(
                    account_id=account_id, channel=CHANNEL, key=key, locale=locale, created_at=now
                )
                session.add(row)
            row.body = text
            row.subject = ""
            row.variables = [dict(v) for v in variables]
            row.provider_code = provider_code
            # A changed text needs the provider's approval again.
            row.approval = "pending" if provider_code else "none"
            row.updated_at = now
            rows.append(row)
        await session.commit()
        return rows


async def delete_template(db: Database, *, account_id: int | None, key: str) -> int:
    async with db.writer() as session:
        rows = (
            await session.scalars(
                select(NotificationTemplate).where(
                    NotificationTemplate.channel == CHANNEL,
                    NotificationTemplate.key == key,
                    NotificationTemplate.account_id.is_(None)
                    if account_id is None
                    else NotificationTemplate.account_id == account_id,
                )
            )
        ).all()
        for row in rows:
            await session.delete(row)
        await session.commit()
        return len(rows)


async def template_text(db: Database, *, account_id: int | None, key: str, locale: str) -> str | None:
    """The text an SMS of `key` uses: the account's own, else the platform's override, else None."""
    async with db.session() as session:
        for owner in ([account_id] if account_id is not None else []) + [None]:
            body = await session.scalar(
                select(NotificationTemplate.body).where(
                    NotificationTemplate.channel == CHANNEL,
                    NotificationTemplate.key == key,
                    NotificationTemplate.locale == locale,
                    NotificationTemplate.account_id.is_(None)
                    if owner is None
                    else NotificationTemplate.account_id == owner,
                )
            )
            if body is not None:
                return str(body)
    return None
