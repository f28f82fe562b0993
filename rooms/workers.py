"""Worker runs and their heartbeats, and closing what a crashed run left open (issue #14).

A run of a server process registers a `Worker` row at start-up and writes its heartbeat (`beat_at`) every
interval. A run that dies without a clean stop (kill -9, OOM, power cut) leaves its meetings and attendance
open; the next start closes them at the last instant the dead run is known to have been alive, with the reason
`server_crash`, and records the interruption as an Outage so that outage credits apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.audit.recorder import Actor, record
from rooms.billing.models import Outage
from rooms.database import Database
from rooms.meetings import start_meeting
from rooms.models import Attendance, Meeting, Worker

SERVER_CRASH = "server_crash"
# A worker of a cluster died while the others ran on; the leader closed its meetings (issue #20).
WORKER_LOST = "worker_lost"
# An attendance closed because its meeting moved to another worker (a drain, a lease taken over).
MOVED = "moved"
# A run of another slot is presumed dead after this many missed heartbeats.
MISSED_BEATS = 3


@dataclass(frozen=True)
class Run:
    """A Worker row as recovery sees it."""

    id: int
    name: str
    started_at: datetime
    beat_at: datetime
    stopped_at: datetime | None = None


@dataclass(frozen=True)
class OpenMeeting:
    """A meeting without an end, with the latest instant written for it (its start, a join or a leave)."""

    id: int
    account_id: int
    worker_id: int | None
    started_at: datetime
    last_activity: datetime


@dataclass(frozen=True)
class Closure:
    """How recovery closes one meeting: at `at`, owned by `run_id` (None: no heartbeat, an old database)."""

    meeting_id: int
    account_id: int
    at: datetime
    run_id: int | None


@dataclass(frozen=True)
class CrashOutage:
    """The interruption one dead run caused one account: from its last sign of life to the restart."""

    account_id: int
    start: datetime
    end: datetime
    meeting_ids: tuple[int, ...]


@dataclass(frozen=True)
class Recovery:
    """What a start-up did: this run's worker id, the meetings it closed and the outages it recorded."""

    worker_id: int
    closed: tuple[Closure, ...]
    outages: tuple[CrashOutage, ...]


def stale_after(interval: timedelta) -> timedelta:
    return interval * MISSED_BEATS


def owner_of(
    meeting: OpenMeeting, runs: Sequence[Run], *, name: str, now: datetime, stale_after: timedelta
) -> Run | None:
    """The run that hosted a meeting: the one recorded on it. A meeting started after its run's last
    heartbeat names none yet: then the runs that were up when it started are the candidates, a live one
    first (a live meeting must never be closed), else the latest to start. None: no run was up (an old
    database, from before heartbeats)."""
    if meeting.worker_id is not None:
        return next((r for r in runs if r.id == meeting.worker_id), None)
    up = [r for r in runs if r.started_at <= meeting.started_at <= (r.stopped_at or r.beat_at + stale_after)]
    alive = [r for r in up if not is_dead(r, name=name, now=now, stale_after=stale_after)]
    return max(alive or up, key=lambda r: (r.started_at, r.id), default=None)


def is_dead(run: Run | None, *, name: str, now: datetime, stale_after: timedelta) -> bool:
    """Whether a run can no longer host its meetings. A new run of the same slot proves the earlier one dead
    (systemd restarts a crashed process within seconds, long before its heartbeat would look stale)."""
    if run is None:
        return True  # no heartbeat was ever written for it: a database from before heartbeats, one process
    return run.name == name or run.stopped_at is not None or now - run.beat_at > stale_after


def plan_recovery(
    meetings: Iterable[OpenMeeting], runs: Sequence[Run], *, name: str, now: datetime, stale_after: timedelta
) -> list[Closure]:
    """The closures a new run of slot `name` makes at `now`. A dead run was alive at its last heartbeat and
    at every instant it wrote for any of its meetings, so all its meetings close at the latest of those; a
    meeting without a known run closes at its own last activity. Never at `now`, never after it."""
    dead: dict[int | None, list[OpenMeeting]] = {}
    owners: dict[int | None, Run | None] = {}
    for meeting in meetings:
        run = owner_of(meeting, runs, name=name, now=now, stale_after=stale_after)
        if is_dead(run, name=name, now=now, stale_after=stale_after):
            key = None if run is None else run.id
            owners[key] = run
            dead.setdefault(key, []).append(meeting)
    closures: list[Closure] = []
    for key, owned in dead.items():
        run = owners[key]
        if run is None:
            closures.extend(Closure(m.id, m.account_id, min(m.last_activity, now), None) for m in owned)
            continue
        at = min(max([run.beat_at, *(m.last_activity for m in owned)]), now)
        closures.extend(Closure(m.id, m.account_id, at, run.id) for m in owned)
    return sorted(closures, key=lambda c: c.meeting_id)


