"""Meeting lease_epoch fencing (issue #20): the owner starts or adopts a meeting under its lease's epoch and
ends it only while the row carries that epoch; a former owner's writes are refused and its copy stops.

Unit tests on SQLite; one real test with two workers on PostgreSQL and Redis, the owner paused with SIGSTOP
past its lease and resumed."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from rooms import meetings
from rooms.database import Database
from rooms.errors import StaleLease
from rooms.models import Account, Attendance, Meeting, Room
from rooms.settings import RoomsSettings
from rooms.workers import MOVED, holds_lease, start_or_adopt
from tests.cluster.conftest import NUMBER, PASSCODE, Cluster, wait_until
from tests.signaling.live_server import Client
from yunhui.fencing import FencedMeetingStore

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'fencing.db'}")
    await database.upgrade()
    try:
        yield database
    finally:
        await database.close()


async def _room(db: Database) -> int:
    async with db.session() as session:
        account = Account(name="Acme", created_at=T0)
        session.add(account)
        await session.flush()
        room = Room(account_id=account.id, name="R", meeting_number="900000001", capacity=5, created_at=T0)
        session.add(room)
        await session.commit()
        return room.id


async def _meeting(db: Database, meeting_id: int) -> Meeting:
    async with db.session() as session:
        found = await session.get(Meeting, meeting_id)
    assert found is not None
    return found


async def test_a_moved_meeting_is_adopted_and_its_former_owner_cannot_end_it(db: Database) -> None:
    room_id = await _room(db)
    first = await start_or_adopt(db, room_id=room_id, epoch=7, now=T0)
    assert not first.adopted and (await _meeting(db, first.meeting_id)).lease_epoch == 7
    await meetings.record_join(
        db, meeting_id=first.meeting_id, participant_id="p1", display_name="Ann", kind="browser", now=T0
    )

    # Another worker takes the room over (a drain, a lost lease): the same meeting, a new epoch, and the
    # attendance left open in the former copy closed.
    later = T0 + timedelta(minutes=5)
    second = await start_or_adopt(db, room_id=room_id, epoch=9, now=later)
    assert second.adopted and second.meeting_id == first.meeting_id
    assert (await _meeting(db, first.meeting_id)).lease_epoch == 9
    async with db.session() as session:
        attendance = (await session.scalars(select(Attendance))).one()
    assert (attendance.left_at, attendance.leave_reason) == (later, MOVED)

    # The former owner's writes are refused; the new owner's go through.
    assert not await holds_lease(db, first.meeting_id, 7)
    assert await holds_lease(db, first.meeting_id, 9)
    with pytest.raises(StaleLease):
        await meetings.end_meeting(db, first.meeting_id, reason="empty", now=later, lease_epoch=7)
    assert (await _meeting(db, first.meeting_id)).ended_at is None
    await meetings.end_meeting(db, first.meeting_id, reason="empty", now=later, lease_epoch=9)
    ended = await _meeting(db, first.meeting_id)
    assert (ended.ended_at, ended.end_reason) == (later, "empty")
    assert not await holds_lease(db, first.meeting_id, 9)  # ended: nothing more to hold

    # The room's next meeting is a new one, not the ended one adopted.
    third = await start_or_adopt(db, room_id=room_id, epoch=11, now=later)
    assert not third.adopted and third.meeting_id != first.meeting_id


async def test_the_store_stops_a_stale_copy_at_its_next_join(db: Database) -> None:
    from rooms.policy import Terms
    from signaling.ports import RoomView

    room_id = await _room(db)
    stale: list[int] = []
    old, new = FencedMeetingStore(db, RoomsSettings()), FencedMeetingStore(db, RoomsSettings())
    old.epoch_of, new.epoch_of = (lambda room: 3), (lambda room: 4)
    old.on_stale = stale.append
    view = RoomView(room_id, 1, "900000001", "R", Terms(capacity=5, passcode=None, lobby=False))
    meeting_id = await old.start_meeting(view, now=T0)
    assert await new.start_meeting(view, now=T0) == meeting_id and new.adopted == [meeting_id]

    with pytest.raises(StaleLease):
        await old.record_join(
            meeting_id=meeting_id, participant_id="p2", display_name="Late", kind="browser", now=T0,
            user_agent="",
        )  # fmt: skip
    assert stale == [meeting_id]
    await old.end_meeting(meeting_id, reason="empty", now=T0)  # refused quietly: it runs elsewhere
    assert (await _meeting(db, meeting_id)).ended_at is None
    await new.end_meeting(meeting_id, reason="empty", now=T0)
    assert (await _meeting(db, meeting_id)).ended_at == T0


@pytest.mark.postgres
@pytest.mark.timeout(150)
async def test_a_paused_owner_resumes_to_find_its_meeting_moved(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    workers = dict(zip((1, 2), await asyncio.gather(cluster.start(1), cluster.start(2)), strict=True))
    async with http.post(f"{workers[1].url}/api/v1/meetings/locate", json={"meeting_number": NUMBER}) as r:
        owner_id = int((await r.json())["worker"])
    owner, other = workers[owner_id], workers[3 - owner_id]
    auth = {"meeting_number": NUMBER, "passcode": PASSCODE}
    ann, bob = Client(), Client()
    database = await Database.connect(cluster.database_url)
    redis = cluster.redis.client()
    try:
        await ann.connect(owner.url, {**auth, "display_name": "Ann"})
        await ann.expect("joined")
        async with database.session() as session:
            before = (await session.scalars(select(Meeting))).one()

        owner.process.send_signal(signal.SIGSTOP)
        try:

            async def gone() -> bool:
                return not await redis.exists(f"yh:worker:{owner_id}")

            await wait_until(gone, within=20)
            async with http.post(f"{other.url}/api/v1/meetings/locate", json={"meeting_number": NUMBER}) as r:
                assert (await r.json())["worker"] == str(other.worker_id)
            await bob.connect(other.url, {**auth, "display_name": "Bob"})
            await bob.expect("joined")
        finally:
            owner.process.send_signal(signal.SIGCONT)

        # Resumed, the former owner finds its lease taken and stops its copy: Ann is sent to locate again.
        async with asyncio.timeout(30):
            while (event := await ann.events.get())[0] != "meeting_moved":
                pass
        assert event[1] == {"worker": None, "base": None}
        async with database.session() as session:
            after = (await session.scalars(select(Meeting))).one()
        assert after.id == before.id and after.ended_at is None  # not ended by the stale owner
        assert after.lease_epoch is not None and after.lease_epoch != before.lease_epoch
        assert any("held by another worker" in line for line in owner.output)
    finally:
        await redis.aclose()
        await database.close()
        await ann.close()
        await bob.close()
