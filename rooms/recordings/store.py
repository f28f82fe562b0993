"""Recordings in the database: each state change is one transaction (rooms/recordings/rules.py checks it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.billing.contract import parse_terms
from rooms.billing.metering import StoredRecording
from rooms.billing.models import Contract
from rooms.database import Database
from rooms.errors import Conflict, NotFound
from rooms.recordings.models import Recording, RecordingFile
from rooms.recordings.rules import UNFINISHED, check_transition, is_expired, retain_until, safe_name
from rooms.webhooks.events import emit

# Called inside the transaction that makes a recording ready: the "recording ready" notification is written
# to the outbox in that same transaction, or not at all.
OnReady = Callable[[AsyncSession, Recording], Awaitable[None]]


@dataclass(frozen=True)
class FileFact:
    """One finished file of a recording, as the recorder or the renderer reports it."""

    kind: str
    name: str
    size_bytes: int
    duration_ms: int | None = None
    checksum: str = ""
    participant: str = ""


async def create(
    db: Database,
    *,
    account_id: int,
    meeting_id: int,
    room_id: int | None,
    directory: str,
    started_by: str,
    now: datetime,
) -> int:
    """A new recording in state "recording"; refused while the meeting already has one recording."""
    async with db.writer() as session:
        busy = await session.scalar(
            select(Recording.id).where(Recording.meeting_id == meeting_id, Recording.state == "recording")
        )
        if busy is not None:
            raise Conflict("the meeting is already being recorded", code="already_recording")
        recording = Recording(
            account_id=account_id,
            meeting_id=meeting_id,
            room_id=room_id,
            state="recording",
            directory=safe_name(directory),
            progress=0,
            started_by=started_by,
            size_bytes=0,
            started_at=now,
            updated_at=now,
        )
        session.add(recording)
        await session.commit()
        return recording.id


async def _locked(session: AsyncSession, recording_id: int) -> Recording:
    recording = await session.get(Recording, recording_id, with_for_update=True)
    if recording is None:
        raise NotFound("no such recording")
    return recording


async def finalised(
    db: Database,
    recording_id: int,
    files: Sequence[FileFact],
    *,
    duration_ms: int | None,
    ended_at: datetime,
    retention_days: int | None,
    render: bool,
    now: datetime,
) -> None:
    """The per-track files are closed: store them; the composite render comes next (``render``)."""
    async with db.writer() as session:
        recording = await _locked(session, recording_id)
        if recording.state == "recording":
            check_transition("recording", "finalising")
            recording.state = "finalising"
        new = "rendering" if render else "ready"
        check_transition(recording.state, new)
        recording.files = [
            RecordingFile(
                kind=f.kind,
                name=safe_name(f.name),
                participant=f.participant[:200],
                size_bytes=f.size_bytes,
                duration_ms=f.duration_ms,
                checksum=f.checksum,
            )
            for f in files
        ]
        recording.state = new
        recording.progress = 0
        recording.error = None
        recording.ended_at = recording.ended_at or ended_at
        recording.duration_ms = duration_ms
        recording.retain_until = retain_until(recording.ended_at, retention_days)
        recording.size_bytes = sum(f.size_bytes for f in files)
        recording.updated_at = now
        await session.commit()


async def mark(db: Database, recording_id: int, state: str, *, now: datetime) -> None:
    """A plain state change (finalising, or rendering for a retry)."""
    async with db.writer() as session:
        recording = await _locked(session, recording_id)
        check_transition(recording.state, state)
        recording.state = state
        if state == "rendering":
            recording.progress = 0
            recording.error = None
        recording.updated_at = now
        await session.commit()


async def progress(db: Database, recording_id: int, percent: int, *, now: datetime) -> None:
    """The render's progress; it only moves forward, and only while rendering."""
    async with db.writer() as session:
        recording = await _locked(session, recording_id)
        if recording.state == "rendering" and percent > recording.progress:
            recording.progress = min(100, percent)
            recording.updated_at = now
            await session.commit()


