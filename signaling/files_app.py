"""HTTP side of file sharing: upload into a live meeting, download through a signed link."""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from signaling.files import FILE_ID
from signaling.messages import Role
from signaling.server import MeetingServer

logger = logging.getLogger(__name__)

SERVER: web.AppKey[MeetingServer] = web.AppKey("meeting_server", MeetingServer)


def _body(code: str, message: str, field: str | None) -> str:
    return json.dumps({"error": {"code": code, "message": message, **({"field": field} if field else {})}})


def _error(status: type[web.HTTPError], code: str, message: str, field: str | None = None) -> web.HTTPError:
    return status(text=_body(code, message, field), content_type="application/json")


def _meeting_id(request: web.Request) -> int:
    raw = request.match_info["meeting_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise _error(web.HTTPBadRequest, "bad_request", "the meeting id must be a number", "meeting_id")
    return int(raw)


async def upload(request: web.Request) -> web.Response:
    """POST /{meeting_id}?p=&e=&s= with a multipart ``file`` field: share a file in the meeting's chat."""
    server = request.app[SERVER]
    meeting_id = _meeting_id(request)
    now = server.scheduler.now()
    try:
        participant_id = server.links.verify("upload", meeting_id, "", dict(request.query), now)
    except ValueError as exc:
        raise _error(web.HTTPForbidden, "forbidden", str(exc)) from None
    conference = server.conference_by_meeting(meeting_id)
    participant = None if conference is None else conference.participant(participant_id)
    if (
        conference is None
        or participant is None
        or not participant.ready
        or participant.role is Role.RECORDER
    ):
        raise _error(web.HTTPForbidden, "forbidden", "only participants of a live meeting may share files")
    try:
        reader = await request.multipart()
        field = await reader.next()
    except (ValueError, AssertionError) as exc:
        raise _error(web.HTTPBadRequest, "bad_request", f"expected multipart/form-data: {exc}") from None
    if not isinstance(field, BodyPartReader) or field.name != "file":
        raise _error(web.HTTPBadRequest, "bad_request", "the form needs a 'file' field", "file")
    limit = server.settings.upload_max_bytes
    file_id, part = await asyncio.to_thread(server.files.create, meeting_id)
    size = 0
    try:
        with await asyncio.to_thread(part.open, "wb") as out:
            while chunk := await field.read_chunk(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise web.HTTPRequestEntityTooLarge(
                        max_size=limit,
                        actual_size=size,
                        text=_body("too_large", f"a shared file has at most {limit} bytes", "file"),
                        content_type="application/json",
                    )
                await asyncio.to_thread(out.write, chunk)
        if size == 0:
            raise _error(web.HTTPBadRequest, "bad_request", "the file is empty", "file")
        stored = await asyncio.to_thread(
            server.files.commit,
            meeting_id,
            file_id,
            name=field.filename or "file",
            uploader_id=participant_id,
            now=now,
        )
    except BaseException:
        await asyncio.to_thread(server.files.discard, part)
        raise
    if participant.closed:
        raise _error(web.HTTPForbidden, "forbidden", "you left the meeting during the upload")
    conference.share_file(participant, stored)
    body = {
        "file_id": stored.file_id,
        "name": stored.name,
        "size": stored.size,
        "content_type": stored.content_type,
    }
    return web.json_response(body, status=201)


async def download(request: web.Request) -> web.StreamResponse:
    """GET /{meeting_id}/{file_id}?p=&e=&s=: a shared file, for the participant its link was signed for."""
    server = request.app[SERVER]
    meeting_id = _meeting_id(request)
    file_id = request.match_info["file_id"]
    if not FILE_ID.match(file_id):
        raise _error(web.HTTPNotFound, "not_found", "no such file")
    try:
        server.links.verify("download", meeting_id, file_id, dict(request.query), server.scheduler.now())
    except ValueError as exc:
        raise _error(web.HTTPForbidden, "forbidden", str(exc)) from None
    stored = await asyncio.to_thread(server.files.lookup, meeting_id, file_id)
    if stored is None:
        raise _error(web.HTTPNotFound, "not_found", "the file has been removed")
    name = stored.name
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "'")
    headers = {
        "Content-Type": stored.content_type,
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    return web.FileResponse(stored.path, headers=headers)


def files_app(server: MeetingServer) -> web.Application:
    """The file-sharing sub-application; mount it at the server's ``files_prefix`` (default /files)."""
    app = web.Application()
    app[SERVER] = server
    app.router.add_post("/{meeting_id}", upload)
    app.router.add_get("/{meeting_id}/{file_id}", download)
    return app
