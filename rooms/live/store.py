"""Live channels in the database: each change is one transaction, checked by rooms/live/rules.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.database import Database
from rooms.errors import Conflict, NotFound
from rooms.live.devices import classify
from rooms.live.ingest import new_stream_key
from rooms.live.models import LiveChannel, LiveConcurrencySample, LiveViewerSession
from rooms.live.rules import RUNNING, check_editable, check_source, next_state
from rooms.live.stats import CONCURRENT_WINDOW, Sample, Viewing, sample_instant
from rooms.live.videos import LiveVideo
from rooms.models import Room
from rooms.webhooks.events import emit

# Fields of a channel the console may change while it has not ended (the state has its own actions).
EDITABLE_FIELDS = frozenset(
    {"title", "language", "source_kind", "room_id", "audio_participant", "standby_kind", "standby_video_id",
     "rtmp_url", "show_viewer_count"}
)  # fmt: skip


@dataclass(frozen=True)
class ChannelFields:
    title: str
    language: str
    source_kind: str
    room_id: int | None = None
    audio_participant: str = ""
    standby_kind: str = "none"
    standby_video_id: int | None = None
    rtmp_url: str | None = None
    show_viewer_count: bool = False


async def _room_of_account(session: AsyncSession, room_id: int | None, account_id: int) -> None:
    if room_id is None:
        return
    room = await session.get(Room, room_id)
    if room is None or room.account_id != account_id:
        raise NotFound("no such room in the channel's account", field="room_id")


async def _standby_video(session: AsyncSession, video_id: int | None, account_id: int) -> None:
    if video_id is None:
        return
    video = await session.get(LiveVideo, video_id)
    if video is None or video.account_id != account_id:
        raise NotFound("no such pre-recorded video in the channel's account", field="standby_video_id")
    if video.state != "ready":
        raise Conflict(
            f"the standby video is {video.state}, not ready", code="not_ready", field="standby_video_id"
        )


async def create(db: Database, *, account_id: int, fields: ChannelFields, now: datetime) -> LiveChannel:
    check_source(fields.source_kind, fields.room_id)
    async with db.writer() as session:
        await _room_of_account(session, fields.room_id, account_id)
        await _standby_video(session, fields.standby_video_id, account_id)
        channel = LiveChannel(
            account_id=account_id,
            title=fields.title,
            language=fields.language,
            state="draft",
            source_kind=fields.source_kind,
            room_id=fields.room_id,
            audio_participant=fields.audio_participant,
            standby_kind=fields.standby_kind,
            standby_video_id=fields.standby_video_id,
            standby_override="auto",
            rtmp_url=fields.rtmp_url,
            ingest_key=new_stream_key() if fields.source_kind == "rtmp" else None,
            show_viewer_count=fields.show_viewer_count,
            created_at=now,
            updated_at=now,
        )
        session.add(channel)
        await session.commit()
        return channel


async def _locked(session: AsyncSession, channel_id: int) -> LiveChannel:
    channel = await session.get(LiveChannel, channel_id, with_for_update=True)
    if channel is None:
        raise NotFound("no such live channel")
    return channel


async def get(db: Database, channel_id: int) -> LiveChannel:
    async with db.session() as session:
        channel = await session.get(LiveChannel, channel_id)
    if channel is None:
        raise NotFound("no such live channel")
    return channel


async def change(db: Database, channel_id: int, changes: dict[str, Any], *, now: datetime) -> LiveChannel:
    """Change the set-up of a channel that has not ended; a source change is checked as a whole."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise Conflict(f"{', '.join(sorted(unknown))} cannot be changed here", code="bad_field")
    async with db.writer() as session:
        channel = await _locked(session, channel_id)
        check_editable(channel.state)
        kind = changes.get("source_kind", channel.source_kind)
        room_id = changes.get("room_id", channel.room_id)
        if "source_kind" in changes and kind != "meeting" and "room_id" not in changes:
            room_id = None  # leaving a meeting source drops its room
        check_source(kind, room_id)
        await _room_of_account(session, room_id, channel.account_id)
        if "standby_video_id" in changes:
            await _standby_video(session, changes["standby_video_id"], channel.account_id)
        if channel.state in RUNNING and kind != channel.source_kind:
            # The engine switches sources of one kind on air (a DISCONTINUITY); another kind needs a new run.
            raise Conflict(
                "the source kind cannot change while the channel runs; stop it first",
                code="bad_state",
                field="source_kind",
            )
        for name, value in changes.items():
            setattr(channel, name, value)
        if kind == "rtmp" and channel.ingest_key is None:
            channel.ingest_key = new_stream_key()
        channel.room_id = room_id
        channel.updated_at = now
        await session.commit()
        return channel


