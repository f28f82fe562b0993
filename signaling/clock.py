"""Time for live meetings: ``now()`` and timers, injectable so tests advance time instead of sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    def now(self) -> datetime: ...

    def call_at(self, when: datetime, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` (synchronous, must not raise) once ``now()`` reaches ``when``."""
        ...


class LoopScheduler:
    """Timers on the running event loop, measured against an injected wall clock."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    def call_at(self, when: datetime, callback: Callable[[], None]) -> Timer:
        delay = max(0.0, (when - self._clock()).total_seconds())
        return asyncio.get_running_loop().call_later(delay, callback)
