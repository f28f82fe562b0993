"""The leader's reaper: a worker that died while the others ran on has its meetings closed at its last
heartbeat with worker_lost and an outage recorded; a live worker's meeting is never touched (S6, part)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from rooms.billing.models import Outage
from rooms.database import Database
from rooms.models import Account, Attendance, Meeting, Room, Worker
from rooms.workers import WORKER_LOST, reap_dead_runs

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
STALE = timedelta(seconds=3)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'reaper.db'}")
    await database.upgrade()
    try:
        yield database
    finally:
        await database.close()


async def test_a_lost_workers_meetings_close_at_its_last_heartbeat(db: Database) -> None:
    async with db.session() as session:
        account = Account(name="Acme", created_at=T0)
        session.add(account)
        await session.flush()
        rooms = [
            Room(
                account_id=account.id, name=f"R{i}", meeting_number=f"90000000{i}", capacity=5, created_at=T0
            )
            for i in range(2)
        ]
        session.add_all(rooms)
        lost = Worker(name="w1", started_at=T0, beat_at=T0 + timedelta(seconds=10))
        alive = Worker(name="w2", started_at=T0, beat_at=T0 + timedelta(seconds=29))
        session.add_all([lost, alive])
        await session.flush()
        meetings = [
            Meeting(account_id=account.id, room_id=rooms[0].id, started_at=T0, worker_id=lost.id),
            Meeting(account_id=account.id, room_id=rooms[1].id, started_at=T0, worker_id=alive.id),
        ]
        session.add_all(meetings)
        await session.flush()
        for meeting in meetings:
            session.add(
                Attendance(
                    account_id=account.id, meeting_id=meeting.id, participant_id=f"p{meeting.id}",
                    display_name="Guest", kind="browser", device_class="desktop",
                    joined_at=T0 + timedelta(seconds=2),
                )
            )  # fmt: skip
        await session.commit()
        lost_id, lost_meeting, live_meeting = lost.id, meetings[0].id, meetings[1].id

    now = T0 + timedelta(seconds=30)
    closed, outages = await reap_dead_runs(db, now=now, stale_after=STALE)
    assert [(c.meeting_id, c.at, c.run_id) for c in closed] == [
        (lost_meeting, T0 + timedelta(seconds=10), lost_id)
    ]
    assert len(outages) == 1 and outages[0].start == T0 + timedelta(seconds=10) and outages[0].end == now

    async with db.session() as session:
        ended = await session.get(Meeting, lost_meeting)
        running = await session.get(Meeting, live_meeting)
        stays = {a.meeting_id: a for a in (await session.scalars(select(Attendance))).all()}
        recorded = (await session.scalars(select(Outage))).all()
    assert ended is not None and ended.end_reason == WORKER_LOST
    assert ended.ended_at is not None and ended.ended_at.replace(tzinfo=UTC) == T0 + timedelta(seconds=10)
    assert stays[lost_meeting].leave_reason == WORKER_LOST
    assert running is not None and running.ended_at is None and stays[live_meeting].left_at is None
    assert [o.cause for o in recorded] == [WORKER_LOST]

    # Idempotent: the leader runs it every interval, and a second leader after a failover too.
    assert await reap_dead_runs(db, now=now + timedelta(seconds=1), stale_after=STALE) == ((), ())