async def act(
    db: Database,
    channel_id: int,
    action: str,
    *,
    now: datetime,
    directory: str | None = None,
    meeting_id: int | None = None,
) -> LiveChannel:
    """Apply a console action (rehearse, go_live, stop, archive); ``directory`` names a new run's files."""
    async with db.writer() as session:
        channel = await _locked(session, channel_id)
        was, new = channel.state, next_state(channel.state, action)
        if new == "rehearsal":
            channel.rehearsal_at = now
        if new == "live":
            channel.started_at = now
        if new == "ended":
            channel.ended_at = now
        if new == "archived":
            channel.archived_at = now
        if new == "draft":
            # A rehearsal stopped: its files go, the next run starts afresh.
            channel.directory = None
            channel.meeting_id = None
            channel.rehearsal_at = None
        if directory is not None:
            channel.directory = directory
        if meeting_id is not None:
            channel.meeting_id = meeting_id
        channel.state = new
        channel.updated_at = now
        # Webhooks see the public event only: going live, and the end of what was live (not a rehearsal).
        if new == "live" or (new == "ended" and was == "live"):
            ended = channel.ended_at if new == "ended" else None
            data = {"channel_id": channel.id, "title": channel.title, "language": channel.language,
                    "started_at": channel.started_at.isoformat() if channel.started_at else None,
                    "ended_at": ended.isoformat() if ended else None}  # fmt: skip
            kind = "live.started" if new == "live" else "live.ended"
            await emit(session, kind, account_id=channel.account_id, data=data, now=now)
        await session.commit()
        return channel


async def set_override(db: Database, channel_id: int, override: str, *, now: datetime) -> LiveChannel:
    async with db.writer() as session:
        channel = await _locked(session, channel_id)
        if channel.state not in RUNNING:
            raise Conflict(
                f"the standby override applies while the channel runs (it is {channel.state})",
                code="bad_state",
                field="state",
            )
        channel.standby_override = override
        channel.updated_at = now
        await session.commit()
        return channel


async def remove(db: Database, channel_id: int) -> LiveChannel:
    """Delete a channel that is not running, with its sessions and samples (its files go next)."""
    async with db.writer() as session:
        channel = await _locked(session, channel_id)
        if channel.state in RUNNING:
            raise Conflict(
                f"the channel is {channel.state}; stop it before deleting it", code="bad_state", field="state"
            )
        await session.execute(delete(LiveViewerSession).where(LiveViewerSession.channel_id == channel_id))
        await session.execute(
            delete(LiveConcurrencySample).where(LiveConcurrencySample.channel_id == channel_id)
        )
        await session.delete(channel)
        await session.commit()
        return channel


async def in_states(db: Database, states: Sequence[str]) -> list[LiveChannel]:
    async with db.session() as session:
        rows = await session.scalars(
            select(LiveChannel).where(LiveChannel.state.in_(list(states))).order_by(LiveChannel.id)
        )
        return list(rows.all())


# --- viewer sessions -------------------------------------------------------------------------------------


async def open_session(
    db: Database, channel: LiveChannel, *, viewer_id: str, phase: str, user_agent: str, now: datetime
) -> int:
    """A new viewer session (its device is classified once, here)."""
    device = classify(user_agent)
    async with db.writer() as session:
        row = LiveViewerSession(
            channel_id=channel.id,
            account_id=channel.account_id,
            viewer_id=viewer_id[:64],
            phase=phase,
            user_agent=user_agent[:500],
            device_class=device.device_class,
            browser=device.browser,
            os=device.os,
            first_seen=now,
            last_seen=now,
            segments=0,
        )
        session.add(row)
        await session.commit()
        return row.id


async def touch(db: Database, session_id: int, channel_id: int, *, segment: bool, now: datetime) -> bool:
    """A playlist or segment request of a session: last_seen moves to ``now`` (never back), segments count.

    False when the session does not exist (its channel was deleted)."""
    statement = (
        update(LiveViewerSession)
        .where(LiveViewerSession.id == session_id, LiveViewerSession.channel_id == channel_id)
        .values(
            last_seen=case((LiveViewerSession.last_seen < now, now), else_=LiveViewerSession.last_seen),
            segments=LiveViewerSession.segments + (1 if segment else 0),
        )
    )
    async with db.writer() as session:
        result = await session.execute(statement)
        await session.commit()
    return bool(getattr(result, "rowcount", 0))


