"""Meetings and attendance: what the meeting server persists, and the lookups it admits with."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from rooms.audit.recorder import Actor, record
from rooms.bookings import room_occurrences, terms
from rooms.database import Database
from rooms.errors import InvalidInput, NotFound, StaleLease
from rooms.models import Attendance, Booking, Endpoint, Meeting, Room, Site
from rooms.policy import Kind, Terms, Window, window
from rooms.recurrence import Occurrence
from rooms.webhooks.events import emit

# Who the log names when the caller does not say which moderator acted.
MODERATOR = Actor(None, "moderator", None, "")


def device_class(user_agent: str, kind: Kind) -> str:
    """A coarse device class from a User-Agent: room-system, desktop, mobile, tablet, encoder, system."""
    if kind is Kind.SIP:
        return "room-system"
    if kind is Kind.WHIP:
        return "encoder"
    if kind is Kind.RECORDER:
        return "system"
    ua = user_agent.lower()
    if "ipad" in ua or "tablet" in ua or ("android" in ua and "mobile" not in ua):
        return "tablet"
    if re.search(r"iphone|mobile|android", ua):
        return "mobile"
    if ua:
        return "desktop"
    return "unknown"


@dataclass(frozen=True)
class Admission:
    """What the meeting server needs to admit into a room now: the room, its terms, and the booked window."""

    room: Room
    terms: Terms
    booking: Booking | None
    occurrence: Occurrence | None
    window: Window | None


async def room_by_number(db: Database, meeting_number: str) -> Room | None:
    async with db.session() as session:
        room: Room | None = await session.scalar(select(Room).where(Room.meeting_number == meeting_number))
    return room


async def admission(
    db: Database, room: Room, *, now: datetime, open_before: timedelta, grace: timedelta
) -> Admission:
    """The booked occurrence whose window holds `now` (else the next one today, else none: ad hoc)."""
    found = await room_occurrences(db, room.id, start=now - grace, end=now + timedelta(days=1) + open_before)
    for booking, occurrence in found:
        w = window(occurrence.start, occurrence.end, open_before=open_before, grace=grace)
        if w.opens_at <= now < w.closes_at:
            return Admission(room, terms(room, booking), booking, occurrence, w)
    return Admission(room, terms(room, None), None, None, None)


async def start_meeting(
    db: Database,
    *,
    room_id: int,
    now: datetime,
    booking_id: int | None = None,
    occurrence_start: datetime | None = None,
    worker_id: int | None = None,
    lease_epoch: int | None = None,
) -> Meeting:
    """Start a meeting. `worker_id` is the run hosting it (rooms.workers); without it the run's next
    heartbeat claims it, and crash recovery gives an unclaimed one to the run of its slot up at its start."""
    async with db.writer() as session:
        room = await session.get(Room, room_id)
        if room is None:
            raise NotFound("no such room", field="room_id")
        meeting = Meeting(
            account_id=room.account_id,
            room_id=room.id,
            booking_id=booking_id,
            occurrence_start=occurrence_start,
            started_at=now,
            worker_id=worker_id,
            lease_epoch=lease_epoch,
        )
        session.add(meeting)
        await session.flush()
        data = _meeting_data(meeting)
        await emit(session, "meeting.started", account_id=meeting.account_id, data=data, now=now)
        await session.commit()
    return meeting


def _meeting_data(meeting: Meeting) -> dict[str, object]:
    return {
        "meeting_id": meeting.id,
        "room_id": meeting.room_id,
        "booking_id": meeting.booking_id,
        "started_at": meeting.started_at,
        "ended_at": meeting.ended_at,
        "end_reason": meeting.end_reason,
    }


def _attendance_data(attendance: Attendance) -> dict[str, object]:
    return {
        "meeting_id": attendance.meeting_id,
        "participant_id": attendance.participant_id,
        "display_name": attendance.display_name,
        "kind": attendance.kind,
        "device_class": attendance.device_class,
        "endpoint_id": attendance.endpoint_id,
        "site_id": attendance.site_id,
        "joined_at": attendance.joined_at,
        "left_at": attendance.left_at,
        "leave_reason": attendance.leave_reason,
    }


async def end_meeting(
    db: Database,
    meeting_id: int,
    *,
    reason: str,
    now: datetime,
    by: Actor | None = None,
    lease_epoch: int | None = None,
) -> Meeting:
    """End a meeting and close every open attendance. Idempotent: a second call changes nothing.
    With `lease_epoch` (a cluster worker's lease) it ends only a meeting still held under that epoch, else
    raises StaleLease: the meeting has moved and runs on in another worker."""
    async with db.writer() as session:
        if lease_epoch is not None:
            # Conditional, and it locks the row until commit: an adoption cannot slip in between.
            fenced = await session.execute(
                update(Meeting)
                .where(Meeting.id == meeting_id, Meeting.lease_epoch == lease_epoch)
                .values(lease_epoch=lease_epoch)
            )
            if fenced.rowcount == 0:  # type: ignore[attr-defined]
                raise StaleLease(f"meeting {meeting_id} is held under another lease now", field="meeting_id")
        meeting = await session.get(Meeting, meeting_id)
        if meeting is None:
            raise NotFound("no such meeting")
        if meeting.ended_at is None:
            meeting.ended_at = now
            meeting.end_reason = reason
            query = select(Attendance).where(
                Attendance.meeting_id == meeting_id, Attendance.left_at.is_(None)
            )
            for attendance in (await session.scalars(query)).all():
                attendance.left_at = now
                attendance.leave_reason = "meeting_ended"
                data = _attendance_data(attendance)
                await emit(session, "participant.left", account_id=meeting.account_id, data=data, now=now)
            data = _meeting_data(meeting)
            await emit(session, "meeting.ended", account_id=meeting.account_id, data=data, now=now)
            if reason == "host_ended":
                record(session, "end", "meeting", meeting.id, account_id=meeting.account_id,
                       changes={"reason": reason}, now=now, actor=by or MODERATOR)  # fmt: skip
            await session.commit()
    return meeting


async def record_join(
    db: Database,
    *,
    meeting_id: int,
    participant_id: str,
    display_name: str,
    kind: Kind | str,
    now: datetime,
    user_agent: str = "",
    endpoint_id: int | None = None,
) -> Attendance:
    try:
        kind = Kind(kind)
    except ValueError as exc:
        raise InvalidInput(f"unknown participant kind {kind!r}", field="kind") from exc
    async with db.writer() as session:
        meeting = await session.get(Meeting, meeting_id)
        if meeting is None:
            raise NotFound("no such meeting")
        site_id = None
        if endpoint_id is not None:
            endpoint = await session.get(Endpoint, endpoint_id)
            if endpoint is None:
                raise NotFound("no such endpoint", field="endpoint_id")
            site_id = endpoint.site_id
        attendance = Attendance(
            account_id=meeting.account_id,
            meeting_id=meeting_id,
            participant_id=participant_id,
            display_name=display_name[:200],
            kind=kind.value,
            endpoint_id=endpoint_id,
            site_id=site_id,
            device_class=device_class(user_agent, kind),
            user_agent=user_agent[:500],
            joined_at=now,
        )
        session.add(attendance)
        data = _attendance_data(attendance)
        await emit(session, "participant.joined", account_id=meeting.account_id, data=data, now=now)
        await session.commit()
    return attendance


async def record_leave(
    db: Database, *, meeting_id: int, participant_id: str, reason: str, now: datetime, by: Actor | None = None
) -> Attendance | None:
    """Close the participant's open attendance; None when there is none (already left)."""
    async with db.writer() as session:
        query = (
            select(Attendance)
            .where(
                Attendance.meeting_id == meeting_id,
                Attendance.participant_id == participant_id,
                Attendance.left_at.is_(None),
            )
            .order_by(Attendance.id.desc())
        )
        attendance = await session.scalar(query)
        if attendance is None:
            return None
        attendance.left_at = now
        attendance.leave_reason = reason
        data = _attendance_data(attendance)
        await emit(session, "participant.left", account_id=attendance.account_id, data=data, now=now)
        if reason == "removed":
            changes = {"meeting_id": meeting_id, "display_name": attendance.display_name}
            record(session, "remove", "participant", participant_id, account_id=attendance.account_id,
                   changes=changes, now=now, actor=by or MODERATOR)  # fmt: skip
        await session.commit()
    return attendance


async def endpoint_by_username(db: Database, sip_username: str) -> tuple[Endpoint, Site] | None:
    """The endpoint and its site for a SIP username (the SIP gateway's digest lookup)."""
    async with db.session() as session:
        row = (
            await session.execute(
                select(Endpoint, Site)
                .join(Site, Site.id == Endpoint.site_id)
                .where(Endpoint.sip_username == sip_username)
            )
        ).first()
    return None if row is None else (row[0], row[1])
