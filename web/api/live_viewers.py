"""The viewers' side of live channels: the public state, viewer sessions, and HLS playlists and segments.

Every playlist and segment request carries a viewer session's signed ``s`` token and moves the session's
last_seen (segments also count: a session that fetched one is a view). The playlists are the engine's files
with each segment URI rewritten to carry the token. The public never sees the rehearsal: before go-live the
public answer is "not_started", and a public session gets only segments from the first public one on (the
EVENT playlist's first), which is also why the replay excludes the rehearsal.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from rooms.errors import RoomsError
from rooms.live import store
from rooms.live.models import LiveChannel
from rooms.live.rules import (
    VIEWER_TTL,
    InvalidViewerToken,
    sign_viewer,
    verify_staff,
    verify_viewer,
    viewer_phase,
)
from web.api.base import CLOCK, DB, SECRET_KEY, Api, ApiError, parse_body, parse_query, path_id, send
from web.api.live import LIVE_SERVICE
from web.api.live_activity import ACTIVITY
from web.api.schemas import Body
from web.proxies import CLIENT_ADDRESS

api = Api()
TAG = "live viewers"
INDEX = "index.m3u8"
EVENT = "event.m3u8"
# The engine's segment files (recording/live/channel.py): a plain name, a number, a media suffix.
SEGMENT = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,40}?(\d{1,12})\.(ts|m4s|mp4|aac)$")
RUN_DIR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPES = {"ts": "video/mp2t", "m4s": "video/iso.segment", "mp4": "video/mp4", "aac": "audio/aac"}
# A run's first public segment (the EVENT playlist's first), per run directory.
FIRST_PUBLIC: dict[Path, int] = {}
PublicState = Literal["starting_soon", "live", "replay", "unavailable"]


class PublicChannelOut(BaseModel):
    id: int
    title: str
    language: str
    state: PublicState = Field(
        description="starting_soon (draft or rehearsal), live, replay (ended), unavailable"
    )
    started_at: datetime | None
    ended_at: datetime | None
    viewers: int | None = Field(description="watching now, when the channel shows it; else null")


class SessionIn(Body):
    viewer_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")] | None = Field(
        default=None, description="the page's id of this viewer (localStorage); absent: address and agent"
    )
    staff_token: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        default=None, description="a staff token: watch the rehearsal"
    )


class SessionOut(BaseModel):
    s: str = Field(description="the session token every playlist and segment URL carries")
    phase: Literal["rehearsal", "live", "replay"]
    playlist: str = Field(description="the playlist URL, relative to /api/v1")
    expires_at: datetime


class MediaQuery(Body):
    s: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


PUBLIC_STATES: dict[str, PublicState] = {
    "draft": "starting_soon",
    "rehearsal": "starting_soon",
    "live": "live",
    "ended": "replay",
}


def _public_state(state: str) -> PublicState:
    return PUBLIC_STATES.get(state, "unavailable")


def _not_started(channel: LiveChannel) -> ApiError:
    if channel.state == "archived":
        return ApiError(409, "archived", "this live channel is archived; its replay is no longer public")
    return ApiError(409, "not_started", "the live stream has not started yet")


async def _load(request: web.Request) -> LiveChannel:
    channel_id = path_id(request, "channel_id")
    try:
        return await store.get(request.app[DB], channel_id)
    except RoomsError:
        raise ApiError(404, "not_found", "no such live channel") from None


@api.op(
    "GET",
    "/live/{channel_id:[0-9]+}/public",
    summary="A live channel as its viewers see it (no session needed)",
    tag=TAG,
    response=PublicChannelOut,
    auth=False,
)
async def public_channel(request: web.Request) -> web.Response:
    channel = await _load(request)
    viewers = None
    if channel.show_viewer_count and channel.state == "live":
        viewers = await store.concurrent_now(request.app[DB], channel.id, "live", now=request.app[CLOCK]())
    out = PublicChannelOut(
        id=channel.id,
        title=channel.title,
        language=channel.language,
        state=_public_state(channel.state),
        started_at=channel.started_at,
        ended_at=channel.ended_at,
        viewers=viewers,
    )
    return send(out)


@api.op(
    "POST",
    "/live/{channel_id:[0-9]+}/sessions",
    summary="Open a viewer session: returns the signed token of its playlist and segment URLs",
    tag=TAG,
    body=SessionIn,
    response=SessionOut,
    status=201,
    auth=False,
)
async def open_session(request: web.Request) -> web.Response:
    channel = await _load(request)
    body = await parse_body(request, SessionIn)
    app = request.app
    now = app[CLOCK]()
    phase = viewer_phase(channel.state)
    if body.staff_token is not None:
        try:
            verify_staff(app[SECRET_KEY], body.staff_token, channel_id=channel.id, now=now)
        except InvalidViewerToken as exc:
            raise ApiError(403, exc.code, exc.message, "staff_token") from None
        if channel.state == "rehearsal":
            phase = "rehearsal"
    if phase is None or channel.state == "archived" or channel.directory is None:
        raise _not_started(channel)
    user_agent = request.headers.get("User-Agent", "")
    viewer_id = body.viewer_id
    if viewer_id is None:
        # No id from the page (storage blocked): the same address and agent are one viewer, as Gcore counts.
        resolve = request.config_dict.get(CLIENT_ADDRESS)  # the root app's (trusted proxies); else the peer
        address = resolve(request) if resolve is not None else (request.remote or "")
        viewer_id = "h-" + hashlib.sha256(f"{address}\n{user_agent}".encode()).hexdigest()[:40]
    session_id = await store.open_session(
        app[DB], channel, viewer_id=viewer_id, phase=phase, user_agent=user_agent, now=now
    )
    token = sign_viewer(app[SECRET_KEY], session_id=session_id, channel_id=channel.id, phase=phase, now=now)
    playlist = f"live/{channel.id}/playlist.m3u8?s={token}"
    return send(SessionOut(s=token, phase=phase, playlist=playlist, expires_at=now + VIEWER_TTL), 201)


async def _viewer(request: web.Request) -> tuple[LiveChannel, int, str, Path]:
    """The channel, session id and phase of a media request, and the run's directory; 4xx otherwise."""
    channel = await _load(request)
    app = request.app
    token = parse_query(request, MediaQuery).s
    try:
        claims = verify_viewer(app[SECRET_KEY], token, channel_id=channel.id, now=app[CLOCK]())
    except InvalidViewerToken as exc:
        raise ApiError(403, exc.code, exc.message, "s") from None
    if claims.phase != "rehearsal" and viewer_phase(channel.state) is None:
        raise _not_started(channel)
    if channel.state == "archived":
        raise _not_started(channel)
    service = app.get(LIVE_SERVICE)
    if service is None or channel.directory is None or not RUN_DIR.match(channel.directory):
        raise ApiError(404, "not_found", "this channel's stream is not served here")
    return channel, claims.session_id, claims.phase, service.root / channel.directory