async def touch_many(db: Database, touches: Sequence[tuple[int, datetime, int]]) -> None:
    """Several sessions' requests in one transaction: (session id, latest request, segments served)."""
    if not touches:
        return
    async with db.writer() as session:
        for session_id, seen, segments in touches:
            await session.execute(
                update(LiveViewerSession)
                .where(LiveViewerSession.id == session_id)
                .values(
                    last_seen=case(
                        (LiveViewerSession.last_seen < seen, seen), else_=LiveViewerSession.last_seen
                    ),
                    segments=LiveViewerSession.segments + segments,
                )
            )
        await session.commit()


async def concurrent_now(db: Database, channel_id: int, phase: str, *, now: datetime) -> int:
    """Distinct viewers of a channel's phase watching at ``now`` (the viewer page's count)."""
    async with db.session() as session:
        count = await session.scalar(
            select(func.count(func.distinct(LiveViewerSession.viewer_id))).where(
                LiveViewerSession.channel_id == channel_id,
                LiveViewerSession.phase == phase,
                LiveViewerSession.last_seen > now - CONCURRENT_WINDOW,
                LiveViewerSession.first_seen <= now,
                LiveViewerSession.segments > 0,
            )
        )
    return int(count or 0)


async def sample(db: Database, *, now: datetime) -> int:
    """Write one concurrency sample per channel and phase with viewers (and a zero for channels on air).

    Idempotent: the instant is ``now`` on the 10 s grid and (channel, phase, instant) is unique, so a second
    sampler (another process, a rerun) writes nothing. Returns the number of samples written."""
    at = sample_instant(now)
    async with db.writer() as session:
        rows = (
            await session.execute(
                select(
                    LiveViewerSession.channel_id,
                    LiveViewerSession.phase,
                    func.count(func.distinct(LiveViewerSession.viewer_id)),
                )
                .where(
                    LiveViewerSession.last_seen > now - CONCURRENT_WINDOW,
                    LiveViewerSession.first_seen <= now,
                    LiveViewerSession.segments > 0,
                )
                .group_by(LiveViewerSession.channel_id, LiveViewerSession.phase)
            )
        ).all()
        counts: dict[tuple[int, str], int] = {(c, p): int(n) for c, p, n in rows}
        on_air = (
            await session.execute(
                select(LiveChannel.id, LiveChannel.state).where(LiveChannel.state.in_(sorted(RUNNING)))
            )
        ).all()
        for channel_id, state in on_air:
            counts.setdefault((channel_id, state), 0)
        done = set(
            (
                await session.execute(
                    select(LiveConcurrencySample.channel_id, LiveConcurrencySample.phase).where(
                        LiveConcurrencySample.at == at
                    )
                )
            ).all()
        )
        written = 0
        for (channel_id, phase), viewers in sorted(counts.items()):
            if (channel_id, phase) in done:
                continue
            session.add(LiveConcurrencySample(channel_id=channel_id, phase=phase, at=at, viewers=viewers))
            written += 1
        try:
            await session.commit()
        except IntegrityError:
            # Another process sampled this instant between our read and our write: its samples stand.
            await session.rollback()
            return 0
    return written


def _viewing(row: LiveViewerSession) -> Viewing:
    return Viewing(
        viewer_id=row.viewer_id,
        phase=row.phase,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        segments=row.segments,
        device_class=row.device_class,
        browser=row.browser,
        os=row.os,
    )


async def viewings(db: Database, channel_id: int) -> tuple[list[Viewing], list[Sample]]:
    """Every viewer session and concurrency sample of a channel (the input of rooms/live/stats.py)."""
    async with db.session() as session:
        sessions = (
            await session.scalars(select(LiveViewerSession).where(LiveViewerSession.channel_id == channel_id))
        ).all()
        samples = (
            await session.scalars(
                select(LiveConcurrencySample)
                .where(LiveConcurrencySample.channel_id == channel_id)
                .order_by(LiveConcurrencySample.at)
            )
        ).all()
    return [_viewing(s) for s in sessions], [Sample(s.at, s.phase, s.viewers) for s in samples]


async def viewings_of(session: AsyncSession, account_id: int, lo: datetime, hi: datetime) -> list[Viewing]:
    """The account's public viewer sessions that overlap [lo, hi), for billing's live-viewer minutes."""
    rows = (
        await session.scalars(
            select(LiveViewerSession).where(
                LiveViewerSession.account_id == account_id,
                LiveViewerSession.phase.in_(("live", "replay")),
                LiveViewerSession.segments > 0,
                LiveViewerSession.first_seen < hi,
                LiveViewerSession.last_seen > lo,
            )
        )
    ).all()
    return [_viewing(r) for r in rows]
