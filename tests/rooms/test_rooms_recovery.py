"""Crash recovery (issue #14): the pure rules of rooms.workers, then start_worker on a real database."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from rooms.billing.models import Outage
from rooms.bookings import create_booking
from rooms.database import Database
from rooms.meetings import end_meeting, record_join, record_leave, start_meeting
from rooms.models import Attendance, Booking, Meeting, Worker
from rooms.workers import (
    SERVER_CRASH,
    Closure,
    OpenMeeting,
    Run,
    beat,
    crash_outages,
    is_dead,
    plan_recovery,
    start_worker,
    stop_worker,
)

from .test_rooms_bookings import NOW, SETTINGS, make_room, single

STALE = timedelta(minutes=3)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# -- pure rules ---------------------------------------------------------------------------------------------


def test_an_earlier_run_of_the_same_slot_is_dead_even_with_a_fresh_heartbeat() -> None:
    # systemd restarts a killed process within seconds: its heartbeat still looks fresh.
    run = Run(1, "main", NOW, NOW + minutes(10))
    assert is_dead(run, name="main", now=NOW + minutes(10.1), stale_after=STALE)


def test_a_run_of_another_slot_is_dead_only_when_stale_or_stopped() -> None:
    now = NOW + minutes(10)
    assert not is_dead(Run(1, "w1", NOW, now - minutes(1)), name="w2", now=now, stale_after=STALE)
    assert is_dead(Run(1, "w1", NOW, now - minutes(4)), name="w2", now=now, stale_after=STALE)
    assert is_dead(Run(1, "w1", NOW, now, stopped_at=now), name="w2", now=now, stale_after=STALE)
    assert is_dead(None, name="w2", now=now, stale_after=STALE)


def test_meetings_close_at_the_last_sign_of_life_of_their_run_never_at_the_restart() -> None:
    now = NOW + minutes(60)
    runs = [Run(1, "main", NOW, NOW + minutes(5)), Run(2, "w2", NOW, now - minutes(1))]
    meetings = [
        OpenMeeting(10, 7, 1, NOW + minutes(1), NOW + minutes(2)),
        # A join after the last heartbeat proves the run was alive then: both of its meetings close there.
        OpenMeeting(11, 8, 1, NOW + minutes(1), NOW + minutes(5.5)),
        OpenMeeting(12, 7, 2, NOW + minutes(1), NOW + minutes(3)),  # a live worker's: left alone
        # Not stamped yet, and started while the live w2 was up too: it may be w2's, so it stays open.
        OpenMeeting(13, 7, None, NOW + minutes(6), NOW + minutes(6)),
    ]
    closures = plan_recovery(meetings, runs, name="main", now=now, stale_after=STALE)
    assert closures == [Closure(10, 7, NOW + minutes(5.5), 1), Closure(11, 8, NOW + minutes(5.5), 1)]
    outages = crash_outages(closures, now=now)
    assert [(o.account_id, o.start, o.end, o.meeting_ids) for o in outages] == [
        (7, NOW + minutes(5.5), now, (10,)),
        (8, NOW + minutes(5.5), now, (11,)),
    ]


def test_a_meeting_started_after_the_last_heartbeat_belongs_to_the_run_that_was_up() -> None:
    now = NOW + minutes(60)
    runs = [Run(1, "main", NOW - minutes(90), NOW - minutes(80)), Run(2, "main", NOW, NOW + minutes(5))]
    meetings = [
        OpenMeeting(10, 7, None, NOW + minutes(6), NOW + minutes(7)),
        OpenMeeting(11, 7, 2, NOW + minutes(1), NOW + minutes(2)),
    ]
    closures = plan_recovery(meetings, runs, name="main", now=now, stale_after=STALE)
    assert closures == [Closure(10, 7, NOW + minutes(7), 2), Closure(11, 7, NOW + minutes(7), 2)]
    assert [(o.start, o.meeting_ids) for o in crash_outages(closures, now=now)] == [
        (NOW + minutes(7), (10, 11))
    ]


def test_without_any_heartbeat_a_meeting_closes_at_its_own_last_activity_and_records_no_outage() -> None:
    now = NOW + timedelta(days=40)
    meetings = [OpenMeeting(1, 7, None, NOW, NOW + minutes(3)), OpenMeeting(2, 7, None, NOW, NOW)]
    closures = plan_recovery(meetings, [], name="main", now=now, stale_after=STALE)
    assert closures == [Closure(1, 7, NOW + minutes(3), None), Closure(2, 7, NOW, None)]
    assert crash_outages(closures, now=now) == []


# -- on a database ------------------------------------------------------------------------------------------


async def _meeting_with_guests(db: Database, worker_id: int | None) -> tuple[Meeting, int]:
    room = await make_room(db)
    booking = await create_booking(db, account_id=None, draft=single(room, 2, 13), now=NOW, settings=SETTINGS)
    meeting = await start_meeting(db, room_id=room.id, now=NOW + minutes(1), booking_id=booking.id)
    for i in range(2):
        await record_join(
            db, meeting_id=meeting.id, participant_id=f"g{i}", display_name="Guest", kind="browser",
            now=NOW + minutes(2 + i),
        )  # fmt: skip
    if worker_id is not None:
        await beat(db, worker_id, now=NOW + minutes(5), meeting_ids=[meeting.id])
    return meeting, booking.id


async def test_restart_closes_the_crashed_meeting_at_the_last_heartbeat(db: Database) -> None:
    first = await start_worker(db, name="main", now=NOW, stale_after=STALE, host="h", pid=1)
    assert first.closed == ()
    meeting, booking_id = await _meeting_with_guests(db, first.worker_id)
    # kill -9: no stop_worker, no end_meeting. The restart comes an hour later.
    restart = NOW + minutes(65)
    second = await start_worker(db, name="main", now=restart, stale_after=STALE, host="h", pid=2)

    heartbeat = NOW + minutes(5)
    assert [(c.meeting_id, c.at, c.run_id) for c in second.closed] == [
        (meeting.id, heartbeat, first.worker_id)
    ]
    async with db.session() as session:
        stored = await session.get(Meeting, meeting.id)
        assert stored is not None
        assert (stored.ended_at, stored.end_reason, stored.worker_id) == (
            heartbeat,
            SERVER_CRASH,
            first.worker_id,
        )
        stays = (await session.scalars(select(Attendance).order_by(Attendance.id))).all()
        assert [(a.left_at, a.leave_reason) for a in stays] == [(heartbeat, SERVER_CRASH)] * 2
        outages = (await session.scalars(select(Outage))).all()
        assert [(o.account_id, o.start, o.end, o.cause, o.source) for o in outages] == [
            (stored.account_id, heartbeat, restart, SERVER_CRASH, "monitor")
        ]
        assert str(meeting.id) in outages[0].note
        booking = await session.get(Booking, booking_id)
        assert booking is not None and booking.cancelled_at is None
        workers = (await session.scalars(select(Worker).order_by(Worker.id))).all()
        assert [(w.id, w.pid, w.stopped_at) for w in workers] == [
            (first.worker_id, 1, None),
            (second.worker_id, 2, None),
        ]

    # A second start (after this run crashed too, or stopped) closes nothing more and records nothing.
    await stop_worker(db, second.worker_id, now=restart + minutes(1))
    third = await start_worker(db, name="main", now=restart + minutes(2), stale_after=STALE)
    assert third.closed == () and third.outages == ()
    async with db.session() as session:
        assert len((await session.scalars(select(Outage))).all()) == 1


async def test_an_unstamped_meeting_of_an_old_run_and_a_database_without_heartbeats(db: Database) -> None:
    # The database predates heartbeats: the meeting closes at its last join or leave.
    meeting, _ = await _meeting_with_guests(db, worker_id=None)
    await record_leave(db, meeting_id=meeting.id, participant_id="g0", reason="left", now=NOW + minutes(4))
    recovery = await start_worker(db, name="main", now=NOW + timedelta(days=30), stale_after=STALE)
    assert [(c.meeting_id, c.at, c.run_id) for c in recovery.closed] == [(meeting.id, NOW + minutes(4), None)]
    assert recovery.outages == ()
    async with db.session() as session:
        stays = (await session.scalars(select(Attendance).order_by(Attendance.id))).all()
        assert [(a.left_at, a.leave_reason) for a in stays] == [
            (NOW + minutes(4), "left"),
            (NOW + minutes(4), SERVER_CRASH),
        ]
        assert not (await session.scalars(select(Outage))).all()


async def test_ended_meetings_and_a_live_sibling_workers_meetings_are_left_alone(db: Database) -> None:
    sibling = await start_worker(db, name="w1", now=NOW, stale_after=STALE)
    meeting, _ = await _meeting_with_guests(db, sibling.worker_id)
    room = await make_room(db, "987654321")
    done = await start_meeting(db, room_id=room.id, now=NOW)
    await end_meeting(db, done.id, reason="host_ended", now=NOW + minutes(3))
    # Another slot starts while w1 still beats: nothing of w1's is touched.
    recovery = await start_worker(db, name="w2", now=NOW + minutes(6), stale_after=STALE)
    assert recovery.closed == ()
    async with db.session() as session:
        stored = await session.get(Meeting, meeting.id)
        assert stored is not None and stored.ended_at is None
        ended = await session.get(Meeting, done.id)
        assert ended is not None and (ended.ended_at, ended.end_reason) == (NOW + minutes(3), "host_ended")
    # w1 stops beating: once stale, the next start of any slot closes its meeting at its last heartbeat.
    later = await start_worker(db, name="w2", now=NOW + minutes(20), stale_after=STALE)
    assert [(c.meeting_id, c.at) for c in later.closed] == [(meeting.id, NOW + minutes(5))]


async def test_the_heartbeat_claims_only_open_unclaimed_meetings(db: Database) -> None:
    first = await start_worker(db, name="main", now=NOW, stale_after=STALE)
    meeting, _ = await _meeting_with_guests(db, worker_id=None)
    other = await start_worker(db, name="w9", now=NOW, stale_after=STALE)
    room = await make_room(db, "555555555")
    owned = await start_meeting(db, room_id=room.id, now=NOW, worker_id=other.worker_id)
    await beat(db, first.worker_id, now=NOW + minutes(1), meeting_ids=[meeting.id, owned.id, meeting.id])
    async with db.session() as session:
        assert (await session.get(Meeting, meeting.id)).worker_id == first.worker_id  # type: ignore[union-attr]
        assert (await session.get(Meeting, owned.id)).worker_id == other.worker_id  # type: ignore[union-attr]
        worker = await session.get(Worker, first.worker_id)
        assert worker is not None and worker.beat_at == NOW + minutes(1)
