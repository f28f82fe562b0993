"""Notifications: the outbox history for admins, and the one-click unsubscribe from reminder e-mail.

The app keys here are how the composition root (yunhui/notifications.py) hands the API what the outbox
needs; without them (an API built alone, in tests) bookings simply send no invitations.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from rooms.bookings import ChangeHook
from rooms.outbox import store
from rooms.outbox.invitations import NoticeSettings
from rooms.outbox.password_reset import request_reset
from rooms.outbox.unsubscribe import SCOPE, verify_unsubscribe
from web.api.base import CLOCK, DB, SECRET_KEY, Api, parse_body, parse_query, principal, send

api = Api()
# The booking hook that writes invitations and reminders in the booking's transaction.
BOOKING_CHANGES: web.AppKey[ChangeHook] = web.AppKey("booking_changes")
# Wakes the dispatcher after a commit that queued messages (else it finds them within a second).
WAKE: web.AppKey[Callable[[], None]] = web.AppKey("outbox_wake")
# What notices need from the settings of other packages (public URL, sender, default locale).
NOTICES = web.AppKey("notice_settings", NoticeSettings)


def notice_settings(request: web.Request) -> NoticeSettings:
    """The composition root's notice settings; an API built alone (tests) queues with this host's URL."""
    configured = request.app.get(NOTICES)
    if configured is not None:
        return configured
    return NoticeSettings(public_url=f"{request.scheme}://{request.host}", sender="noreply@localhost")


def wake(request: web.Request) -> None:
    callback = request.app.get(WAKE)
    if callback is not None:
        callback()


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    account_id: int | None
    channel: str
    kind: str
    template_key: str
    locale: str
    recipient: str
    booking_id: int | None
    batch_id: str | None
    status: str
    attempts: int
    parts: int
    last_error: str | None
    not_before: datetime
    expires_at: datetime
    created_at: datetime
    sent_at: datetime | None


class NotificationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["email", "sms", "announcement"] | None = None
    booking_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    account_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100


class UnsubscribeQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Annotated[str, StringConstraints(min_length=3, max_length=1000)]


class ResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class ResetAccepted(BaseModel):
    # The same answer whether or not the address is known: the form must not tell who has an account.
    status: Literal["accepted"] = "accepted"


class Unsubscribed(BaseModel):
    address: str
    scope: str


@api.op(
    "GET",
    "/notifications",
    summary="The outbox: messages queued and sent, newest first (admin)",
    tag="notifications",
    response=NotificationOut,
    many=True,
    query=NotificationQuery,
)
async def list_notifications(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    q = parse_query(request, NotificationQuery)
    account_id = who.account_id if who.account_id is not None else q.account_id
    rows = await store.history(
        request.app[DB], account_id=account_id, channel=q.channel, booking_id=q.booking_id, limit=q.limit
    )
    return send([NotificationOut.model_validate(r) for r in rows])


@api.op(
    "POST",
    "/notifications/unsubscribe",
    summary="One-click unsubscribe from reminder e-mail (RFC 8058; the link in each reminder)",
    tag="notifications",
    query=UnsubscribeQuery,
    response=Unsubscribed,
    auth=False,
)
async def unsubscribe(request: web.Request) -> web.Response:
    q = parse_query(request, UnsubscribeQuery)
    address = verify_unsubscribe(request.app[SECRET_KEY], q.token)
    async with request.app[DB].writer() as session:
        await store.suppress(
            session,
            channel="email",
            recipient=address,
            scope=SCOPE,
            reason="one-click unsubscribe",
            now=request.app[CLOCK](),
        )
        await session.commit()
    return send(Unsubscribed(address=address, scope=SCOPE))


@api.op(
    "POST",
    "/auth/password-reset",
    summary="Mail a one-time password to a user who forgot theirs (the answer never says if the user exists)",
    tag="auth",
    body=ResetIn,
    response=ResetAccepted,
    status=202,
    auth=False,
)
async def password_reset(request: web.Request) -> web.Response:
    body = await parse_body(request, ResetIn)
    settings = notice_settings(request)
    await request_reset(
        request.app[DB],
        body.email,
        now=request.app[CLOCK](),
        login_url=f"{settings.public_url.rstrip('/')}/admin",
        default_locale=settings.default_locale,
    )
    wake(request)
    return send(ResetAccepted(), 202)
