"""WHIP/WHEP in a cluster (issue #20, research/scale-out.md §4.7): a session lives in its meeting's owner.

A POST that reaches another worker is answered with 307 to ``/w/{owner}/rtc/...`` (the client repeats the
POST with its offer there; nginx's ``X-Accel-Redirect`` would turn it into a GET). A POST that reached the
owner through the proxy's any-worker route is sent under ``/w/{owner}/`` too, so that the resource
``Location`` carries the prefix and the session's DELETE reaches this worker again. Requests straight to a
worker's own port (no proxy headers) are served as they come.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from rooms.errors import RoomsError
from rooms.tokens import verify_join_token
from sfu.whip import Redirect
from yunhui.cluster import REGISTRY
from yunhui.registry import RegistryUnavailable

log = logging.getLogger(__name__)


def redirector(app: web.Application, secret_key: str, clock: Callable[[], datetime]) -> Redirect:
    """The whip_app ``redirect`` hook; it does nothing in the single process (no registry)."""

    async def redirect(request: web.Request, kind: str) -> str | None:
        registry = app.get(REGISTRY)
        if registry is None:
            return None
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        try:
            room_id = verify_join_token(secret_key, token, now=clock()).room_id
        except RoomsError:
            return None  # identify() has refused it already; nothing to route
        try:
            owner = await registry.locate(room_id, expected=1)
        except RegistryUnavailable as exc:
            log.warning("%s refused: the registry is unavailable (%s)", kind, exc)
            raise web.HTTPServiceUnavailable(
                text="unavailable: the meeting service cannot place meetings now; try again shortly",
                headers={"Retry-After": "5"},
            ) from None
        target = f"/w/{owner.id}{request.path_qs}"
        if owner.id != registry.worker_id:
            log.info("%s for room %d redirected to worker %s", kind, room_id, owner.id)
            return target
        prefix = request.headers.get("X-Forwarded-Prefix")
        proxied = prefix is not None or "X-Forwarded-For" in request.headers
        return target if proxied and prefix != f"/w/{owner.id}" else None

    return redirect
