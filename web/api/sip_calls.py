"""Dial-out from a live meeting to a registered room system (a host action), and hanging such a call up.

The gateway the composition root puts on the app (SIP_DIALER, yunhui/sip.py) does the calling; without it
(SIP disabled) every dial is 503. Who may: an account admin for any meeting of the account, an organizer for
the meetings of their own bookings; another account's meeting is 404 as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal, Protocol

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.models import Booking, Meeting, Room
from signaling.sip.api import DialRefused, DialState
from web.api.base import CLOCK, DB, Api, ApiError, owned, parse_body, path_id, principal, send
from web.api.schemas import Id
from web.api.sip import LiveCallView

api = Api()
TAG = "sip"


class SipDialer(Protocol):
    """What the API asks of the gateway (signaling.sip.gateway.Gateway implements it)."""

    async def dial_out(
        self,
        meeting_id: int,
        endpoint_id: int,
        *,
        now: datetime,
        notify: Callable[[DialState], None] | None = None,
    ) -> LiveCallView: ...

    def hang_up(self, call_id: str, *, meeting_number: str | None = None) -> bool: ...

    def live_calls(self) -> Sequence[LiveCallView]: ...


SIP_DIALER = web.AppKey("sip_dialer", SipDialer)


class DialIn(BaseModel):
    endpoint_id: Id


class DialOut(BaseModel):
    call_id: str
    endpoint_id: int | None
    direction: Literal["inbound", "outbound"] | str
    state: str
    meeting_number: str | None
    participant_id: str | None
    remote: str
    transport: str
    started_at: datetime


async def _meeting(request: web.Request) -> Meeting:
    """The live meeting of the path, if the caller may dial out from it."""
    who = principal(request)
    async with request.app[DB].session() as session:
        meeting = await owned(session, Meeting, path_id(request, "meeting_id"), who)
        booking = None if meeting.booking_id is None else await session.get(Booking, meeting.booking_id)
    if not (who.is_admin or who.is_platform_admin) and (
        booking is None or booking.organizer_id != who.user.id
    ):
        raise ApiError(403, "forbidden", "only an admin or the meeting's organizer may call a room system")
    if meeting.ended_at is not None:
        raise ApiError(409, "not_live", "the meeting has ended")
    return meeting


def _dialer(request: web.Request) -> SipDialer:
    dialer = request.app.get(SIP_DIALER)
    if dialer is None:
        raise ApiError(503, "unavailable", "the SIP gateway is not enabled")
    return dialer


@api.op(
    "POST",
    "/meetings/{meeting_id}/sip/calls",
    summary="Call a registered room system into a live meeting",
    tag=TAG,
    body=DialIn,
    response=DialOut,
    status=202,
    errors=(503,),
)
async def dial_out(request: web.Request) -> web.Response:
    meeting = await _meeting(request)
    body = await parse_body(request, DialIn)
    dialer = _dialer(request)
    try:
        call = await dialer.dial_out(meeting.id, body.endpoint_id, now=request.app[CLOCK]())
    except DialRefused as refused:
        raise ApiError(refused.status, refused.code, refused.message, "endpoint_id") from None
    return send(_out(call), status=202)


@api.op(
    "GET",
    "/meetings/{meeting_id}/sip/calls",
    summary="The SIP calls of a live meeting (both directions)",
    tag=TAG,
    response=DialOut,
    many=True,
)
async def list_meeting_calls(request: web.Request) -> web.Response:
    meeting = await _meeting(request)
    dialer = request.app.get(SIP_DIALER)
    async with request.app[DB].session() as session:
        number = await _number(session, meeting)
    calls = [] if dialer is None else [c for c in dialer.live_calls() if c.meeting_number == number]
    return send([_out(c) for c in calls])


@api.op(
    "DELETE",
    "/meetings/{meeting_id}/sip/calls/{call}",
    summary="Hang up a SIP call of a live meeting",
    tag=TAG,
    status=204,
    errors=(503,),
)
async def hang_up(request: web.Request) -> web.Response:
    meeting = await _meeting(request)
    dialer = _dialer(request)
    async with request.app[DB].session() as session:
        number = await _number(session, meeting)
    if not dialer.hang_up(request.match_info["call"], meeting_number=number):
        raise ApiError(404, "not_found", "no such call in this meeting", "call")
    return web.Response(status=204)


async def _number(session: AsyncSession, meeting: Meeting) -> str | None:
    room = await session.get(Room, meeting.room_id)
    return None if room is None else room.meeting_number


def _out(call: LiveCallView) -> DialOut:
    return DialOut(
        call_id=call.call_id,
        endpoint_id=call.endpoint_id,
        direction=call.direction,
        state=call.state,
        meeting_number=call.meeting_number,
        participant_id=call.participant_id,
        remote=call.remote,
        transport=call.transport,
        started_at=call.started_at,
    )
