"""The audit log: each mutating API request records who changed what (rooms.audit.recorder), searchable."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, StringConstraints
from sqlalchemy import func, or_, select

from rooms.audit import recorder
from rooms.audit.models import AuditEntry
from web.api.base import CLOCK, DB, PRINCIPAL, Api, ApiError, Handler, parse_query, principal, send
from web.api.schemas import Id, ListQuery, Out
from web.proxies import client_address

api = Api()
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
recorder.install()


@web.middleware
async def audit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Open an audit scope around each mutating request: its writes are logged in their own transaction."""
    if request.method not in MUTATING:
        return await handler(request)

    def actor() -> recorder.Actor | None:
        who = request.get(PRINCIPAL)
        if who is None:
            return None
        return recorder.Actor(who.user.id, who.user.email, who.account_id, client_address(request))

    with recorder.acting(actor, request.app[CLOCK]):
        return await handler(request)


class AuditQuery(ListQuery):
    account_id: Id | None = None
    actor_id: Id | None = None
    object_type: Annotated[str, StringConstraints(max_length=40)] | None = None
    object_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    action: Annotated[str, StringConstraints(max_length=40)] | None = None
    since: datetime | None = None
    until: datetime | None = None
    # Free text: the actor's e-mail, the address, or the object id.
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None


class AuditOut(Out):
    id: int
    at: datetime
    actor_id: int | None
    actor: str
    account_id: int | None
    address: str
    action: str
    object_type: str
    object_id: str
    changes: dict[str, Any]


class AuditPage(Out):
    total: Annotated[int, Field(ge=0)]
    entries: list[AuditOut]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ApiError(422, "invalid", "since/until: give a time zone offset, e.g. 2026-12-01T00:00:00+08:00")
    return value


@api.op(
    "GET",
    "/audit",
    summary="Search the audit log, newest first (admin; a platform admin sees every account)",
    tag="audit",
    response=AuditPage,
    query=AuditQuery,
)
async def search_audit(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    q = parse_query(request, AuditQuery)
    filters: list[Any] = []
    account_id = who.account_id if who.account_id is not None else q.account_id
    if account_id is not None:
        filters.append(AuditEntry.account_id == account_id)
    if q.actor_id is not None:
        filters.append(AuditEntry.actor_id == q.actor_id)
    if q.object_type:
        filters.append(AuditEntry.object_type == q.object_type)
    if q.object_id:
        filters.append(AuditEntry.object_id == q.object_id)
    if q.action:
        filters.append(AuditEntry.action == q.action)
    if q.since is not None:
        filters.append(AuditEntry.at >= _aware(q.since))
    if q.until is not None:
        filters.append(AuditEntry.at < _aware(q.until))
    if q.q:
        like = f"%{q.q.replace('%', '').replace('_', '')}%"
        text = or_(AuditEntry.actor.ilike(like), AuditEntry.address.ilike(like), AuditEntry.object_id == q.q)
        filters.append(text)
    async with request.app[DB].session() as session:
        total = await session.scalar(select(func.count()).select_from(AuditEntry).where(*filters))
        rows = (
            await session.scalars(
                select(AuditEntry)
                .where(*filters)
                .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                .limit(q.limit)
                .offset(q.offset)
            )
        ).all()
    return send(AuditPage(total=total or 0, entries=[AuditOut.model_validate(r) for r in rows]))
