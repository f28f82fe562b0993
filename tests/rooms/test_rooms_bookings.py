from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from rooms.bookings import (
    BookingDraft,
    cancel_booking,
    cancel_occurrence,
    create_booking,
    list_bookings,
    occurrences,
    room_occurrences,
    update_booking,
    update_occurrence,
)
from rooms.database import Database
from rooms.errors import Conflict, InvalidInput, NotFound
from rooms.models import Account, Booking, Room
from rooms.recurrence import Schedule
from rooms.settings import RoomsSettings

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SETTINGS = RoomsSettings()
BERLIN = "Europe/Berlin"


async def make_room(db: Database, number: str = "123456789") -> Room:
    async with db.session() as session:
        account = Account(name=f"acct {number}", created_at=NOW)
        session.add(account)
        await session.flush()
        room = Room(account_id=account.id, name="Board", meeting_number=number, capacity=10, created_at=NOW)
        session.add(room)
        await session.commit()
    return room


def single(room: Room, day: int, hour: int, minutes: int = 60, title: str = "single") -> BookingDraft:
    start = datetime(2026, 3, day, hour, 0)
    return BookingDraft(room.id, title, Schedule(start, start + timedelta(minutes=minutes), BERLIN))


def series(room: Room, rrule: str = "FREQ=WEEKLY;COUNT=6", day: int = 16) -> BookingDraft:
    start = datetime(2026, 3, day, 9, 0)
    return BookingDraft(room.id, "weekly", Schedule(start, start + timedelta(hours=1), BERLIN, rrule))


async def count_bookings(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Booking)) or 0)


async def test_single_vs_series_conflict_names_the_booking(db: Database) -> None:
    room = await make_room(db)
    weekly = await create_booking(db, account_id=None, draft=series(room), now=NOW, settings=SETTINGS)
    assert weekly.sequence == 0 and weekly.uid.endswith("@yunhui")
    with pytest.raises(Conflict) as info:
        # 2026-04-13 09:30 Berlin: inside the fifth weekly occurrence, after the DST change.
        await create_booking(
            db,
            account_id=room.account_id,
            draft=BookingDraft(
                room.id, "x", Schedule(datetime(2026, 4, 13, 9, 30), datetime(2026, 4, 13, 10, 30), BERLIN)
            ),
            now=NOW,
            settings=SETTINGS,
        )
    assert info.value.booking_id == weekly.id
    assert await count_bookings(db) == 1
    # Adjacent is fine.
    await create_booking(db, account_id=None, draft=single(room, 16, 10), now=NOW, settings=SETTINGS)


async def test_series_vs_series(db: Database) -> None:
    room = await make_room(db)
    await create_booking(db, account_id=None, draft=series(room), now=NOW, settings=SETTINGS)
    with pytest.raises(Conflict):
        await create_booking(
            db, account_id=None, draft=series(room, "FREQ=DAILY;COUNT=30", day=17), now=NOW, settings=SETTINGS
        )
    await create_booking(
        db, account_id=None, draft=series(room, "FREQ=WEEKLY;COUNT=30", day=17), now=NOW, settings=SETTINGS
    )
    other = await make_room(db, "987654321")
    await create_booking(db, account_id=None, draft=series(other), now=NOW, settings=SETTINGS)


async def test_account_isolation(db: Database) -> None:
    room = await make_room(db)
    stranger = await make_room(db, "555555555")
    with pytest.raises(NotFound):
        await create_booking(
            db, account_id=stranger.account_id, draft=single(room, 16, 9), now=NOW, settings=SETTINGS
        )
    booking = await create_booking(
        db, account_id=room.account_id, draft=single(room, 16, 9), now=NOW, settings=SETTINGS
    )
    with pytest.raises(NotFound):
        await cancel_booking(db, booking.id, account_id=stranger.account_id, now=NOW)
    assert await list_bookings(db, account_id=stranger.account_id) == []


