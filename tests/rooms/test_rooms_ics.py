from __future__ import annotations

from datetime import UTC, datetime, timedelta

import recurring_ical_events
from icalendar import Calendar

from rooms.bookings import (
    BookingDraft,
    cancel_booking,
    children,
    create_booking,
    get_booking,
    occurrences,
    update_occurrence,
)
from rooms.database import Database
from rooms.ics import feed, invitation
from rooms.recurrence import Schedule
from rooms.settings import RoomsSettings

from .test_rooms_bookings import NOW, make_room

SETTINGS = RoomsSettings()


async def test_invitation_round_trips_through_recurring_ical_events(db: Database) -> None:
    room = await make_room(db)
    draft = BookingDraft(
        room.id,
        "周会",
        Schedule(
            datetime(2026, 3, 16, 9),
            datetime(2026, 3, 16, 10),
            "Europe/Berlin",
            "FREQ=WEEKLY;COUNT=6",
            (datetime(2026, 3, 30, 9),),
        ),
        invitees=({"email": "a@example.com", "name": "A"},),
    )
    booking = await create_booking(db, account_id=None, draft=draft, now=NOW, settings=SETTINGS)
    moved = await update_occurrence(
        db,
        booking.id,
        datetime(2026, 4, 6, 9),
        account_id=None,
        changes={"start_local": datetime(2026, 4, 6, 15), "end_local": datetime(2026, 4, 6, 16)},
        now=NOW,
        settings=SETTINGS,
    )
    parent = await get_booking(db, booking.id, account_id=None)
    text = invitation(parent, room, await children(db, parent), now=NOW)
    cal = Calendar.from_ical(text)
    assert cal["method"] == "REQUEST"
    assert [c.name for c in cal.subcomponents].count("VTIMEZONE") == 1
    events = [c for c in cal.walk("VEVENT")]
    assert {str(e["uid"]) for e in events} == {booking.uid}
    assert all(int(str(e["sequence"])) == parent.sequence == 1 for e in events[:1])
    expanded = recurring_ical_events.of(cal).between(NOW, NOW + timedelta(days=90))
    starts = sorted(e["DTSTART"].dt.astimezone(UTC) for e in expanded)
    ours = sorted([o.start for o in occurrences(parent)] + [o.start for o in occurrences(moved)])
    assert starts == ours
    assert datetime(2026, 4, 6, 13, tzinfo=UTC) in starts  # 15:00 Berlin summer time

    cancelled = await cancel_booking(db, booking.id, account_id=None, now=NOW)
    cancel_cal = Calendar.from_ical(invitation(cancelled, room, now=NOW))
    assert cancel_cal["method"] == "CANCEL"
    event = next(iter(cancel_cal.walk("VEVENT")))
    assert event["status"] == "CANCELLED" and int(str(event["sequence"])) == 2


async def test_room_feed(db: Database) -> None:
    room = await make_room(db)
    one = await create_booking(
        db,
        account_id=None,
        draft=BookingDraft(
            room.id, "a", Schedule(datetime(2026, 3, 16, 9), datetime(2026, 3, 16, 10), "Asia/Shanghai")
        ),
        now=NOW,
        settings=SETTINGS,
    )
    two = await create_booking(
        db,
        account_id=None,
        draft=BookingDraft(
            room.id, "b", Schedule(datetime(2026, 3, 16, 9), datetime(2026, 3, 16, 10), "UTC")
        ),
        now=NOW,
        settings=SETTINGS,
    )
    cal = Calendar.from_ical(feed(room, [one, two], now=NOW))
    assert len(list(cal.walk("VTIMEZONE"))) == 2
    assert {str(e["uid"]) for e in cal.walk("VEVENT")} == {one.uid, two.uid}
