"""E-mail on an incident's opening, first response and resolution, queued in the outbox in the transaction
that makes the change (rooms/outbox): the reporter, the assignee and the account's admins are told."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.incidents.models import Incident
from rooms.models import User
from rooms.outbox.store import enqueue

CHANGES = ("opened", "responded", "resolved")


async def recipients(session: AsyncSession, incident: Incident) -> list[User]:
    ids = {i for i in (incident.reported_by, incident.assignee_id) if i is not None}
    query = select(User).where(User.id.in_(ids)) if ids else None
    users = list((await session.scalars(query)).all()) if query is not None else []
    if incident.account_id is not None:
        admins = await session.scalars(
            select(User).where(User.account_id == incident.account_id, User.role == "admin")
        )
        users += [u for u in admins if u.id not in ids]
    return users


async def notify_incident(
    session: AsyncSession, incident: Incident, change: str, *, now: datetime
) -> list[int]:
    """Queue one e-mail per recipient (template ``incident_<change>``); nothing is committed here."""
    if change not in CHANGES:
        raise ValueError(change)
    queued = []
    for user in await recipients(session, incident):
        row = await enqueue(
            session,
            channel="email",
            kind=f"incident.{change}",
            template_key=f"incident_{change}",
            recipient=user.email,
            idempotency_key=f"incident:{incident.id}:{change}:{now.isoformat()}:{user.id}",
            now=now,
            account_id=incident.account_id,
            locale=user.locale or "zh-CN",
            variables={
                "incident_id": incident.id,
                "title": incident.title,
                "severity": incident.severity,
                "status": incident.status,
                "opened_at": incident.opened_at.isoformat(),
            },
        )
        if row is not None:
            queued.append(row)
    return queued
