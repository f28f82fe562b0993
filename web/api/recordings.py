"""Recordings: list, detail, signed download links, delete, retention, retry; start and stop in a meeting."""

from __future__ import annotations

import mimetypes
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal, Protocol

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import select

from rooms.errors import RoomsError
from rooms.models import Meeting
from rooms.recordings import store
from rooms.recordings.models import STATES, Recording
from rooms.recordings.rules import InvalidLink, safe_name, sign_link, verify_link
from web.api.base import (
    CLOCK,
    DB,
    SECRET_KEY,
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
from web.api.schemas import Body, Id, ListQuery, Out

api = Api()
TAG = "recordings"
DEFAULT_LINK_TTL = timedelta(hours=1)


class RecordingService(Protocol):
    """What the API needs of recording in this process (the composition root provides it)."""

    @property
    def root(self) -> Path:
        """The directory every recording's directory is in."""
        ...

    @property
    def link_ttl(self) -> timedelta: ...

    async def start(self, meeting_id: int, *, started_by: str) -> bool:
        """Start recording the live meeting; False if it is not live in this process. Raises RoomsError."""
        ...

    async def stop(self, meeting_id: int) -> bool:
        """Stop recording it; False if it is not live here. Raises RoomsError (e.g. not being recorded)."""
        ...

    async def render(self, recording_id: int) -> None:
        """Render the composite again (a failed recording's retry), in the background."""
        ...

    async def remove_files(self, directory: str) -> None:
        """Delete a deleted recording's directory (idempotent)."""
        ...


RECORDINGS = web.AppKey("recordings", RecordingService)


# --- bodies ----------------------------------------------------------------------------------------------


class RecordingFileOut(Out):
    id: int
    kind: str = Field(description="audio, video, screen, timeline or composite")
    name: str
    participant: str
    size_bytes: int
    duration_ms: int | None
    checksum: str = Field(description='"sha256:<hex>" of the file')


class RecordingOut(Out):
    id: int
    account_id: int
    meeting_id: int | None
    room_id: int | None
    state: Literal["recording", "finalising", "rendering", "ready", "failed", "deleted"]
    progress: int = Field(description="the composite render's progress, 0-100")
    error: str | None = Field(description="why the recording failed (a failed render can be retried)")
    started_by: str
    duration_ms: int | None
    size_bytes: int
    started_at: datetime
    ended_at: datetime | None
    retain_until: datetime | None = Field(description="when the scheduler purges it; null: kept")
    deleted_at: datetime | None
    composite: bool = Field(description="a composite (MP4) can be played and downloaded")
    files: list[RecordingFileOut]


class RecordingFilter(ListQuery):
    account_id: Id | None = None
    meeting_id: Id | None = None
    room_id: Id | None = None
    state: Literal["recording", "finalising", "rendering", "ready", "failed", "deleted"] | None = None


class RecordingPatch(Body):
    retain_until: datetime | None = Field(description="a future instant, or null to keep it until deleted")


class LinkIn(Body):
    file_id: Id | None = Field(default=None, description="a file of the recording; absent: the composite")


class LinkOut(BaseModel):
    url: str = Field(description="relative to /api/v1; works without a session until expires_at")
    expires_at: datetime


class RecordingAction(Body):
    action: Literal["start", "stop"]


class DownloadQuery(Body):
    token: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


def _out(recording: Recording) -> RecordingOut:
    return RecordingOut(
        id=recording.id,
        account_id=recording.account_id,
        meeting_id=recording.meeting_id,
        room_id=recording.room_id,
        state=recording.state,
        progress=recording.progress,
        error=recording.error,
        started_by=recording.started_by,
        duration_ms=recording.duration_ms,
        size_bytes=recording.size_bytes,
        started_at=recording.started_at,
        ended_at=recording.ended_at,
        retain_until=recording.retain_until,
        deleted_at=recording.deleted_at,
        composite=recording.composite_path is not None and recording.state == "ready",
        files=[RecordingFileOut.model_validate(f) for f in recording.files],
    )


def _service(request: web.Request) -> RecordingService | None:
    return request.app.get(RECORDINGS)


def _require_editor(who: Principal) -> None:
    if who.user.role not in ("admin", "organizer"):
        raise ApiError(403, "forbidden", "this needs the admin or organizer role")


# --- listing and detail ----------------------------------------------------------------------------------


@api.op(
    "GET",
    "/recordings",
    summary="List recordings, newest first",
    tag=TAG,
    response=RecordingOut,
    many=True,
    query=RecordingFilter,
)
async def list_recordings(request: web.Request) -> web.Response:
    who = principal(request)
    q = parse_query(request, RecordingFilter)
    query = (
        select(Recording)
        .order_by(Recording.started_at.desc(), Recording.id.desc())
        .limit(q.limit)
        .offset(q.offset)
    )
    account_id = who.account_id if who.account_id is not None else q.account_id
    if account_id is not None:
        query = query.where(Recording.account_id == account_id)
    if q.meeting_id is not None:
        query = query.where(Recording.meeting_id == q.meeting_id)
    if q.room_id is not None:
        query = query.where(Recording.room_id == q.room_id)
    if q.state is not None:
        query = query.where(Recording.state == q.state)
    async with request.app[DB].session() as session:
        rows = (await session.scalars(query)).all()
    return send([_out(r) for r in rows])


@api.op(
    "GET",
    "/meetings/{meeting_id}/recordings",
    summary="The recordings of a meeting",
    tag=TAG,
    response=RecordingOut,
    many=True,
)
async def meeting_recordings(request: web.Request) -> web.Response:
    async with request.app[DB].session() as session:
        meeting = await owned(session, Meeting, path_id(request, "meeting_id"), principal(request))
        rows = (
            await session.scalars(
                select(Recording).where(Recording.meeting_id == meeting.id).order_by(Recording.id)
            )
        ).all()
    return send([_out(r) for r in rows])


@api.op("GET", "/recordings/{recording_id}", summary="Get a recording", tag=TAG, response=RecordingOut)
async def get_recording(request: web.Request) -> web.Response:
    async with request.app[DB].session() as session:
        recording = await owned(session, Recording, path_id(request, "recording_id"), principal(request))
    return send(_out(recording))


# --- changes -----------------------------------------------------------------------------------------------


@api.op(
    "PATCH",
    "/recordings/{recording_id}",
    summary="Change how long a recording is kept (admin)",
    tag=TAG,
    body=RecordingPatch,
    response=RecordingOut,
)
async def patch_recording(request: web.Request) -> web.Response:
    who = principal(request)
    recording_id = path_id(request, "recording_id")
    async with request.app[DB].writer() as session:
        recording = await owned(session, Recording, recording_id, who)
        who.require_admin()
        body = await parse_body(request, RecordingPatch)
        now = request.app[CLOCK]()
        if body.retain_until is not None:
            if body.retain_until.tzinfo is None:
                raise ApiError(422, "invalid", "retain_until: needs a time zone offset", "retain_until")
            if body.retain_until <= now:
                raise ApiError(422, "invalid", "retain_until: must be in the future", "retain_until")
        if recording.state == "deleted":
            raise ApiError(409, "bad_state", "the recording is deleted", "state")
        recording.retain_until = body.retain_until
        recording.updated_at = now
        await session.commit()
    async with request.app[DB].session() as session:
        recording = await owned(session, Recording, recording_id, who)
    return send(_out(recording))


@api.op(
    "DELETE",
    "/recordings/{recording_id}",
    summary="Delete a recording and its files (admin)",
    tag=TAG,
    status=204,
)
async def delete_recording(request: web.Request) -> web.Response:
    who = principal(request)
    recording_id = path_id(request, "recording_id")
    async with request.app[DB].session() as session:
        await owned(session, Recording, recording_id, who)
    who.require_admin()
    recording = await store.delete(request.app[DB], recording_id, now=request.app[CLOCK]())
    service = _service(request)
    if service is not None:
        # After the commit: a crash in between leaves files the purge job removes (state "deleted").
        await service.remove_files(recording.directory)
    return web.Response(status=204)


@api.op(
    "POST",
    "/recordings/{recording_id}/retry",
    summary="Render a failed recording's composite again",
    tag=TAG,
    response=RecordingOut,
    status=202,
)
async def retry_recording(request: web.Request) -> web.Response:
    who = principal(request)
    recording_id = path_id(request, "recording_id")
    async with request.app[DB].session() as session:
        recording = await owned(session, Recording, recording_id, who)
    _require_editor(who)
    if recording.state != "failed":
        raise ApiError(
            409, "bad_state", f"only a failed recording is retried (it is {recording.state})", "state"
        )
    service = _service(request)
    if service is None:
        raise ApiError(409, "unavailable", "this server does not render recordings")
    await store.mark(request.app[DB], recording_id, "rendering", now=request.app[CLOCK]())
    await service.render(recording_id)
    async with request.app[DB].session() as session:
        recording = await owned(session, Recording, recording_id, who)
    return send(_out(recording), 202)


@api.op(
    "POST",
    "/meetings/{meeting_id}/recording",
    summary="Start or stop recording a live meeting",
    tag=TAG,
    body=RecordingAction,
    status=204,
)
async def meeting_recording(request: web.Request) -> web.Response:
    who = principal(request)
    meeting_id = path_id(request, "meeting_id")
    async with request.app[DB].session() as session:
        meeting = await owned(session, Meeting, meeting_id, who)
    _require_editor(who)
    body = await parse_body(request, RecordingAction)
    if meeting.ended_at is not None:
        raise ApiError(409, "already_ended", "the meeting has ended")
    service = _service(request)
    if service is None:
        raise ApiError(409, "not_live", "the meeting is not live on this server")
    name = who.user.display_name or who.user.email
    live = (
        await service.start(meeting_id, started_by=name)
        if body.action == "start"
        else await service.stop(meeting_id)
    )
    if not live:
        raise ApiError(409, "not_live", "the meeting is not live on this server")
    return web.Response(status=204)


# --- signed downloads -------------------------------------------------------------------------------------


@api.op(
    "POST",
    "/recordings/{recording_id}/links",
    summary="A signed, expiring download link for a recording's composite or one of its files",
    tag=TAG,
    body=LinkIn,
    response=LinkOut,
    status=201,
)
async def recording_link(request: web.Request) -> web.Response:
    who = principal(request)
    body = await parse_body(request, LinkIn)
    async with request.app[DB].session() as session:
        recording = await owned(session, Recording, path_id(request, "recording_id"), who)
    if recording.state == "deleted":
        raise ApiError(409, "bad_state", "the recording is deleted", "state")
    if body.file_id is None:
        if recording.composite_path is None or recording.state != "ready":
            raise ApiError(409, "not_ready", "the composite is not ready yet", "file_id")
        name = recording.composite_path
    else:
        found = next((f for f in recording.files if f.id == body.file_id), None)
        if found is None:
            raise ApiError(404, "not_found", "no such file in this recording", "file_id")
        name = found.name
    service = _service(request)
    token, expires_at = sign_link(
        request.app[SECRET_KEY],
        recording_id=recording.id,
        account_id=recording.account_id,
        file_name=name,
        now=request.app[CLOCK](),
        ttl=service.link_ttl if service is not None else DEFAULT_LINK_TTL,
    )
    return send(LinkOut(url=f"recordings/download?token={token}", expires_at=expires_at), 201)


@api.op(
    "GET",
    "/recordings/download",
    summary="Download (or play) a recording's file with a signed link; no session needed",
    tag=TAG,
    query=DownloadQuery,
    auth=False,
    content_type="application/octet-stream",
)
async def download(request: web.Request) -> web.StreamResponse:
    app = request.app
    q = parse_query(request, DownloadQuery)
    try:
        claims = verify_link(app[SECRET_KEY], q.token, now=app[CLOCK]())
    except InvalidLink as exc:
        # 404 for every bad link (altered, expired, another server's): a link names nothing to a stranger.
        raise ApiError(404, exc.code, exc.message, "token") from None
    async with app[DB].session() as session:
        recording = await session.get(Recording, claims.recording_id)
    if (
        recording is None
        or recording.account_id != claims.account_id
        or recording.state == "deleted"
        or all(f.name != claims.file_name for f in recording.files)
    ):
        raise ApiError(404, "not_found", "no such recording file", "token")
    service = _service(request)
    if service is None:
        raise ApiError(404, "not_found", "recordings are not stored on this server", "token")
    path = _inside(service.root, recording.directory, claims.file_name)
    if not path.is_file():
        raise ApiError(404, "not_found", "the recording's file is missing", "token")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".mkv":
        content_type = "video/x-matroska"
    # FileResponse answers Range requests, so a <video> can seek; the file is read off the event loop.
    return web.FileResponse(
        path,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": f'inline; filename="{path.name}"',
            "Cache-Control": "private, no-store",
        },
    )


def _inside(root: Path, directory: str, name: str) -> Path:
    """root/directory/name, refusing anything that would leave the root (names are checked when stored;
    this is the second lock on the door)."""
    try:
        path = (root / safe_name(directory) / safe_name(name)).resolve()
    except RoomsError:
        raise ApiError(404, "not_found", "no such recording file", "token") from None
    if not path.is_relative_to(root.resolve()):
        raise ApiError(404, "not_found", "no such recording file", "token")
    return path


__all__ = ["RECORDINGS", "STATES", "RecordingService", "api"]