def crash_outages(closures: Iterable[Closure], *, now: datetime) -> list[CrashOutage]:
    """One outage per account and dead run, from the run's last sign of life to `now`. Meetings closed without
    a heartbeat record none: when that process died is unknown, and guessing would credit a whole quarter."""
    groups: dict[tuple[int, int], list[Closure]] = {}
    for closure in closures:
        if closure.run_id is not None:
            groups.setdefault((closure.account_id, closure.run_id), []).append(closure)
    outages = []
    for (account_id, _), group in sorted(groups.items()):
        start = min(c.at for c in group)
        if start < now:
            outages.append(CrashOutage(account_id, start, now, tuple(c.meeting_id for c in group)))
    return outages


async def start_worker(
    db: Database, *, name: str, now: datetime, stale_after: timedelta, host: str = "", pid: int = 0
) -> Recovery:
    """Register a new run of slot `name` and, in the same transaction, close every meeting a dead run left
    open and record its outages. Run it before accepting connections; a second start closes nothing more."""
    async with db.writer() as session:
        closures, outages = await _close_dead(session, name=name, now=now, stale_after=stale_after)
        worker = Worker(name=name, host=host[:255], pid=pid, started_at=now, beat_at=now)
        session.add(worker)
        await session.commit()
    return Recovery(worker.id, tuple(closures), tuple(outages))


async def reap_dead_runs(
    db: Database, *, now: datetime, stale_after: timedelta
) -> tuple[tuple[Closure, ...], tuple[CrashOutage, ...]]:
    """Close the meetings of runs that died while the others went on (a worker of a cluster, issue #20),
    as a start would, with the reason `worker_lost`. Idempotent; run it in one worker (the leader)."""
    async with db.writer() as session:
        # No slot is named: only a stopped run or one whose heartbeat is stale counts as dead.
        closures, outages = await _close_dead(
            session, name="", now=now, stale_after=stale_after, reason=WORKER_LOST
        )
        await session.commit()
    return tuple(closures), tuple(outages)


async def _close_dead(
    session: AsyncSession, *, name: str, now: datetime, stale_after: timedelta, reason: str = SERVER_CRASH
) -> tuple[list[Closure], list[CrashOutage]]:
    rows = (await session.scalars(select(Worker))).all()
    runs = [Run(w.id, w.name, w.started_at, w.beat_at, w.stopped_at) for w in rows]
    # FOR UPDATE: two workers starting at once on PostgreSQL must not both close (and credit) a meeting.
    open_rows = (
        await session.scalars(select(Meeting).where(Meeting.ended_at.is_(None)).with_for_update())
    ).all()
    activity = await _last_activity(session, [m.id for m in open_rows])
    found = [
        OpenMeeting(
            m.id, m.account_id, m.worker_id, m.started_at, max([m.started_at, *activity.get(m.id, [])])
        )
        for m in open_rows
    ]
    closures = plan_recovery(found, runs, name=name, now=now, stale_after=stale_after)
    by_id = {m.id: m for m in open_rows}
    for closure in closures:
        meeting = by_id[closure.meeting_id]
        meeting.ended_at = closure.at
        meeting.end_reason = reason
        await session.execute(
            update(Attendance)
            .where(Attendance.meeting_id == closure.meeting_id, Attendance.left_at.is_(None))
            .values(left_at=closure.at, leave_reason=reason)
        )
    outages = crash_outages(closures, now=now)
    for outage in outages:
        listed = ", ".join(str(i) for i in outage.meeting_ids)
        session.add(
            Outage(
                account_id=outage.account_id,
                start=outage.start,
                end=outage.end,
                source="monitor",
                cause=reason,
                note=f"{reason.replace('_', ' ')}; meetings closed at the last heartbeat: {listed}"[:500],
                created_at=now,
            )
        )
    return closures, outages


