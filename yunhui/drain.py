"""Drain (issue #20, research/scale-out.md §4.10): SIGTERM to a worker of a cluster stops new meetings there
while its running meetings go on; at ``workers.drain_timeout_seconds`` the rest move to another worker.

The worker turns ``draining`` in the registry at once (placement skips it; locate sends new rooms
elsewhere), then waits for its meetings to end. Those still running at the timeout are handed over: the
lease is released and the room placed on an available worker, everyone gets ``meeting_moved`` naming it
and joins again there, where the open meeting row is adopted (same meeting id, a new lease epoch). A moved
meeting nobody takes up within a lease period is ended here (the fenced end refuses if it was adopted
meanwhile). A second SIGTERM stops waiting: the shutdown then ends what is left with ``server_shutdown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from redis.exceptions import RedisError

from rooms.workers import holds_lease
from signaling.conference import Conference
from signaling.messages import EndReason, MeetingMoved
from signaling.server import MeetingServer
from yunhui.fencing import FencedMeetingStore
from yunhui.registry import Registry
from yunhui.settings import WorkerSettings

log = logging.getLogger(__name__)

# How often the drain looks whether its meetings have ended (it also wakes at once on a second signal).
POLL_SECONDS = 0.25


class Drain:
    """The drain of one worker; run() once, after the first SIGTERM."""

    def __init__(
        self,
        meetings: MeetingServer,
        registry: Registry,
        store: FencedMeetingStore,
        settings: WorkerSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._meetings = meetings
        self._registry = registry
        self._store = store
        self._settings = settings
        self._monotonic = monotonic
        self.moved: dict[int, str | None] = {}  # room id -> the worker its meeting moved to

    async def run(self, interrupted: asyncio.Event) -> None:
        """Drain until no meeting is left here (or ``interrupted`` is set)."""
        started = self._monotonic()
        self._registry.drain()
        try:
            await self._registry.beat()  # draining now, not at the next heartbeat
        except RedisError as exc:
            log.warning("drain: the registry did not take the draining state yet (%s)", exc)
        count = len(self._meetings.conferences())
        timeout = self._settings.drain_timeout_seconds
        log.info("draining: %d meeting(s) run on for at most %.0f s; no new meetings here", count, timeout)

        async def ended() -> bool:
            return not self._meetings.conferences()

        if not await self._wait(ended, started + timeout, interrupted):
            if interrupted.is_set():
                log.warning("drain interrupted: the meetings left end now")
                return
            await self._move_all(interrupted)
        log.info("drained in %.1f s (%d meeting(s) moved)", self._monotonic() - started, len(self.moved))

    async def _move_all(self, interrupted: asyncio.Event) -> None:
        conferences = self._meetings.conferences()
        log.info("drain timeout: moving %d meeting(s) to other workers", len(conferences))
        held: list[tuple[int, int]] = []
        for conference in conferences:
            moved = await self.move(conference)
            if moved is not None:
                held.append(moved)
        await asyncio.gather(*(c.close() for c in conferences))
        # A moved meeting stays open for its new owner to adopt; one nobody took up is ended here.
        deadline = self._monotonic() + self._settings.lease_ttl_seconds
        for meeting_id, epoch in held:

            async def taken(meeting_id: int = meeting_id, epoch: int = epoch) -> bool:
                return not await holds_lease(self._store.database, meeting_id, epoch)

            await self._wait(taken, deadline, interrupted)
            now = self._meetings.scheduler.now()
            if await self._store.end_unadopted(meeting_id, epoch, reason=EndReason.EMPTY.value, now=now):
                log.info("meeting %s moved but nobody rejoined: ended", meeting_id)

    async def move(self, conference: Conference) -> tuple[int, int] | None:
        """Hand the conference's room to another worker and send everyone there; the (meeting id, epoch)
        the meeting was held under here, for the end of a meeting nobody takes up."""
        room_id = conference.room.room_id
        target = await self._registry.hand_over(room_id, expected=max(1, len(conference.participants())))
        self.moved[room_id] = None if target is None else target.id
        if target is None:
            # Nowhere to go (the only worker, or Redis away): the meeting ends as at a shutdown.
            conference.end(EndReason.SERVER_SHUTDOWN)
            return None
        meeting_id = conference.meeting_id
        epoch = None if meeting_id is None else self._store.epoch(meeting_id)
        log.info("room %s: meeting %s moves to worker %s", room_id, meeting_id, target.id)
        conference.move(MeetingMoved(worker=target.id, base=f"/w/{target.id}/"))
        return None if meeting_id is None or epoch is None else (meeting_id, epoch)

    async def _wait(
        self, done: Callable[[], Awaitable[bool]], deadline: float, interrupted: asyncio.Event
    ) -> bool:
        """Whether ``done`` came true before the deadline (False at once on ``interrupted``)."""
        while not await done():
            left = deadline - self._monotonic()
            if left <= 0 or interrupted.is_set():
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(interrupted.wait(), min(POLL_SECONDS, left))
        return True


DRAIN = web.AppKey("drain", Drain)
