"""Property: whatever bookings are attempted, the store never holds two overlapping occurrences of a room."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooms.bookings import BookingDraft, create_booking, list_bookings, occurrences
from rooms.database import Database
from rooms.errors import Conflict, InvalidInput
from rooms.models import Account, Room
from rooms.recurrence import Occurrence, Schedule
from rooms.settings import RoomsSettings

NOW = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
SETTINGS = RoomsSettings()
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Shanghai", "UTC"]

schedules = st.builds(
    lambda day, quarter, minutes, zone, rule: Schedule(
        datetime(2026, 3, 2) + timedelta(days=day, minutes=15 * quarter),
        datetime(2026, 3, 2) + timedelta(days=day, minutes=15 * quarter + minutes),
        zone,
        rule,
    ),
    day=st.integers(0, 40),
    quarter=st.integers(0, 95),
    minutes=st.sampled_from([15, 30, 60, 90, 180]),
    zone=st.sampled_from(ZONES),
    rule=st.one_of(
        st.none(),
        st.builds(lambda n: f"FREQ=DAILY;COUNT={n}", st.integers(1, 10)),
        st.builds(lambda n: f"FREQ=WEEKLY;COUNT={n}", st.integers(1, 10)),
        st.just("FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6"),
    ),
)


def overlapping(a: list[Occurrence], b: list[Occurrence]) -> bool:
    return any(x.start < y.end and y.start < x.end for x in a for y in b)


def test_store_never_holds_overlapping_occurrences(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'prop.db'}"

    async def migrate() -> None:
        db = await Database.connect(url)
        await db.upgrade()
        await db.close()

    asyncio.run(migrate())

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(schedules, min_size=2, max_size=12))
    def check(attempts: list[Schedule]) -> None:
        asyncio.run(scenario(attempts))

    async def scenario(attempts: list[Schedule]) -> None:
        db = await Database.connect(url)
        try:
            async with db.session() as session:
                account = Account(name="p", created_at=NOW)
                session.add(account)
                await session.flush()
                room = Room(
                    account_id=account.id,
                    name="r",
                    meeting_number=str(100_000_000 + account.id),
                    capacity=5,
                    created_at=NOW,
                )
                session.add(room)
                await session.commit()
            accepted: list[list[Occurrence]] = []
            for schedule in attempts:
                try:
                    booking = await create_booking(
                        db,
                        account_id=None,
                        draft=BookingDraft(room.id, "b", schedule),
                        now=NOW,
                        settings=SETTINGS,
                    )
                except InvalidInput:
                    continue
                except Conflict:
                    # The store refused: a brute-force check must agree there was an overlap.
                    from rooms.bookings import limits
                    from rooms.recurrence import expand, validate

                    candidate = expand(validate(schedule, now=NOW, limits=limits(SETTINGS)))
                    assert any(overlapping(candidate, other) for other in accepted)
                    continue
                mine = occurrences(booking)
                assert not any(overlapping(mine, other) for other in accepted)
                accepted.append(mine)
            stored = [occurrences(b) for b in await list_bookings(db, account_id=account.id)]
            assert len(stored) == len(accepted)
            for i, first in enumerate(stored):
                for second in stored[i + 1 :]:
                    assert not overlapping(first, second)
        finally:
            await db.close()

    check()
