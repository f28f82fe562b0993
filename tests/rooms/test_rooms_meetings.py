from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from rooms.bookings import BookingDraft, create_booking
from rooms.database import Database
from rooms.errors import InvalidInput, NotFound
from rooms.meetings import (
    admission,
    device_class,
    end_meeting,
    endpoint_by_username,
    record_join,
    record_leave,
    room_by_number,
    start_meeting,
)
from rooms.models import Attendance, Endpoint, Site
from rooms.policy import Kind
from rooms.recurrence import Schedule
from rooms.settings import RoomsSettings

from .test_rooms_bookings import NOW, make_room

OPEN_BEFORE = timedelta(minutes=10)
GRACE = timedelta(minutes=5)


@pytest.mark.parametrize(
    ("user_agent", "kind", "expected"),
    [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120", Kind.BROWSER, "desktop"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", Kind.BROWSER, "mobile"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari", Kind.BROWSER, "mobile"),
        ("Mozilla/5.0 (Linux; Android 14; SM-X710) Safari", Kind.BROWSER, "tablet"),
        ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)", Kind.BROWSER, "tablet"),
        ("", Kind.BROWSER, "unknown"),
        ("Polycom/6.4", Kind.SIP, "room-system"),
        ("obs-studio", Kind.WHIP, "encoder"),
        ("", Kind.RECORDER, "system"),
    ],
)
def test_device_class(user_agent: str, kind: Kind, expected: str) -> None:
    assert device_class(user_agent, kind) == expected


async def test_meeting_and_attendance_lifecycle(db: Database) -> None:
    room = await make_room(db)
    async with db.session() as session:
        site = Site(account_id=room.account_id, name="Shanghai", created_at=NOW)
        session.add(site)
        await session.flush()
        endpoint = Endpoint(
            account_id=room.account_id,
            site_id=site.id,
            sip_username="ep-1",
            sip_secret="s3cret",
            display_name="Room kit",
            created_at=NOW,
        )
        session.add(endpoint)
        await session.commit()
    assert await room_by_number(db, room.meeting_number) is not None
    assert await room_by_number(db, "000") is None
    found = await endpoint_by_username(db, "ep-1")
    assert found is not None and found[1].id == site.id
    assert await endpoint_by_username(db, "nobody") is None

    meeting = await start_meeting(db, room_id=room.id, now=NOW)
    assert meeting.account_id == room.account_id and meeting.ended_at is None
    sip = await record_join(
        db,
        meeting_id=meeting.id,
        participant_id="p-sip",
        display_name="Room kit",
        kind="sip",
        now=NOW,
        user_agent="Polycom",
        endpoint_id=endpoint.id,
    )
    assert (sip.site_id, sip.device_class) == (site.id, "room-system")
    await record_join(
        db, meeting_id=meeting.id, participant_id="p-web", display_name="李四", kind=Kind.BROWSER, now=NOW
    )
    left = await record_leave(
        db, meeting_id=meeting.id, participant_id="p-web", reason="left", now=NOW + timedelta(minutes=3)
    )
    assert left is not None and left.left_at == NOW + timedelta(minutes=3)
    assert (
        await record_leave(db, meeting_id=meeting.id, participant_id="p-web", reason="left", now=NOW) is None
    )
    ended = await end_meeting(db, meeting.id, reason="time_limit", now=NOW + timedelta(minutes=10))
    again = await end_meeting(db, meeting.id, reason="ended_by_host", now=NOW + timedelta(minutes=20))
    assert (again.ended_at, again.end_reason) == (ended.ended_at, "time_limit")
    async with db.session() as session:
        rows = {a.participant_id: a for a in (await session.scalars(select(Attendance))).all()}
    assert rows["p-sip"].leave_reason == "meeting_ended" and rows["p-sip"].left_at == NOW + timedelta(
        minutes=10
    )
    assert rows["p-web"].leave_reason == "left"

    with pytest.raises(InvalidInput):
        await record_join(
            db, meeting_id=meeting.id, participant_id="x", display_name="x", kind="robot", now=NOW
        )
    with pytest.raises(NotFound):
        await record_join(
            db, meeting_id=999_999, participant_id="x", display_name="x", kind="browser", now=NOW
        )
    with pytest.raises(NotFound):
        await start_meeting(db, room_id=999_999, now=NOW)


async def test_admission_finds_the_booked_window_and_overrides(db: Database) -> None:
    room = await make_room(db)
    start = datetime(2026, 3, 16, 9, 0)
    booking = await create_booking(
        db,
        account_id=None,
        draft=BookingDraft(
            room.id,
            "b",
            Schedule(start, start + timedelta(hours=1), "UTC"),
            capacity=2,
            passcode="4321",
            lobby=True,
        ),
        now=NOW,
        settings=RoomsSettings(),
    )
    begins = datetime(2026, 3, 16, 9, 0, tzinfo=NOW.tzinfo)
    early = await admission(
        db, room, now=begins - timedelta(minutes=11), open_before=OPEN_BEFORE, grace=GRACE
    )
    assert early.booking is None and early.window is None and early.terms.capacity == room.capacity
    inside = await admission(
        db, room, now=begins - timedelta(minutes=10), open_before=OPEN_BEFORE, grace=GRACE
    )
    assert inside.booking is not None and inside.booking.id == booking.id
    assert inside.window is not None and inside.window.closes_at == begins + timedelta(hours=1) + GRACE
    assert (inside.terms.capacity, inside.terms.passcode, inside.terms.lobby) == (2, "4321", True)
    late = await admission(
        db, room, now=begins + timedelta(hours=1, minutes=5), open_before=OPEN_BEFORE, grace=GRACE
    )
    assert late.booking is None
