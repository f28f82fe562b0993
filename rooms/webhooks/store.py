"""Webhooks and deliveries in the database: what the REST API and the dispatcher read and write."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update

from rooms.database import Database
from rooms.errors import NotFound
from rooms.webhooks.events import event_body, queue
from rooms.webhooks.models import Webhook, WebhookDelivery
from rooms.webhooks.policy import PING, next_attempt

STATUSES = ("pending", "delivered", "failed")


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


async def webhook_of(db: Database, webhook_id: int, *, account_id: int | None) -> Webhook:
    async with db.session() as session:
        hook = await session.get(Webhook, webhook_id)
    if hook is None or (account_id is not None and hook.account_id != account_id):
        raise NotFound("no such webhook")
    return hook


async def deliveries(
    db: Database, webhook_id: int, *, status: str | None, limit: int, offset: int
) -> list[WebhookDelivery]:
    """A webhook's delivery log, newest first."""
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    query = query.order_by(WebhookDelivery.id.desc()).limit(limit).offset(offset)
    async with db.session() as session:
        return list((await session.scalars(query)).all())


async def ping(db: Database, webhook_id: int, *, account_id: int | None, now: datetime) -> WebhookDelivery:
    """Queue a ``ping`` event for one webhook (whatever it subscribes to)."""
    async with db.writer() as session:
        hook = await session.get(Webhook, webhook_id)
        if hook is None or (account_id is not None and hook.account_id != account_id):
            raise NotFound("no such webhook")
        body = event_body(PING, account_id=hook.account_id, data={"webhook_id": hook.id}, now=now)
        delivery = queue(session, hook, PING, body, now=now)
        await session.commit()
    return delivery


async def redeliver(
    db: Database, delivery_id: int, *, account_id: int | None, now: datetime
) -> WebhookDelivery:
    """Queue the same body again as a new delivery, behind what is already queued for its webhook."""
    async with db.writer() as session:
        old = await session.get(WebhookDelivery, delivery_id)
        if old is None or (account_id is not None and old.account_id != account_id):
            raise NotFound("no such delivery")
        hook = await session.get(Webhook, old.webhook_id)
        assert hook is not None
        delivery = queue(session, hook, old.event, old.body, now=now)
        await session.commit()
    return delivery


@dataclass(frozen=True)
class Claimed:
    """A delivery leased by one dispatcher, with what sending it needs."""

    delivery_id: int
    webhook_id: int
    url: str
    secret: str
    event: str
    body: str
    attempts: int


async def claim_due(db: Database, *, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
    """Lease the oldest pending delivery of each webhook whose turn has come.

    Only a webhook's oldest pending delivery is ever due, so a webhook's events go out in order. The lease is
    a conditional UPDATE: of two dispatchers (two workers) that pick the same row, one gets it.
    """
    heads = (
        select(func.min(WebhookDelivery.id))
        .where(WebhookDelivery.status == "pending")
        .group_by(WebhookDelivery.webhook_id)
    )
    query = (
        select(WebhookDelivery, Webhook)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(
            WebhookDelivery.id.in_(heads),
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now),
        )
        .order_by(WebhookDelivery.id)
        .limit(limit)
    )
    claimed: list[Claimed] = []
    async with db.writer() as session:
        for delivery, hook in (await session.execute(query)).all():
            taken = await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery.id,
                    WebhookDelivery.status == "pending",
                    or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now),
                )
                .values(lease_until=now + lease)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(
                    Claimed(
                        delivery.id,
                        hook.id,
                        hook.url,
                        hook.secret,
                        delivery.event,
                        delivery.body,
                        delivery.attempts,
                    )
                )
        await session.commit()
    return claimed


async def finish(
    db: Database,
    delivery_id: int,
    *,
    ok: bool,
    response_code: int | None,
    error: str,
    now: datetime,
    schedule: Sequence[float],
) -> WebhookDelivery:
    """Record an attempt: delivered, or failed with the next attempt scheduled (or given up)."""
    async with db.writer() as session:
        delivery = await session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            raise NotFound("no such delivery")
        delivery.attempts += 1
        delivery.response_code = response_code
        delivery.lease_until = None
        if ok:
            delivery.status = "delivered"
            delivery.delivered_at = now
            delivery.last_error = ""
        else:
            delivery.last_error = error[:500]
            retry = next_attempt(delivery.attempts, now, schedule)
            if retry is None:
                delivery.status = "failed"
            else:
                delivery.next_attempt_at = retry
        await session.commit()
    return delivery
