"""The watch page's one route: a recording's state by the signed link the host and the e-mail get.

The link is signed for the composite before it exists (yunhui/recordings.py), so the page can follow the
rendering and then play it, with no session: the host of a meeting need not be an admin.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from rooms.models import Room
from rooms.recordings.models import Recording
from rooms.recordings.rules import InvalidLink, verify_link
from web.api.base import CLOCK, DB, SECRET_KEY, Api, ApiError, parse_query, send
from web.api.recordings import TAG, DownloadQuery

api = Api()


class WatchOut(BaseModel):
    state: str = Field(description="recording, finalising, rendering, ready or failed")
    progress: int = Field(description="the composite's rendering, 0-100")
    title: str = Field(description="the room's name")
    started_at: datetime
    duration_ms: int | None
    video_url: str | None = Field(description="relative to /api/v1, once ready: plays the composite")
    expires_at: datetime


@api.op(
    "GET",
    "/recordings/watch",
    summary="A recording's state and, once rendered, its video, by a signed watch link; no session needed",
    tag=TAG,
    query=DownloadQuery,
    response=WatchOut,
    auth=False,
)
async def watch(request: web.Request) -> web.Response:
    app = request.app
    q = parse_query(request, DownloadQuery)
    try:
        claims = verify_link(app[SECRET_KEY], q.token, now=app[CLOCK]())
    except InvalidLink as exc:
        raise ApiError(404, exc.code, exc.message, "token") from None
    async with app[DB].session() as session:
        recording = await session.get(Recording, claims.recording_id)
        room = await session.get(Room, recording.room_id) if recording and recording.room_id else None
    if recording is None or recording.account_id != claims.account_id or recording.state == "deleted":
        raise ApiError(404, "not_found", "no such recording", "token")
    ready = recording.state == "ready" and recording.composite_path == claims.file_name
    return send(
        WatchOut(
            state=recording.state,
            progress=recording.progress,
            title=room.name if room is not None else "",
            started_at=recording.started_at,
            duration_ms=recording.duration_ms,
            video_url=f"recordings/download?token={q.token}" if ready else None,
            expires_at=claims.expires_at,
        )
    )
