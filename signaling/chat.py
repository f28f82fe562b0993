"""Chat helpers: a sliding-window rate limit and the bounded public history late joiners receive."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from signaling.messages import ChatEntry


class RateLimiter:
    """At most ``count`` events per ``window``; pure apart from its own memory of recent events."""

    def __init__(self, count: int, window: timedelta) -> None:
        self._count = count
        self._window = window
        self._times: deque[datetime] = deque()

    def allow(self, now: datetime) -> bool:
        while self._times and now - self._times[0] >= self._window:
            self._times.popleft()
        if len(self._times) >= self._count:
            return False
        self._times.append(now)
        return True


class ChatHistory:
    """The last ``size`` public chat entries of a meeting."""

    def __init__(self, size: int) -> None:
        self._entries: deque[ChatEntry] = deque(maxlen=size)

    def append(self, entry: ChatEntry) -> None:
        if self._entries.maxlen:
            self._entries.append(entry)

    def entries(self) -> tuple[ChatEntry, ...]:
        return tuple(self._entries)