async def test_edit_and_cancel_one_occurrence(db: Database) -> None:
    room = await make_room(db)
    weekly = await create_booking(db, account_id=None, draft=series(room), now=NOW, settings=SETTINGS)
    # Move the 23 March occurrence to 14:00.
    child = await update_occurrence(
        db,
        weekly.id,
        datetime(2026, 3, 23, 9, 0),
        account_id=room.account_id,
        changes={"start_local": datetime(2026, 3, 23, 14, 0), "end_local": datetime(2026, 3, 23, 15, 0)},
        now=NOW,
        settings=SETTINGS,
    )
    assert child.parent_id == weekly.id and child.uid == weekly.uid
    # The old slot is free now; the new one is taken.
    await create_booking(db, account_id=None, draft=single(room, 23, 9), now=NOW, settings=SETTINGS)
    with pytest.raises(Conflict) as info:
        await create_booking(db, account_id=None, draft=single(room, 23, 14), now=NOW, settings=SETTINGS)
    assert info.value.booking_id == child.id
    parent = await cancel_occurrence(db, weekly.id, datetime(2026, 3, 30, 9, 0), account_id=None, now=NOW)
    assert parent.sequence == 2
    assert [o.recurrence_id.day for o in occurrences(parent)] == [16, 6, 13, 20]
    with pytest.raises(NotFound):
        await cancel_occurrence(db, weekly.id, datetime(2026, 3, 30, 9, 0), account_id=None, now=NOW)
    found = await room_occurrences(db, room.id, start=NOW, end=NOW + timedelta(days=60))
    assert len(found) == 4 + 1 + 1
    # Cancelling the series cancels the detached occurrence too.
    await cancel_booking(db, weekly.id, account_id=None, now=NOW)
    assert [b.id for b in await list_bookings(db, account_id=None)] != [weekly.id, child.id]
    assert {b.id for b in await list_bookings(db, account_id=None)}.isdisjoint({weekly.id, child.id})


async def test_update_whole_series_checks_overlaps_and_bumps_sequence(db: Database) -> None:
    room = await make_room(db)
    weekly = await create_booking(db, account_id=None, draft=series(room), now=NOW, settings=SETTINGS)
    blocker = await create_booking(db, account_id=None, draft=single(room, 17, 9), now=NOW, settings=SETTINGS)
    with pytest.raises(Conflict) as info:
        await update_booking(
            db,
            weekly.id,
            account_id=None,
            changes={"rrule": "FREQ=DAILY;COUNT=5"},
            now=NOW,
            settings=SETTINGS,
        )
    assert info.value.booking_id == blocker.id
    updated = await update_booking(
        db, weekly.id, account_id=None, changes={"title": "renamed"}, now=NOW, settings=SETTINGS
    )
    assert updated.sequence == 1 and updated.title == "renamed"
    with pytest.raises(InvalidInput) as bad:
        await update_booking(
            db, weekly.id, account_id=None, changes={"time_zone": "Nowhere/Land"}, now=NOW, settings=SETTINGS
        )
    assert bad.value.field == "time_zone"


async def test_concurrent_creates_for_one_slot_exactly_one_wins(db: Database) -> None:
    room = await make_room(db)

    async def attempt(i: int) -> int | Exception:
        draft = BookingDraft(
            room.id, f"t{i}", Schedule(datetime(2026, 3, 16, 9, i), datetime(2026, 3, 16, 10), BERLIN)
        )
        try:
            return (await create_booking(db, account_id=None, draft=draft, now=NOW, settings=SETTINGS)).id
        except Conflict as exc:
            return exc

    results = await asyncio.gather(*(attempt(i) for i in range(20)))
    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1
    assert all(isinstance(r, Conflict) and r.booking_id == winners[0] for r in results if r is not winners[0])
    assert await count_bookings(db) == 1


async def test_concurrent_edits_of_one_booking_all_apply(db: Database) -> None:
    room = await make_room(db)
    weekly = await create_booking(
        db, account_id=None, draft=series(room, "FREQ=DAILY;COUNT=20"), now=NOW, settings=SETTINGS
    )
    days = range(16, 26)
    await asyncio.gather(
        *(
            cancel_occurrence(db, weekly.id, datetime(2026, 3, day, 9, 0), account_id=None, now=NOW)
            for day in days
        )
    )
    async with db.session() as session:
        final = await session.get(Booking, weekly.id)
    assert final is not None and final.sequence == len(days)
    assert [o.recurrence_id.day for o in occurrences(final)][:3] == [26, 27, 28]
