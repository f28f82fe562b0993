"""Meetings and attendance (read only: the meeting server writes them)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from rooms.meetings import end_meeting
from rooms.models import Attendance, Meeting
from web.api.base import CLOCK, DB, LIVE, Api, ApiError, owned, parse_query, path_id, principal, send
from web.api.schemas import AttendanceOut, ListQuery, MeetingOut, RoomFilter

api = Api()


@api.op(
    "GET",
    "/meetings",
    summary="List meetings, newest first",
    tag="meetings",
    response=MeetingOut,
    many=True,
    query=RoomFilter,
)
async def list_meetings(request: web.Request) -> web.Response:
    who = principal(request)
    q = parse_query(request, RoomFilter)
    query = (
        select(Meeting).order_by(Meeting.started_at.desc(), Meeting.id.desc()).limit(q.limit).offset(q.offset)
    )
    if who.account_id is not None:
        query = query.where(Meeting.account_id == who.account_id)
    if q.room_id is not None:
        query = query.where(Meeting.room_id == q.room_id)
    async with request.app[DB].session() as session:
        rows = (await session.scalars(query)).all()
    return send([MeetingOut.model_validate(r) for r in rows])


@api.op("GET", "/meetings/{meeting_id}", summary="Get a meeting", tag="meetings", response=MeetingOut)
async def get_meeting(request: web.Request) -> web.Response:
    async with request.app[DB].session() as session:
        meeting = await owned(session, Meeting, path_id(request, "meeting_id"), principal(request))
    return send(MeetingOut.model_validate(meeting))


@api.op(
    "GET",
    "/meetings/{meeting_id}/attendance",
    summary="Who attended a meeting",
    tag="meetings",
    response=AttendanceOut,
    many=True,
    query=ListQuery,
)
async def list_attendance(request: web.Request) -> web.Response:
    q = parse_query(request, ListQuery)
    async with request.app[DB].session() as session:
        meeting = await owned(session, Meeting, path_id(request, "meeting_id"), principal(request))
        query = (
            select(Attendance)
            .where(Attendance.meeting_id == meeting.id)
            .order_by(Attendance.joined_at, Attendance.id)
            .limit(q.limit)
            .offset(q.offset)
        )
        rows = (await session.scalars(query)).all()
    return send([AttendanceOut.model_validate(r) for r in rows])


@api.op(
    "POST",
    "/meetings/{meeting_id}/end",
    summary="End a live meeting for everyone (admin)",
    tag="meetings",
    response=MeetingOut,
    errors=(409,),
)
async def end_live_meeting(request: web.Request) -> web.Response:
    who = principal(request)
    meeting_id = path_id(request, "meeting_id")
    async with request.app[DB].session() as session:
        meeting = await owned(session, Meeting, meeting_id, who)
    # After owned(): another account's meeting is 404 to everyone, as every other object is; only then may
    # the caller's role matter (403 would confirm to a non-admin that the id exists elsewhere).
    who.require_admin()
    if meeting.ended_at is not None:
        raise ApiError(409, "already_ended", "the meeting has already ended")
    live = request.app.get(LIVE)
    if live is None or not await live.end(meeting_id):
        # Not live in this process (it stopped without ending it): close the record so reports stay right.
        await end_meeting(request.app[DB], meeting_id, reason="ended_by_admin", now=request.app[CLOCK]())
    async with request.app[DB].session() as session:
        meeting = await owned(session, Meeting, meeting_id, who)
    return send(MeetingOut.model_validate(meeting))
