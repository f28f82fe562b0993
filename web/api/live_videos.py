"""Pre-recorded videos: resumable uploads, their checks and normalisation (playlists: live_playlists.py).

The upload follows tus 1.0 (core): ``POST /live/videos`` declares name and size and answers the upload URL;
``PATCH`` appends a chunk at ``Upload-Offset`` (application/offset+octet-stream); ``HEAD`` tells the offset
to resume from after a dropped connection (a dropped PATCH keeps what it had written: it loses at most its
own chunk). The upload is
written off the event loop, truncated to the stored offset first (a crash between a write and its commit
leaves extra bytes, never missing ones); at the declared size the video is checked and normalised in the
background (yunhui/live_videos.py), and only then can it go into a playlist.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal, Protocol

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import select

from rooms.live import video_store as store
from rooms.live.videos import SOURCE_NAME, LiveVideo
from web.api.base import (
    CLOCK,
    DB,
    Api,
    ApiError,
    Principal,
    owned,
    parse_body,
    parse_query,
    path_id,
    principal,
    send,
)
from web.api.schemas import Body, Id, ListQuery, Name

log = logging.getLogger(__name__)

api = Api()
TAG = "live videos"
TUS_VERSION = "1.0.0"
CHUNK_TYPES = ("application/offset+octet-stream", "application/octet-stream")
READ_SIZE = 1 << 20


class VideoService(Protocol):
    """What the API needs of the videos' background work in this process (the composition root gives it)."""

    @property
    def root(self) -> Path:
        """The directory every video's directory is in."""
        ...

    @property
    def max_size_bytes(self) -> int: ...

    @property
    def upload_ttl(self) -> timedelta: ...

    def wake(self) -> None:
        """An upload is complete: check and normalise it (in the background)."""
        ...

    async def cancel(self, video_id: int) -> None:
        """Stop the check or normalisation running on the video, if any, and return once it stopped."""
        ...

    async def remove_files(self, directory: str) -> None:
        """Delete a deleted video's directory (idempotent)."""
        ...

    def playlist_changed(self, channel_id: int, *, cut: bool) -> None:
        """The channel's playlist changed; ``cut``: the item on air was skipped."""
        ...

    async def play(self, channel_id: int) -> bool:
        """Put the channel's playlist on air; False when the channel is not running in this process."""
        ...


LIVE_VIDEOS = web.AppKey("live_videos", VideoService)


