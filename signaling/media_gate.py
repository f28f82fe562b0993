"""MediaGate: WHIP/WHEP sessions become participants (the ``admit`` callable of sfu.whip.whip_app)."""

from __future__ import annotations

import logging

from aiohttp import web

from signaling.errors import JoinRefused, RefusalCode
from signaling.server import MeetingServer

logger = logging.getLogger(__name__)

_ERRORS: dict[RefusalCode, type[web.HTTPException]] = {
    RefusalCode.BAD_AUTH: web.HTTPUnauthorized,
    RefusalCode.BAD_TOKEN: web.HTTPUnauthorized,
    RefusalCode.NO_SUCH_MEETING: web.HTTPNotFound,
    RefusalCode.MEETING_ENDING: web.HTTPConflict,
    RefusalCode.SERVER_CLOSING: web.HTTPServiceUnavailable,
    RefusalCode.UNAVAILABLE: web.HTTPServiceUnavailable,
}


def http_error(exc: JoinRefused) -> web.HTTPException:
    """A refused media session as HTTP: 401 bad token, 404, 409, 503, else 403 (refused by the policy)."""
    return _ERRORS.get(exc.code, web.HTTPForbidden)(text=f"{exc.code.value}: {exc.message}")


class MediaGate:
    """Admits WHIP publishers (Attendance kind "whip") and WHEP viewers ("viewer") through the meeting server.

    The join token is the bearer token; a refusal is an HTTP error whose text starts with the refusal code
    (the codes of docs/protocol.md), e.g. ``403 full: the meeting is full``."""

    def __init__(self, server: MeetingServer) -> None:
        self._server = server

    async def admit(self, request: web.Request, kind: str) -> tuple[str, str]:
        """``kind`` "whip" or "whep"; returns (session id, meeting id)."""
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not token:
            raise web.HTTPUnauthorized(text="bad_auth: Authorization: Bearer <join token> required")
        try:
            session = await self._server.admit_media_session(
                token,
                "whip" if kind == "whip" else "viewer",
                user_agent=request.headers.get("User-Agent", ""),
            )
        except JoinRefused as exc:
            logger.info("%s session refused: %s", kind, exc.code.value)
            raise http_error(exc) from None
        except Exception:
            logger.exception("%s session failed", kind)
            raise web.HTTPServiceUnavailable(
                text="unavailable: the meeting service is unavailable; try again"
            ) from None
        return session.id, session.meeting_id
