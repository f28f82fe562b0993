"""HTTP side of file sharing: upload into a live meeting, download through a signed link."""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from signaling.files import FILE_ID, Quota, UploadLedger, Usage, quota_problem
from signaling.messages import Role
from signaling.server import MeetingServer

logger = logging.getLogger(__name__)

SERVER: web.AppKey[MeetingServer] = web.AppKey("meeting_server", MeetingServer)
LEDGER = web.AppKey("upload_ledger", UploadLedger)
# The quota check and the commit are one step, or two uploads finishing together could both fit.
COMMIT_LOCK = web.AppKey("upload_commit_lock", asyncio.Lock)


def _body(code: str, message: str, field: str | None) -> str:
    return json.dumps({"error": {"code": code, "message": message, **({"field": field} if field else {})}})


def _error(status: type[web.HTTPError], code: str, message: str, field: str | None = None) -> web.HTTPError:
    return status(text=_body(code, message, field), content_type="application/json")


def _quota_error(code: str, message: str) -> web.HTTPError:
    # A count is a rate of sorts (files are removed after the retention): 429; bytes are about size: 413.
    if code == "too_many_files":
        return _error(web.HTTPTooManyRequests, code, message, "file")
    return web.HTTPRequestEntityTooLarge(
        max_size=0,  # the sizes only feed aiohttp's default text, replaced here by the JSON body
        actual_size=0,
        text=_body(code, message, "file"),
        content_type="application/json",
    )


def _quotas(server: MeetingServer) -> tuple[Quota, Quota]:
    s = server.settings
    return (
        Quota(s.upload_max_files_per_participant, s.upload_max_bytes_per_participant),
        Quota(s.upload_max_files_per_meeting, s.upload_max_bytes_per_meeting),
    )


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
    # A file is announced in the public chat: it spends one of the sender's chat messages, so uploads cannot
    # flood the chat the rate limit protects.
    if not participant.chat_limit.allow(now):
        raise _error(web.HTTPTooManyRequests, "rate_limited", "too many chat messages and files; slow down")
    per_participant, per_meeting = _quotas(server)
    ledger = request.app[LEDGER]
    kept = await asyncio.to_thread(server.files.usage, meeting_id)
    problem = quota_problem(
        _merged(kept, ledger.usage(meeting_id)),
        participant_id,
        participant=per_participant,
        meeting=per_meeting,
        adding=Usage(1, 1),
    )
    if problem is not None:
        raise _quota_error(*problem)
    upload = ledger.open(meeting_id, participant_id)
    try:
        return await _receive(
            request, server, meeting_id=meeting_id, participant_id=participant_id, upload=upload, kept=kept
        )
    finally:
        ledger.close(meeting_id, upload)


def _merged(a: dict[str, Usage], b: dict[str, Usage]) -> dict[str, Usage]:
    return {key: a.get(key, Usage()) + b.get(key, Usage()) for key in a.keys() | b.keys()}


async def _receive(
    request: web.Request,
    server: MeetingServer,
    *,
    meeting_id: int,
    participant_id: str,
    upload: int,
    kept: dict[str, Usage],
) -> web.Response:
    """Stream the ``file`` field to disk, within the per-file limit and the quotas, then announce it."""
    now = server.scheduler.now()
    ledger = request.app[LEDGER]
    per_participant, per_meeting = _quotas(server)

    def check(size: int, kept: dict[str, Usage]) -> None:
        others = _merged(kept, ledger.usage(meeting_id, besides=upload))
        problem = quota_problem(
            others, participant_id, participant=per_participant, meeting=per_meeting, adding=Usage(1, size)
        )
        if problem is not None:
            raise _quota_error(*problem)

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
                ledger.grow(meeting_id, upload, size)
                check(size, kept)  # an early stop; the authoritative check is at the commit
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
        async with request.app[COMMIT_LOCK]:
            check(size, await asyncio.to_thread(server.files.usage, meeting_id))
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
    conference = server.conference_by_meeting(meeting_id)
    participant = None if conference is None else conference.participant(participant_id)
    if conference is None or participant is None or participant.closed:
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
        holder = server.links.verify(
            "download", meeting_id, file_id, dict(request.query), server.scheduler.now()
        )
    except ValueError as exc:
        raise _error(web.HTTPForbidden, "forbidden", str(exc)) from None
    # A link outlives its holder's stay (it expires with the file): someone removed, or gone, or the meeting
    # over, must not keep reading what the meeting shares.
    conference = server.conference_by_meeting(meeting_id)
    participant = None if conference is None else conference.participant(holder)
    if participant is None or participant.closing or participant.closed:
        raise _error(
            web.HTTPForbidden, "forbidden", "only participants still in the meeting may download its files"
        )
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
    app[LEDGER] = UploadLedger()
    app[COMMIT_LOCK] = asyncio.Lock()
    app.router.add_post("/{meeting_id}", upload)
    app.router.add_get("/{meeting_id}/{file_id}", download)
    return app
