"""Sfu: the process-wide owner of the routers (one per meeting)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

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
        # Called with each new Router and with each Router that closed (a live channel attaches to a meeting
        # that starts after it and lets go of one that ended); synchronous, they must only note or enqueue.
        self.router_opened: list[Callable[[Router], None]] = []
        self.router_closed: list[Callable[[Router], None]] = []

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
            self._tell(self.router_opened, router)
        return router

    def _forget(self, router: Router) -> None:
        if self._routers.get(router.meeting_id) is router:
            del self._routers[router.meeting_id]
        self._tell(self.router_closed, router)

    @staticmethod
    def _tell(listeners: list[Callable[[Router], None]], router: Router) -> None:
        for listener in list(listeners):
            try:
                listener(router)
            except Exception:
                log.exception("sfu: a router listener failed")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        routers, self._routers = list(self._routers.values()), {}
        await asyncio.gather(*(r.close() for r in routers), return_exceptions=True)
