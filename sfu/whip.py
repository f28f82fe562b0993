"""WHIP ingest (RFC 9725) and WHEP playback as an aiohttp sub-application the composition root mounts.

    POST   /whip          body: SDP offer (application/sdp) -> 201, SDP answer, Location: .../whip/<id>
    DELETE /whip/<id>     ends the session
    POST   /whep          body: recvonly SDP offer -> 201, SDP answer, Location: .../whep/<id>
    DELETE /whep/<id>

``authorize(request)`` (sync or async) returns the meeting id the request may use, or raises an aiohttp HTTP
error (401/403). Trickle ICE (PATCH) is not offered: aiortc gathers all candidates before answering.
A WHIP session publishes its audio as "mic" and its video as "camera"; a WHEP session shows the active speaker
(else the first participant publishing) and follows it.

Sessions as participants: with ``admit`` and ``end`` (plain callables from the composition root; this package
knows nothing of conferences), ``admit(request, kind)`` ("whip" or "whep") admits the session into its meeting
and returns ``(session id, meeting id)`` once the SFU peer named by the session id exists in that meeting's
router (or raises an aiohttp HTTP error); ``end(session id, reason)`` releases it, with reason "left"
(DELETE), "connection_lost" (the peer's connection failed or closed) or "error" (negotiation failed).
Without them the app creates and removes the SFU peers itself.

Before the body is read, ``identify(request)`` (optional) checks the bearer token's signature and returns a
key for the token (or raises 401), so a stranger cannot make the server read an offer; offers are capped at
``max_offer_bytes`` (413). With ``whep_sessions_per_token``, one token keys at most that many WHEP sessions
at once (429): each takes a PeerConnection and a UDP port, and a leaked token must not take the whole range.

Worker processes (issue #20): ``redirect(request, kind)`` (optional, after ``identify``) returns the URL of
the meeting's owner worker (``/w/k/rtc/whip``) to answer a POST with 307 there, or None to serve it here.
Behind a proxy that routes ``/w/k/`` and says so in ``X-Forwarded-Prefix: /w/k``, the resource ``Location``
keeps that prefix, so the session's DELETE reaches the worker that holds it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from sfu.errors import BadRequest, Closed, Unavailable
from sfu.peer import Peer
from sfu.sdp import media_sections
from sfu.sfu import Sfu

log = logging.getLogger(__name__)

Authorize = Callable[[web.Request], "str | Awaitable[str]"]
Admit = Callable[[web.Request, str], Awaitable[tuple[str, str]]]
End = Callable[[str, str], Awaitable[None]]
Identify = Callable[[web.Request], str]
Redirect = Callable[[web.Request, str], Awaitable[str | None]]
SDP_TYPE = "application/sdp"
# An SDP offer with every codec, simulcast and a hundred candidates is a few kilobytes.
MAX_OFFER_BYTES = 64 * 1024
# The only prefix a resource Location takes from X-Forwarded-Prefix: a worker's path, nothing invented.
_WORKER_PREFIX = re.compile(r"/w/[0-9]{1,6}")


def forwarded_prefix(request: web.Request) -> str:
    """The ``/w/k`` path prefix the proxy routed this request by, or "" (none, or not a worker's)."""
    value = request.headers.get("X-Forwarded-Prefix", "")
    return value if _WORKER_PREFIX.fullmatch(value) else ""


def whip_app(
    sfu: Sfu,
    authorize: Authorize,
    *,
    admit: Admit | None = None,
    end: End | None = None,
    identify: Identify | None = None,
    whep_sessions_per_token: int | None = None,
    max_offer_bytes: int = MAX_OFFER_BYTES,
    redirect: Redirect | None = None,
) -> web.Application:
    if (admit is None) != (end is None):
        raise ValueError("admit and end are given together")
    # session id -> (meeting id, "whip" | "whep")
    sessions: dict[str, tuple[str, str]] = {}
    releasing: set[asyncio.Task[None]] = set()
    # WHEP sessions per token key: those open, and those being opened (counted, or parallel POSTs would pass).
    viewers: dict[str, set[str]] = {}
    opening: dict[str, int] = {}
    token_of: dict[str, str] = {}  # session id -> token key

    def forget(session_id: str) -> tuple[str, str] | None:
        """Drop a session from the books (it ended one way or another); its (meeting id, kind) if known."""
        key = token_of.pop(session_id, None)
        if key is not None:
            keyed = viewers.get(key, set())
            keyed.discard(session_id)
            if not keyed:
                viewers.pop(key, None)
        return sessions.pop(session_id, None)

    def reserve_viewer(key: str | None) -> str | None:
        if key is None or whep_sessions_per_token is None:
            return None
        if len(viewers.get(key, ())) + opening.get(key, 0) >= whep_sessions_per_token:
            raise web.HTTPTooManyRequests(
                text=f"too_many_sessions: at most {whep_sessions_per_token} WHEP sessions at once per join "
                "token; end one (DELETE its Location) first"
            )
        opening[key] = opening.get(key, 0) + 1
        return key

    def unreserve(key: str | None) -> None:
        if key is not None:
            opening[key] -= 1
            if not opening[key]:
                del opening[key]

    async def meeting_of(request: web.Request) -> str:
        result = authorize(request)
        meeting_id = await result if inspect.isawaitable(result) else result
        if not isinstance(meeting_id, str) or not meeting_id:
            raise web.HTTPForbidden(text="not allowed in any meeting")
        return meeting_id

    async def read_offer(request: web.Request) -> str:
        if request.content_type != SDP_TYPE:
            raise web.HTTPUnsupportedMediaType(text=f"Content-Type must be {SDP_TYPE}")
        too_large = web.HTTPRequestEntityTooLarge(
            max_size=max_offer_bytes,
            actual_size=request.content_length or max_offer_bytes + 1,
            text=f"too_large: an SDP offer has at most {max_offer_bytes} bytes",
        )
        if request.content_length is not None and request.content_length > max_offer_bytes:
            raise too_large
        body = bytearray()
        # Read at most one byte past the cap (a chunked body has no Content-Length to refuse early).
        while len(body) <= max_offer_bytes:
            chunk = await request.content.read(max_offer_bytes + 1 - len(body))
            if not chunk:
                break
            body.extend(chunk)
        if len(body) > max_offer_bytes:
            raise too_large
        try:
            offer = body.decode(request.charset or "utf-8")
        except (UnicodeDecodeError, LookupError):
            raise web.HTTPBadRequest(text="body: not an SDP offer") from None
        if not offer.startswith("v=0"):
            raise web.HTTPBadRequest(text="body: not an SDP offer")
        return offer

    def created(request: web.Request, session_id: str, answer: str) -> web.Response:
        location = f"{forwarded_prefix(request)}{request.path.rstrip('/')}/{session_id}"
        return web.Response(
            status=201, body=answer.encode(), content_type=SDP_TYPE, headers={"Location": location}
        )

    async def open_session(request: web.Request, kind: str, meeting_id: str | None) -> tuple[str, str, Peer]:
        if admit is None:
            assert meeting_id is not None
            session_id = f"{kind}-{uuid.uuid4().hex[:16]}"
            try:
                peer = await sfu.router(meeting_id).add_peer(session_id, publish=kind == "whip")
            except Closed as exc:
                raise web.HTTPServiceUnavailable(text=str(exc)) from exc
            return session_id, meeting_id, peer
        session_id, meeting_id = await admit(request, kind)
        router = sfu.routers.get(meeting_id)
        found = None if router is None else router.peers.get(session_id)
        if found is None:
            await release(meeting_id, session_id, "error")
            raise web.HTTPServiceUnavailable(text="the meeting's media are not available")
        return session_id, meeting_id, found

    async def release(meeting_id: str, session_id: str, reason: str) -> None:
        if end is not None:
            await end(session_id, reason)
            return
        router = sfu.routers.get(meeting_id)
        if router is not None:
            await router.remove_peer(session_id)

    def watch(session_id: str, peer: Peer, kind: str) -> None:
        """A session whose connection fails or closes without a DELETE is released all the same."""
        connection = peer.publish_connection if kind == "whip" else peer.subscribe_connection
        if connection is None:
            return
        pc = connection.pc

        def changed() -> None:
            if pc.connectionState not in ("failed", "closed") or session_id not in sessions:
                return
            meeting_id, _ = forget(session_id) or ("", "")
            log.info("%s session %s lost its connection", kind, session_id)
            task = asyncio.create_task(release(meeting_id, session_id, "connection_lost"))
            releasing.add(task)
            task.add_done_callback(releasing.discard)

        pc.on("connectionstatechange", changed)

    async def negotiate(session_id: str, meeting_id: str, peer: Peer, kind: str, offer: str) -> str:
        try:
            if kind == "whip":
                sections = media_sections(offer).items()
                sources = {mid: "mic" if media == "audio" else "camera" for mid, media in sections}
                return await peer.answer_publish(offer, sources)
            return await peer.answer_playback(offer)
        except BaseException as exc:
            await release(meeting_id, session_id, "error")
            if isinstance(exc, BadRequest):
                raise web.HTTPBadRequest(text=str(exc)) from exc
            if isinstance(exc, Closed):
                raise web.HTTPServiceUnavailable(text=str(exc)) from exc
            if isinstance(exc, Unavailable):
                raise web.HTTPServiceUnavailable(text=str(exc), headers={"Retry-After": "5"}) from exc
            raise

    async def start(request: web.Request, kind: str) -> web.Response:
        # A stranger is refused before the body is read (``identify``, or ``authorize`` without ``admit``);
        # ``admit`` comes after the body checks, so a malformed request never takes a seat in the meeting.
        token_key = identify(request) if identify is not None else None
        if redirect is not None and (target := await redirect(request, kind)) is not None:
            # 307, not 302/303: the client sends the same POST with its offer again (RFC 9110 15.4.8).
            raise web.HTTPTemporaryRedirect(target)
        authorized = await meeting_of(request) if admit is None else None
        reserved = reserve_viewer(token_key) if kind == "whep" else None
        try:
            offer = await read_offer(request)
            session_id, meeting_id, peer = await open_session(request, kind, authorized)
            answer = await negotiate(session_id, meeting_id, peer, kind, offer)
        finally:
            unreserve(reserved)  # after negotiation: the slot is held until the session is counted
        sessions[session_id] = (meeting_id, kind)
        if reserved is not None:
            viewers.setdefault(reserved, set()).add(session_id)
            token_of[session_id] = reserved
        watch(session_id, peer, kind)
        log.info("%s session %s started in meeting %s", kind, session_id, meeting_id)
        return created(request, session_id, answer)

    async def stop(request: web.Request, kind: str) -> web.Response:
        meeting_id = await meeting_of(request)
        session_id = request.match_info["session_id"]
        if sessions.get(session_id) != (meeting_id, kind):
            raise web.HTTPNotFound(text=f"no {kind} session {session_id!r}")
        forget(session_id)
        await release(meeting_id, session_id, "left")
        return web.Response(status=200)

    async def post_whip(request: web.Request) -> web.Response:
        return await start(request, "whip")

    async def post_whep(request: web.Request) -> web.Response:
        return await start(request, "whep")

    async def delete_whip(request: web.Request) -> web.Response:
        return await stop(request, "whip")

    async def delete_whep(request: web.Request) -> web.Response:
        return await stop(request, "whep")

    async def finish(app: web.Application) -> None:
        await asyncio.gather(*releasing, return_exceptions=True)

    app = web.Application()
    app.router.add_post("/whip", post_whip)
    app.router.add_delete("/whip/{session_id}", delete_whip)
    app.router.add_post("/whep", post_whep)
    app.router.add_delete("/whep/{session_id}", delete_whep)
    app.on_cleanup.append(finish)
    return app
