"""WHIP ingest (RFC 9725) and WHEP playback as an aiohttp sub-application the composition root mounts.

    POST   /whip          body: SDP offer (application/sdp) -> 201, SDP answer, Location: .../whip/<id>
    DELETE /whip/<id>     ends the session
    POST   /whep          body: recvonly SDP offer -> 201, SDP answer, Location: .../whep/<id>
    DELETE /whep/<id>

``authorize(request)`` (sync or async) returns the meeting id the request may use, or raises an aiohttp HTTP
error (401/403). Trickle ICE (PATCH) is not offered: aiortc gathers all candidates before answering.
A WHIP session publishes its audio as "mic" and its video as "camera"; a WHEP session shows the active speaker
(else the first participant publishing) and follows it.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from sfu.errors import BadRequest, Closed
from sfu.sdp import media_sections
from sfu.sfu import Sfu

log = logging.getLogger(__name__)

Authorize = Callable[[web.Request], "str | Awaitable[str]"]
SDP_TYPE = "application/sdp"


def whip_app(sfu: Sfu, authorize: Authorize) -> web.Application:
    # session id -> (meeting id, "whip" | "whep")
    sessions: dict[str, tuple[str, str]] = {}

    async def meeting_of(request: web.Request) -> str:
        result = authorize(request)
        meeting_id = await result if inspect.isawaitable(result) else result
        if not isinstance(meeting_id, str) or not meeting_id:
            raise web.HTTPForbidden(text="not allowed in any meeting")
        return meeting_id

    async def read_offer(request: web.Request) -> str:
        if request.content_type != SDP_TYPE:
            raise web.HTTPUnsupportedMediaType(text=f"Content-Type must be {SDP_TYPE}")
        offer = await request.text()
        if not offer.startswith("v=0"):
            raise web.HTTPBadRequest(text="body: not an SDP offer")
        return offer

    def created(request: web.Request, session_id: str, answer: str) -> web.Response:
        location = f"{request.path.rstrip('/')}/{session_id}"
        return web.Response(
            status=201, body=answer.encode(), content_type=SDP_TYPE, headers={"Location": location}
        )

    async def start(request: web.Request, kind: str) -> web.Response:
        meeting_id = await meeting_of(request)
        offer = await read_offer(request)
        session_id = f"{kind}-{uuid.uuid4().hex[:16]}"
        try:
            router = sfu.router(meeting_id)
            peer = await router.add_peer(session_id, publish=kind == "whip")
            try:
                if kind == "whip":
                    sources = {
                        mid: "mic" if media == "audio" else "camera"
                        for mid, media in media_sections(offer).items()
                    }
                    answer = await peer.answer_publish(offer, sources)
                else:
                    answer = await peer.answer_playback(offer)
            except BaseException:
                await router.remove_peer(session_id)
                raise
        except BadRequest as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        except Closed as exc:
            raise web.HTTPServiceUnavailable(text=str(exc)) from exc
        sessions[session_id] = (meeting_id, kind)
        log.info("%s session %s started in meeting %s", kind, session_id, meeting_id)
        return created(request, session_id, answer)

    async def stop(request: web.Request, kind: str) -> web.Response:
        meeting_id = await meeting_of(request)
        session_id = request.match_info["session_id"]
        if sessions.get(session_id) != (meeting_id, kind):
            raise web.HTTPNotFound(text=f"no {kind} session {session_id!r}")
        del sessions[session_id]
        router = sfu.routers.get(meeting_id)
        if router is not None:
            await router.remove_peer(session_id)
        return web.Response(status=200)

    async def post_whip(request: web.Request) -> web.Response:
        return await start(request, "whip")

    async def post_whep(request: web.Request) -> web.Response:
        return await start(request, "whep")

    async def delete_whip(request: web.Request) -> web.Response:
        return await stop(request, "whip")

    async def delete_whep(request: web.Request) -> web.Response:
        return await stop(request, "whep")

    app = web.Application()
    app.router.add_post("/whip", post_whip)
    app.router.add_delete("/whip/{session_id}", delete_whip)
    app.router.add_post("/whep", post_whep)
    app.router.add_delete("/whep/{session_id}", delete_whep)
    return app
