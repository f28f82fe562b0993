"""Viewer sessions' requests gathered in memory and written in one transaction per flush (issue #18).

Every playlist and segment request of a viewer moves its session's last_seen and counts its segments; one
write transaction per request capped a core at tens of viewers (bench/live_viewers.py), so the requests are
gathered here and written together.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from rooms.database import Database
from rooms.live import store
from web.api.base import DB


class ViewerActivity:
    """Viewer sessions' requests, gathered and written in one transaction per flush instead of one each.

    The composition root flushes every second and before each concurrency sample (yunhui/live.py); a crash
    loses at most that second of last_seen updates and segment counts. Without one here (tests of the API
    alone), every request writes through."""

    def __init__(self) -> None:
        self._pending: dict[int, tuple[datetime, int]] = {}

    def add(self, session_id: int, seen: datetime, segments: int) -> None:
        before = self._pending.get(session_id)
        if before is not None:
            seen, segments = max(seen, before[0]), segments + before[1]
        self._pending[session_id] = (seen, segments)

    async def flush(self, db: Database) -> int:
        pending, self._pending = self._pending, {}
        try:
            await store.touch_many(db, [(sid, seen, n) for sid, (seen, n) in sorted(pending.items())])
        except BaseException:
            for sid, (seen, n) in pending.items():  # kept for the next flush
                self.add(sid, seen, n)
            raise
        return len(pending)


ACTIVITY = web.AppKey("live_viewer_activity", ViewerActivity)


async def flush_activity(request: web.Request) -> None:
    """Write the gathered requests first (the statistics read the sessions)."""
    activity = request.config_dict.get(ACTIVITY)
    if activity is not None:
        await activity.flush(request.app[DB])


__all__ = ["ACTIVITY", "ViewerActivity", "flush_activity"]