class _UploadLocks:
    """One PATCH at a time per video in this process: two would append at the same offset."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}

    @asynccontextmanager
    async def hold(self, video_id: int) -> AsyncIterator[None]:
        lock = self._locks.setdefault(video_id, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._locks.get(video_id) is lock:
                del self._locks[video_id]


UPLOAD_LOCKS = web.AppKey("live_video_upload_locks", _UploadLocks)


# --- bodies ------------------------------------------------------------------------------------------------


class VideoIn(Body):
    name: Name
    size_bytes: Annotated[int, Field(ge=1, le=2**53)]
    account_id: Id | None = None


class CheckOut(BaseModel):
    name: str = Field(
        description="size, container, video, audio, resolution, fps, duration, decode, loudness"
    )
    ok: bool | None = Field(description="null: not run (an earlier check refused the video)")
    reason: str | None = Field(description="the refusal's code when ok is false")
    detail: str
    value: str


class VideoOut(BaseModel):
    id: int
    account_id: int
    name: str
    state: Literal["uploading", "checking", "refused", "normalising", "ready"]
    reason: str | None = Field(description="why it was refused: a code (docs/live.md lists them)")
    detail: str | None = Field(description="the refusal's details, in English, with the values")
    size_bytes: int
    received_bytes: int = Field(description="the upload's offset: resume from here")
    progress: int = Field(description="normalisation progress, 0-100")
    duration_ms: int | None
    probe: dict[str, Any] | None = Field(description="what ffprobe says of the upload")
    checks: list[CheckOut]
    normal_size_bytes: int
    upload_url: str | None = Field(description="relative to /api/v1; PATCH chunks there, HEAD for the offset")
    upload_expires_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class VideoFilter(ListQuery):
    account_id: Id | None = None
    state: Literal["uploading", "checking", "refused", "normalising", "ready"] | None = None


def _out(video: LiveVideo) -> VideoOut:
    uploading = video.state == "uploading"
    return VideoOut(
        id=video.id,
        account_id=video.account_id,
        name=video.name,
        state=video.state,
        reason=video.reason,
        detail=video.detail,
        size_bytes=video.size_bytes,
        received_bytes=video.received_bytes,
        progress=video.progress,
        duration_ms=video.duration_ms,
        probe=video.probe,
        checks=[CheckOut.model_validate(c) for c in video.checks or []],
        normal_size_bytes=video.normal_size_bytes,
        upload_url=f"live/videos/{video.id}/upload" if uploading else None,
        upload_expires_at=video.upload_expires_at,
        created_by=video.created_by,
        created_at=video.created_at,
        updated_at=video.updated_at,
    )


def _service(request: web.Request) -> VideoService:
    service = request.app.get(LIVE_VIDEOS)
    if service is None:
        raise ApiError(409, "unavailable", "this server does not take videos")
    return service


def require_editor(who: Principal) -> None:
    if who.user.role not in ("admin", "organizer"):
        raise ApiError(403, "forbidden", "this needs the admin or organizer role")


# --- videos ------------------------------------------------------------------------------------------------


@api.op(
    "POST",
    "/live/videos",
    summary="Start uploading a video (tus): declare its name and size, get the upload URL",
    tag=TAG,
    body=VideoIn,
    response=VideoOut,
    status=201,
)
async def create_video(request: web.Request) -> web.Response:
    who = principal(request)
    require_editor(who)
    body = await parse_body(request, VideoIn)
    account_id = who.target_account(body.account_id)
    service = _service(request)
    if body.size_bytes > service.max_size_bytes:
        limit = service.max_size_bytes / 1024**2
        raise ApiError(422, "too_large", f"size_bytes: the limit is {limit:.0f} MiB", "size_bytes")
    video = await store.create_upload(
        request.app[DB],
        account_id=account_id,
        name=body.name,
        size_bytes=body.size_bytes,
        created_by=who.user.display_name or who.user.email,
        now=request.app[CLOCK](),
        upload_ttl=service.upload_ttl,
    )
    await asyncio.to_thread((service.root / video.directory).mkdir, parents=True, exist_ok=True)
    response = send(_out(video), 201)
    response.headers["Location"] = f"live/videos/{video.id}/upload"
    response.headers["Tus-Resumable"] = TUS_VERSION
    return response


@api.op(
    "GET",
    "/live/videos",
    summary="List videos, newest first",
    tag=TAG,
    response=VideoOut,
    many=True,
    query=VideoFilter,
)
async def list_videos(request: web.Request) -> web.Response:
    who = principal(request)
    q = parse_query(request, VideoFilter)
    query = select(LiveVideo).order_by(LiveVideo.id.desc()).limit(q.limit).offset(q.offset)
    account_id = who.account_id if who.account_id is not None else q.account_id
    if account_id is not None:
        query = query.where(LiveVideo.account_id == account_id)
    if q.state is not None:
        query = query.where(LiveVideo.state == q.state)
    async with request.app[DB].session() as session:
        rows = (await session.scalars(query)).all()
    return send([_out(v) for v in rows])


@api.op(
    "GET",
    "/live/videos/{video_id}",
    summary="Get a video: its checks and progress",
    tag=TAG,
    response=VideoOut,
)
async def get_video(request: web.Request) -> web.Response:
    async with request.app[DB].session() as session:
        video = await owned(session, LiveVideo, path_id(request, "video_id"), principal(request))
    return send(_out(video))


@api.op(
    "DELETE",
    "/live/videos/{video_id}",
    summary="Delete a video (and cancel its upload or work)",
    tag=TAG,
    status=204,
)
async def delete_video(request: web.Request) -> web.Response:
    who = principal(request)
    video_id = path_id(request, "video_id")
    async with request.app[DB].session() as session:
        await owned(session, LiveVideo, video_id, who)
    require_editor(who)
    service = request.app.get(LIVE_VIDEOS)
    if service is None:
        await store.delete(request.app[DB], video_id)
        return web.Response(status=204)
    await service.cancel(video_id)
    async with request.app[UPLOAD_LOCKS].hold(video_id):
        directory = await store.delete(request.app[DB], video_id)
    # After the commit: a crash in between leaves a directory no row names (harmless, never served).
    await service.remove_files(directory)
    return web.Response(status=204)


# --- the upload (tus) --------------------------------------------------------------------------------------


async def _uploading(request: web.Request, video_id: int) -> LiveVideo:
    async with request.app[DB].session() as session:
        video = await owned(session, LiveVideo, video_id, principal(request))
    return video


@api.op(
    "HEAD",
    "/live/videos/{video_id}/upload",
    summary="The upload's offset (Upload-Offset header)",
    tag=TAG,
    status=204,
)
async def upload_offset(request: web.Request) -> web.Response:
    video_id = path_id(request, "video_id")
    await _uploading(request, video_id)
    _service(request)
    # Behind a PATCH still writing (a dropped connection's), so the offset includes what it kept.
    async with request.app[UPLOAD_LOCKS].hold(video_id):
        video = await _uploading(request, video_id)
    return web.Response(
        status=204,
        headers={
            "Upload-Offset": str(video.received_bytes),
            "Upload-Length": str(video.size_bytes),
            "Tus-Resumable": TUS_VERSION,
            "Cache-Control": "no-store",
        },
    )


def _offset_header(request: web.Request) -> int:
    raw = request.headers.get("Upload-Offset", "")
    if not raw.isdigit() or len(raw) > 16:
        raise ApiError(
            400, "bad_offset", "Upload-Offset: a non-negative integer is required", "Upload-Offset"
        )
    return int(raw)


def _open_at(path: Path, offset: int) -> BinaryIO:
    """The upload file at ``offset``, cut there (bytes past the stored offset were never counted)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    f = os.fdopen(fd, "r+b")
    f.truncate(offset)
    f.seek(offset)
    return f