async def _last_activity(session: AsyncSession, meeting_ids: list[int]) -> dict[int, list[datetime]]:
    if not meeting_ids:
        return {}
    query = (
        select(Attendance.meeting_id, func.max(Attendance.joined_at), func.max(Attendance.left_at))
        .where(Attendance.meeting_id.in_(meeting_ids))
        .group_by(Attendance.meeting_id)
    )
    result: dict[int, list[datetime]] = {}
    for meeting_id, joined, left in (await session.execute(query)).all():
        result[meeting_id] = [t for t in (joined, left) if t is not None]
    return result


async def beat(db: Database, worker_id: int, *, now: datetime, meeting_ids: Iterable[int] = ()) -> None:
    """Write this run's heartbeat, and claim the live meetings it hosts that do not name their run yet."""
    ids = sorted(set(meeting_ids))
    async with db.writer() as session:
        await session.execute(update(Worker).where(Worker.id == worker_id).values(beat_at=now))
        if ids:
            await session.execute(
                update(Meeting)
                .where(Meeting.id.in_(ids), Meeting.worker_id.is_(None), Meeting.ended_at.is_(None))
                .values(worker_id=worker_id)
            )
        await session.commit()


async def stop_worker(db: Database, worker_id: int, *, now: datetime) -> None:
    """Mark a clean stop (after the run has ended its meetings)."""
    async with db.writer() as session:
        await session.execute(
            update(Worker).where(Worker.id == worker_id).values(beat_at=now, stopped_at=now)
        )
        await session.commit()


# --- a meeting's lease in a cluster (issue #20) ---------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """A meeting this worker now holds under `epoch`: started here, or adopted (moved here, same id)."""

    meeting_id: int
    adopted: bool


async def start_or_adopt(
    db: Database,
    *,
    room_id: int,
    epoch: int,
    now: datetime,
    booking_id: int | None = None,
    occurrence_start: datetime | None = None,
) -> Placed:
    """Take the room's meeting under lease `epoch`. An open meeting of the room (moved here by a drain,
    or left by a lost worker whose participants come back) is adopted: the same meeting id, its
    lease_epoch set to `epoch` with a conditional UPDATE, so its former owner's writes are refused from now
    on, and the attendances left open in the former copy closed (`moved`). Else a new meeting starts."""
    async with db.writer() as session:
        found = (
            await session.scalars(
                select(Meeting)
                .where(Meeting.room_id == room_id, Meeting.ended_at.is_(None))
                .order_by(Meeting.id.desc())
                .limit(1)
            )
        ).first()
        if found is not None:
            adopted = await session.execute(
                update(Meeting)
                .where(
                    Meeting.id == found.id,
                    Meeting.ended_at.is_(None),
                    Meeting.lease_epoch.is_not_distinct_from(found.lease_epoch),
                )
                .values(lease_epoch=epoch, worker_id=None)  # this run's next heartbeat claims it
            )
            if adopted.rowcount == 1:  # type: ignore[attr-defined]
                await session.execute(
                    update(Attendance)
                    .where(Attendance.meeting_id == found.id, Attendance.left_at.is_(None))
                    .values(left_at=now, leave_reason=MOVED)
                )
                await session.commit()
                return Placed(found.id, adopted=True)
            await session.rollback()
    meeting = await start_meeting(
        db, room_id=room_id, now=now, booking_id=booking_id, occurrence_start=occurrence_start,
        lease_epoch=epoch,
    )  # fmt: skip
    return Placed(meeting.id, adopted=False)


async def holds_lease(db: Database, meeting_id: int, epoch: int) -> bool:
    """Whether the meeting is still held under `epoch` and open (a conditional UPDATE: the row is locked
    to the end of this short transaction, so the answer is not older than an adoption that follows)."""
    async with db.writer() as session:
        result = await session.execute(
            update(Meeting)
            .where(Meeting.id == meeting_id, Meeting.lease_epoch == epoch, Meeting.ended_at.is_(None))
            .values(lease_epoch=epoch)
        )
        await session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def record_job_run(
    db: Database,
    job: str,
    *,
    actor: Actor,
    started: datetime,
    ended: datetime,
    worker: str,
    outcome: dict[str, object],
) -> None:
    """One audit entry per run of a cluster-wide job (e.g. the billing run), from its start to its end and
    naming the worker that ran it, so that "runs never overlap, one worker at a time" can be checked."""
    changes = {"started_at": started.isoformat(), "ended_at": ended.isoformat(), "worker": worker, **outcome}
    async with db.writer() as session:
        record(session, "run", "job", job, account_id=None, changes=changes, now=ended, actor=actor)
        await session.commit()
