"""Emitting an event: one delivery row per subscribed webhook, in the caller's transaction (an outbox)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.webhooks.models import Webhook, WebhookDelivery
from rooms.webhooks.policy import EVENTS, PING


def event_body(event: str, *, account_id: int, data: Mapping[str, Any], now: datetime) -> str:
    """The JSON a receiver gets: the same bytes are signed, sent, and repeated by a redelivery."""
    envelope = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": event,
        "created_at": now.isoformat(),
        "account_id": account_id,
        "data": dict(data),
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), default=_plain)


def _plain(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def queue(
    session: AsyncSession, webhook: Webhook, event: str, body: str, *, now: datetime
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        webhook_id=webhook.id,
        account_id=webhook.account_id,
        event=event,
        body=body,
        status="pending",
        attempts=0,
        last_error="",
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    return delivery


async def emit(
    session: AsyncSession, event: str, *, account_id: int, data: Mapping[str, Any], now: datetime
) -> int:
    """Queue ``event`` for the account's active webhooks that subscribe to it; returns how many.

    Call it inside the transaction that makes the change, before its commit: the event exists if and only if
    the change does.
    """
    if event not in EVENTS and event != PING:
        raise ValueError(f"unknown webhook event {event!r}")
    hooks = (
        await session.scalars(
            select(Webhook)
            .where(Webhook.account_id == account_id, Webhook.active.is_(True))
            .order_by(Webhook.id)
        )
    ).all()
    subscribed = [h for h in hooks if event in h.events]
    if not subscribed:
        return 0
    body = event_body(event, account_id=account_id, data=data, now=now)
    for hook in subscribed:
        queue(session, hook, event, body, now=now)
    return len(subscribed)