def _finish(f: BinaryIO) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


@api.op(
    "PATCH",
    "/live/videos/{video_id}/upload",
    summary="Append a chunk at Upload-Offset (body: application/offset+octet-stream)",
    tag=TAG,
    status=204,
    errors=(415,),
)
async def upload_chunk(request: web.Request) -> web.Response:
    video_id = path_id(request, "video_id")
    who = principal(request)
    require_editor(who)
    await _uploading(request, video_id)  # 404 before anything else for another account's video
    if request.content_type not in CHUNK_TYPES:
        raise ApiError(415, "bad_content_type", "Content-Type: application/offset+octet-stream is required")
    offset = _offset_header(request)
    service = _service(request)
    db, clock = request.app[DB], request.app[CLOCK]
    async with request.app[UPLOAD_LOCKS].hold(video_id):
        video = await _uploading(request, video_id)
        if video.state != "uploading":
            raise ApiError(409, "bad_state", f"the video is {video.state}, its upload is complete", "state")
        if offset != video.received_bytes:
            at = video.received_bytes
            raise ApiError(409, "offset_mismatch", f"Upload-Offset: the upload is at {at}", "Upload-Offset")
        remaining = video.size_bytes - offset
        declared = request.content_length
        if declared is not None and declared > remaining:
            raise ApiError(
                422, "too_large", f"the chunk goes {declared - remaining} bytes past the declared size"
            )
        path = service.root / video.directory / SOURCE_NAME
        f = await asyncio.to_thread(_open_at, path, offset)
        written = 0
        too_long = False
        try:
            async for received in request.content.iter_chunked(READ_SIZE):
                data = received
                if written + len(data) > remaining:
                    data = data[: remaining - written]
                    too_long = True
                await asyncio.to_thread(f.write, data)
                written += len(data)
                if too_long:
                    break
        except Exception as exc:  # a dropped connection: keep what arrived, the client resumes from HEAD
            log.info(
                "video %s: upload chunk cut off after %d bytes (%s)", video_id, written, type(exc).__name__
            )
        finally:
            await asyncio.to_thread(_finish, f)
        video = await store.received(db, video_id, offset=offset, new_offset=offset + written, now=clock())
    if video.state == "checking":
        service.wake()
    if too_long:
        raise ApiError(422, "too_large", "the chunk went past the declared size (the rest was not kept)")
    return web.Response(
        status=204, headers={"Upload-Offset": str(video.received_bytes), "Tus-Resumable": TUS_VERSION}
    )


def install(api_app: web.Application, service: VideoService | None) -> None:
    """Give the API application its videos service (None: uploads answer 409 unavailable)."""
    if service is not None:
        api_app[LIVE_VIDEOS] = service
        api_app[UPLOAD_LOCKS] = _UploadLocks()


__all__ = ["LIVE_VIDEOS", "UPLOAD_LOCKS", "VideoService", "api", "install", "require_editor"]
