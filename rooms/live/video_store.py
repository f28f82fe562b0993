"""Pre-recorded videos and playlists in the database: every change is one transaction.

The background job's writes (checked, normalised, progress) are conditional on its lease, so that a job
that lost its claim (it was too slow, or it died and another took over) writes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.database import Database
from rooms.errors import Conflict, InvalidInput, NotFound
from rooms.live.models import LiveChannel
from rooms.live.videos import (
    DONE,
    WORK_STATES,
    Item,
    LiveVideo,
    PlaylistItem,
    check_removable,
    check_transition,
    ended,
    insert,
    reorder,
    skip,
    started,
)


@dataclass(frozen=True)
class Claim:
    """A video a job took: what to do with it (``state``: checking or normalising)."""

    video_id: int
    state: str
    directory: str
    duration_ms: int | None


@dataclass(frozen=True)
class QueuedVideo:
    """One queued item of a playlist for the playout: its normalised file, relative to the videos root."""

    item_id: int
    video_id: int
    directory: str
    name: str
    duration_ms: int | None


async def create_upload(
    db: Database,
    *,
    account_id: int,
    name: str,
    size_bytes: int,
    created_by: str,
    now: datetime,
    upload_ttl: timedelta,
) -> LiveVideo:
    """A new video in state "uploading", with its own directory name (random: never guessed, never reused)."""
    async with db.writer() as session:
        video = LiveVideo(
            account_id=account_id,
            name=name,
            state="uploading",
            size_bytes=size_bytes,
            received_bytes=0,
            progress=0,
            directory=f"v{now:%Y%m%d}-{secrets.token_hex(8)}",
            normal_size_bytes=0,
            created_by=created_by[:200],
            upload_expires_at=now + upload_ttl,
            created_at=now,
            updated_at=now,
        )
        session.add(video)
        await session.commit()
        return video


async def _locked(session: AsyncSession, video_id: int) -> LiveVideo:
    video = await session.get(LiveVideo, video_id, with_for_update=True)
    if video is None:
        raise NotFound("no such video")
    return video


async def received(db: Database, video_id: int, *, offset: int, new_offset: int, now: datetime) -> LiveVideo:
    """Bytes ``offset``..``new_offset`` are written; at the declared size the video goes to "checking"."""
    async with db.writer() as session:
        video = await _locked(session, video_id)
        if video.state != "uploading":
            raise Conflict(f"the video is {video.state}, not uploading", code="bad_state", field="state")
        if video.received_bytes != offset:
            raise Conflict("another upload moved the offset", code="offset_mismatch", field="Upload-Offset")
        if not offset <= new_offset <= video.size_bytes:
            raise InvalidInput("the chunk goes past the declared size", field="Upload-Offset")
        video.received_bytes = new_offset
        if new_offset == video.size_bytes:
            check_transition("uploading", "checking")
            video.state = "checking"
            video.upload_expires_at = None
        video.updated_at = now
        await session.commit()
        return video


async def claim_next(
    db: Database, *, owner: str, now: datetime, lease: timedelta, handled: Sequence[int] = ()
) -> Claim | None:
    """Take the oldest video that needs a check or a normalisation and is nobody's (or whose claim expired,
    or is ``owner``'s own from a previous run of this worker, which a new run proves dead: every video this
    run has not worked on yet, ``handled`` being those it has)."""
    async with db.writer() as session:
        video = await session.scalar(
            select(LiveVideo)
            .where(
                LiveVideo.state.in_(WORK_STATES),
                or_(
                    LiveVideo.lease_until.is_(None),
                    LiveVideo.lease_until <= now,
                    and_(LiveVideo.lease_owner == owner, LiveVideo.id.not_in(handled)),
                ),
            )
            .order_by(LiveVideo.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if video is None:
            return None
        video.lease_owner = owner
        video.lease_until = now + lease
        if video.state == "normalising":
            video.progress = 0  # redone from the start: a killed ffmpeg leaves nothing to resume
        video.updated_at = now
        await session.commit()
        return Claim(video.id, video.state, video.directory, video.duration_ms)


async def _leased(session: AsyncSession, video_id: int, owner: str, state: str) -> LiveVideo | None:
    video = await session.get(LiveVideo, video_id, with_for_update=True)
    if video is None or video.lease_owner != owner or video.state != state:
        return None  # deleted, or taken over: this job's result is not wanted
    return video


async def renew(
    db: Database, video_id: int, *, owner: str, now: datetime, lease: timedelta, progress: int | None = None
) -> bool:
    """Extend the claim (and store the progress); False when the job lost it and should stop."""
    async with db.writer() as session:
        video = await session.get(LiveVideo, video_id, with_for_update=True)
        if video is None or video.lease_owner != owner or video.state not in WORK_STATES:
            return False
        video.lease_until = now + lease
        if progress is not None:
            video.progress = max(video.progress, min(progress, 99))
        video.updated_at = now
        await session.commit()
        return True


async def checked(
    db: Database,
    video_id: int,
    *,
    owner: str,
    probe: dict[str, Any],
    checks: list[dict[str, Any]],
    refusal: tuple[str, str] | None,
    duration_ms: int | None,
    now: datetime,
    lease: timedelta,
) -> str | None:
    """The checks' results: the video is refused (``refusal``: reason, detail) or goes on to normalising.
    Returns the new state, None if the job had lost its claim."""
    async with db.writer() as session:
        video = await _leased(session, video_id, owner, "checking")
        if video is None:
            return None
        new = "refused" if refusal is not None else "normalising"
        check_transition(video.state, new)
        video.state = new
        video.probe = probe
        video.checks = checks
        video.duration_ms = duration_ms
        video.progress = 0
        if refusal is not None:
            video.reason, video.detail = refusal
            video.lease_owner = video.lease_until = None
        else:
            video.lease_until = now + lease
        video.updated_at = now
        await session.commit()
        return new


async def normalised(db: Database, video_id: int, *, owner: str, size_bytes: int, now: datetime) -> bool:
    """The normalised file is in place: the video is ready (False if the job had lost its claim)."""
    async with db.writer() as session:
        video = await _leased(session, video_id, owner, "normalising")
        if video is None:
            return False
        check_transition(video.state, "ready")
        video.state = "ready"
        video.progress = 100
        video.normal_size_bytes = size_bytes
        video.lease_owner = video.lease_until = None
        video.updated_at = now
        await session.commit()
        return True


async def normalise_failed(db: Database, video_id: int, *, owner: str, detail: str, now: datetime) -> bool:
    async with db.writer() as session:
        video = await _leased(session, video_id, owner, "normalising")
        if video is None:
            return False
        check_transition(video.state, "refused")
        video.state = "refused"
        video.reason = "normalise_failed"
        video.detail = detail[:2000]
        video.lease_owner = video.lease_until = None
        video.updated_at = now
        await session.commit()
        return True


async def delete(db: Database, video_id: int) -> str:
    """Delete the video and its playlist items (not while one is playing); returns its directory."""
    async with db.writer() as session:
        video = await _locked(session, video_id)
        playing = await session.scalar(
            select(PlaylistItem.id).where(PlaylistItem.video_id == video_id, PlaylistItem.state == "playing")
        )
        if playing is not None:
            raise Conflict("the video is playing in a live channel; skip it first", code="playing")
        directory = video.directory
        await session.delete(video)
        await session.commit()
        return directory


async def expired_uploads(db: Database, *, now: datetime) -> list[int]:
    async with db.session() as session:
        rows = await session.scalars(
            select(LiveVideo.id).where(LiveVideo.state == "uploading", LiveVideo.upload_expires_at <= now)
        )
        return list(rows.all())


# --- playlists -------------------------------------------------------------------------------------------


async def playlist(session: AsyncSession, channel_id: int) -> list[PlaylistItem]:
    rows = await session.scalars(
        select(PlaylistItem)
        .where(PlaylistItem.channel_id == channel_id)
        .order_by(PlaylistItem.position, PlaylistItem.id)
    )
    return list(rows.all())


def _items(rows: Sequence[PlaylistItem]) -> list[Item]:
    return [Item(r.id, r.position, r.state) for r in rows]


def _renumber(rows: Sequence[PlaylistItem], positions: dict[int, int]) -> None:
    for row in rows:
        row.position = positions[row.id]


async def _channel(session: AsyncSession, channel_id: int) -> LiveChannel:
    channel = await session.get(LiveChannel, channel_id, with_for_update=True)
    if channel is None:
        raise NotFound("no such live channel")
    return channel


async def add_item(
    db: Database,
    channel_id: int,
    video_id: int,
    *,
    before_item_id: int | None,
    play_next: bool,
    now: datetime,
) -> int:
    """Put a ready video of the channel's account into its playlist; returns the new item's id."""
    async with db.writer() as session:
        channel = await _channel(session, channel_id)
        video = await session.get(LiveVideo, video_id)
        if video is None or video.account_id != channel.account_id:
            raise InvalidInput("no such video in the channel's account", field="video_id")
        if video.state != "ready":
            raise Conflict(f"only a ready video can be played (it is {video.state})", code="not_ready")
        rows = await playlist(session, channel_id)
        item = PlaylistItem(
            channel_id=channel_id,
            account_id=channel.account_id,
            video_id=video_id,
            position=0,
            state="queued",
            created_at=now,
        )
        session.add(item)
        await session.flush()
        positions = insert(_items(rows), item.id, before=before_item_id, play_next=play_next)
        _renumber([*rows, item], positions)
        await session.commit()
        return item.id


async def reorder_items(db: Database, channel_id: int, queued_ids: Sequence[int]) -> None:
    async with db.writer() as session:
        await _channel(session, channel_id)
        rows = await playlist(session, channel_id)
        _renumber(rows, reorder(_items(rows), queued_ids))
        await session.commit()


async def _item(session: AsyncSession, channel_id: int, item_id: int) -> PlaylistItem:
    item = await session.get(PlaylistItem, item_id, with_for_update=True)
    if item is None or item.channel_id != channel_id:
        raise NotFound("no such item in this playlist")
    return item


async def skip_item(db: Database, channel_id: int, item_id: int, *, now: datetime) -> bool:
    """Skip a queued or the playing item; True when it was playing (the playout must cut to the next)."""
    async with db.writer() as session:
        item = await _item(session, channel_id, item_id)
        was_playing = item.state == "playing"
        item.state = skip(Item(item.id, item.position, item.state))
        item.ended_at = now if was_playing else item.ended_at
        await session.commit()
        return was_playing


async def remove_item(db: Database, channel_id: int, item_id: int) -> None:
    async with db.writer() as session:
        item = await _item(session, channel_id, item_id)
        check_removable(Item(item.id, item.position, item.state))
        await session.delete(item)
        await session.commit()


async def queued_videos(db: Database, channel_id: int) -> list[QueuedVideo]:
    """The playout's list: the channel's queued items in order, each with its normalised file."""
    async with db.session() as session:
        rows = (
            await session.execute(
                select(PlaylistItem, LiveVideo)
                .join(LiveVideo, LiveVideo.id == PlaylistItem.video_id)
                .where(
                    PlaylistItem.channel_id == channel_id,
                    PlaylistItem.state == "queued",
                    LiveVideo.state == "ready",
                )
                .order_by(PlaylistItem.position, PlaylistItem.id)
            )
        ).all()
    return [QueuedVideo(i.id, v.id, v.directory, v.name, v.duration_ms) for i, v in rows]


async def item_started(db: Database, item_id: int, *, now: datetime) -> None:
    """The playout put the item on air (idempotent; a skipped item stays skipped)."""
    async with db.writer() as session:
        item = await session.get(PlaylistItem, item_id, with_for_update=True)
        if item is None or item.state in DONE:
            return
        item.state = started(Item(item.id, item.position, item.state))
        item.started_at = item.started_at or now
        await session.commit()


async def item_ended(db: Database, item_id: int, *, now: datetime) -> None:
    """The item finished on air (idempotent)."""
    async with db.writer() as session:
        item = await session.get(PlaylistItem, item_id, with_for_update=True)
        if item is None or item.state in DONE:
            return
        item.state = ended(Item(item.id, item.position, item.state))
        item.ended_at = now
        await session.commit()
