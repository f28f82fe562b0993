"""Where a meeting lives (issue #20): ``POST /meetings/locate`` answers the worker to connect to.

A client asks any worker first, then opens Socket.IO under ``base`` (``/w/{k}/socket.io/``, which nginx
routes to worker k). One process answers its own root. An unknown meeting number is located too (on any
worker, nothing leased): the join there refuses it with the passcode attempt limits, so locate cannot be
used to find meeting numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from pydantic import Field, model_validator
from sqlalchemy import select

from rooms.errors import RoomsError
from rooms.models import Room
from rooms.tokens import verify_join_token
from web.api.base import CLOCK, DB, SECRET_KEY, Api, ApiError, parse_body, send
from web.api.schemas import Body, Out

api = Api()


@dataclass(frozen=True, slots=True)
class Location:
    worker: str | None  # None: the one process
    base: str


class Locator(Protocol):
    async def locate(self, room_id: int | None, *, expected: int) -> Location | None:
        """The room's worker (leasing it to a chosen worker when it has none); None: the cluster registry
        cannot be reached."""
        ...


LOCATOR = web.AppKey("locator", Locator)
# A room just placed counts this many participants on its worker until they have joined (ramp-up).
EXPECTED_CAP = 50


class LocateIn(Body):
    meeting_number: str | None = Field(default=None, min_length=1, max_length=32)
    join_token: str | None = Field(default=None, min_length=1, max_length=4096)

    @model_validator(mode="after")
    def _one_of(self) -> LocateIn:
        if (self.meeting_number is None) == (self.join_token is None):
            raise ValueError("give meeting_number or join_token")
        return self


class LocationOut(Out):
    worker: str | None = Field(description="the worker the meeting lives in; null: a single process")
    base: str = Field(description="the path prefix to connect under: /w/{worker}/ (Socket.IO, WHIP, WHEP)")


@api.op(
    "POST",
    "/meetings/locate",
    summary="The worker a meeting lives in: connect to it under base",
    tag="meetings",
    body=LocateIn,
    response=LocationOut,
    auth=False,
    errors=(503,),
)
async def locate_meeting(request: web.Request) -> web.Response:
    body = await parse_body(request, LocateIn)
    locator = request.app.get(LOCATOR)
    room_id: int | None = None
    expected = 1
    if body.join_token is not None:
        try:
            claims = verify_join_token(request.app[SECRET_KEY], body.join_token, now=request.app[CLOCK]())
        except RoomsError as exc:
            raise ApiError(401, "bad_token", f"the join token is not valid ({exc.code})") from None
        room_id = claims.room_id
    if locator is None:
        return send(LocationOut(worker=None, base="/"))
    async with request.app[DB].session() as session:
        query = select(Room.id, Room.capacity)
        if room_id is not None:
            query = query.where(Room.id == room_id)
        else:
            query = query.where(Room.meeting_number == body.meeting_number)
        row = (await session.execute(query)).first()
    if row is not None:
        room_id, expected = row[0], max(1, min(int(row[1] or 1), EXPECTED_CAP))
    else:
        room_id = None
    found = await locator.locate(room_id, expected=expected)
    if found is None:
        raise ApiError(503, "unavailable", "the meeting service cannot place meetings now; try again shortly")
    return send(LocationOut(worker=found.worker, base=found.base))