def _rewrite(text: str, token: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            lines.append(line)
        elif SEGMENT.match(line):
            lines.append(f"segments/{line}?s={token}")
        # anything else is left out: never hand out a URI we would not serve
    return "\n".join(lines) + "\n"


def _first_segment(text: str) -> int | None:
    for line in text.splitlines():
        found = SEGMENT.match(line) if line and not line.startswith("#") else None
        if found:
            return int(found.group(1))
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None


async def _touch(request: web.Request, session_id: int, channel_id: int, *, segment: bool) -> None:
    activity = request.app.get(ACTIVITY)
    if activity is not None:
        activity.add(session_id, request.app[CLOCK](), 1 if segment else 0)
        return
    found = await store.touch(
        request.app[DB], session_id, channel_id, segment=segment, now=request.app[CLOCK]()
    )
    if not found:
        raise ApiError(403, "invalid_token", "the viewer session no longer exists; reload the page", "s")


@api.op(
    "GET",
    "/live/{channel_id:[0-9]+}/playlist.m3u8",
    summary="The channel's HLS playlist for a viewer session (live window, or the replay once ended)",
    tag=TAG,
    query=MediaQuery,
    auth=False,
    content_type=PLAYLIST_TYPE,
)
async def playlist(request: web.Request) -> web.Response:
    channel, session_id, phase, directory = await _viewer(request)
    # Staff in rehearsal watch the live window; the public watches the live window once the first public
    # segment exists (EVENT exists from then on), and the EVENT playlist (ENDLIST: the replay) after the end.
    event = await asyncio.to_thread(_read, directory / EVENT)
    if phase == "rehearsal" or (channel.state == "live" and phase == "live"):
        if phase != "rehearsal" and event is None:
            raise ApiError(409, "not_started", "the live stream is starting; try again in a few seconds")
        text = await asyncio.to_thread(_read, directory / INDEX)
    else:
        text = event
    if text is None:
        raise ApiError(409, "not_started", "the live stream is starting; try again in a few seconds")
    await _touch(request, session_id, channel.id, segment=False)
    token = parse_query(request, MediaQuery).s
    return web.Response(
        text=_rewrite(text, token),
        content_type=PLAYLIST_TYPE,
        headers={"Cache-Control": "no-cache, no-store"},
    )


@api.op(
    "GET",
    "/live/{channel_id:[0-9]+}/segments/{name}",
    summary="One HLS segment of the channel for a viewer session",
    tag=TAG,
    query=MediaQuery,
    auth=False,
    content_type="video/mp2t",
)
async def segment(request: web.Request) -> web.StreamResponse:
    channel, session_id, phase, directory = await _viewer(request)
    name = request.match_info["name"]
    found = SEGMENT.match(name)
    if found is None:
        raise ApiError(404, "not_found", "no such segment", "name")
    if phase != "rehearsal":
        first = FIRST_PUBLIC.get(directory)
        if first is None:
            event = await asyncio.to_thread(_read, directory / EVENT)
            first = _first_segment(event) if event is not None else None
            if first is not None:  # never changes once the EVENT playlist exists: one read per run
                if len(FIRST_PUBLIC) > 1000:
                    FIRST_PUBLIC.clear()
                FIRST_PUBLIC[directory] = first
        if first is None or int(found.group(1)) < first:
            raise ApiError(404, "not_found", "no such segment", "name")  # a rehearsal segment
    path = directory / name  # the name matched SEGMENT: no separator, no dot-dot
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(404, "not_found", "no such segment", "name")
    await _touch(request, session_id, channel.id, segment=True)
    return web.FileResponse(
        path,
        headers={"Content-Type": SEGMENT_TYPES[found.group(2)], "Cache-Control": "private, max-age=3600"},
    )


__all__ = ["api"]