async def rendered(
    db: Database, recording_id: int, composite: FileFact, *, now: datetime, on_ready: OnReady | None = None
) -> None:
    """The composite exists: the recording is ready (and its notification is queued in this transaction)."""
    async with db.writer() as session:
        recording = await _locked(session, recording_id)
        check_transition(recording.state, "ready")
        recording.files = [f for f in recording.files if f.kind != "composite"] + [
            RecordingFile(
                kind="composite",
                name=safe_name(composite.name),
                participant="",
                size_bytes=composite.size_bytes,
                duration_ms=composite.duration_ms,
                checksum=composite.checksum,
            )
        ]
        recording.composite_path = composite.name
        recording.state = "ready"
        recording.progress = 100
        recording.size_bytes = sum(f.size_bytes for f in recording.files)
        recording.duration_ms = recording.duration_ms or composite.duration_ms
        recording.updated_at = now
        data = {"recording_id": recording.id, "meeting_id": recording.meeting_id,
                "duration_ms": recording.duration_ms, "size_bytes": recording.size_bytes}  # fmt: skip
        await emit(session, "recording.ready", account_id=recording.account_id, data=data, now=now)
        if on_ready is not None:
            await on_ready(session, recording)
        await session.commit()


async def failed(db: Database, recording_id: int, error: str, *, now: datetime) -> None:
    async with db.writer() as session:
        recording = await _locked(session, recording_id)
        check_transition(recording.state, "failed")
        recording.state = "failed"
        recording.error = error[:2000]
        recording.ended_at = recording.ended_at or now
        recording.updated_at = now
        await session.commit()


async def delete(db: Database, recording_id: int, *, now: datetime) -> Recording:
    """Mark the recording deleted (its files go next, outside the transaction; the purge retries that)."""
    async with db.writer() as session:
        recording = await _locked(session, recording_id)
        if recording.state == "deleted":
            return recording
        if recording.state in UNFINISHED:
            message = f"the recording is {recording.state}; delete it once it is ready or failed"
            raise Conflict(message, code="bad_state", field="state")
        check_transition(recording.state, "deleted")
        recording.state = "deleted"
        recording.deleted_at = now
        recording.composite_path = None
        recording.updated_at = now
        await session.commit()
        return recording


async def unfinished(db: Database) -> list[Recording]:
    """Recordings whose work a previous run did not finish (it crashed or stopped mid-way)."""
    async with db.session() as session:
        rows = await session.scalars(
            select(Recording).where(Recording.state.in_(sorted(UNFINISHED))).order_by(Recording.id)
        )
        return list(rows.all())


async def expired(db: Database, *, now: datetime) -> list[int]:
    """Finished recordings past their retain_until."""
    async with db.session() as session:
        rows = (
            await session.execute(
                select(Recording.id, Recording.state, Recording.retain_until).where(
                    Recording.state.in_(("ready", "failed")), Recording.retain_until <= now
                )
            )
        ).all()
    return [r.id for r in rows if is_expired(r.retain_until, r.state, now)]


async def deleted_directories(db: Database) -> list[str]:
    async with db.session() as session:
        rows = await session.scalars(select(Recording.directory).where(Recording.state == "deleted"))
        return list(rows.all())


async def retention_days(
    session: AsyncSession, account_id: int, *, now: datetime, default: int | None
) -> int | None:
    """Days the account's recordings are kept: its contract in force names them, else ``default``."""
    contracts = (
        await session.scalars(
            select(Contract).where(Contract.account_id == account_id).order_by(Contract.id.desc())
        )
    ).all()
    for contract in contracts:
        terms = parse_terms(contract.terms)
        today = now.astimezone(ZoneInfo(terms.timezone)).date()
        if terms.start <= today and (contract.end is None or today < contract.end):
            if terms.recording_retention_days is not None:
                return terms.recording_retention_days
            break
    return default


async def stored_of(
    session: AsyncSession, account_id: int, lo: datetime, hi: datetime
) -> list[StoredRecording]:
    """The account's recordings stored during [lo, hi), for billing's storage GB-months."""
    rows = (
        await session.execute(
            select(Recording.size_bytes, Recording.started_at, Recording.deleted_at).where(
                Recording.account_id == account_id,
                Recording.started_at < hi,
                (Recording.deleted_at.is_(None)) | (Recording.deleted_at > lo),
                Recording.size_bytes > 0,
            )
        )
    ).all()
    return [StoredRecording(size, start, deleted) for size, start, deleted in rows]
