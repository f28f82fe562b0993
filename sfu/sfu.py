"""Sfu: the process-wide owner of the routers (one per meeting)."""

from __future__ import annotations

import asyncio
import logging

from sfu import fanout
from sfu.codecs import install_global_patches
from sfu.errors import BadRequest, Closed
from sfu.hooks import verify_hook_points
from sfu.router import Router
from sfu.settings import SfuSettings

log = logging.getLogger(__name__)


class Sfu:
    """One per process. Fails at construction when aiortc's private hook points changed."""

    def __init__(self, settings: SfuSettings) -> None:
        verify_hook_points()
        install_global_patches()
        if fanout.NATIVE:
            log.info("sfu forwarding in C (sfu._fanout)")
        else:
            log.warning("sfu forwarding in pure Python: sfu._fanout is not built (needs gcc and python3-dev)")
        self.settings = settings
        self._routers: dict[str, Router] = {}
        self._closed = False

    @property
    def routers(self) -> dict[str, Router]:
        return dict(self._routers)

    def router(self, meeting_id: str) -> Router:
        """The meeting's router, created on first use."""
        if self._closed:
            raise Closed("sfu is closed")
        if not meeting_id:
            raise BadRequest("meeting_id: must not be empty")
        router = self._routers.get(meeting_id)
        if router is None:
            router = Router(meeting_id, self.settings, on_closed=self._forget)
            self._routers[meeting_id] = router
        return router

    def _forget(self, router: Router) -> None:
        if self._routers.get(router.meeting_id) is router:
            del self._routers[router.meeting_id]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        routers, self._routers = list(self._routers.values()), {}
        await asyncio.gather(*(r.close() for r in routers), return_exceptions=True)
