"""The SMS channel's pace: a token bucket at the contract's TPS that slows down when the SMSC throttles.

The bucket holds at most one token, so submits are spaced 1/rate apart and no one-second window at the SMSC
sees more than the contract's TPS (a fuller bucket would let a burst of 2×TPS through a window). On
ESME_RTHROTTLED or ESME_RMSGQFUL the rate halves (down to a floor) and the next submit waits a growing pause;
each accepted submit wins back a step of the rate (additive increase, multiplicative decrease).
The clock is injected: `now` is monotonic seconds and `sleep` waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]

FIRST_PAUSE = 0.25
MAX_PAUSE = 8.0


class TokenBucket:
    """Spaces submits at `rate` per second; owned by one SmppSender, shared by its concurrent submits."""

    def __init__(self, rate: float, *, now: Callable[[], float], sleep: Sleep = asyncio.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.max_rate = rate
        self.rate = rate
        self.floor = min(rate, max(rate / 16, 0.5))
        self._now = now
        self._sleep = sleep
        self._next = now()
        self._pause = 0.0
        self._paused_until = float("-inf")
        self._lock = asyncio.Lock()

    def delay(self) -> float:
        """Seconds until the next submit may go (pure: takes no token)."""
        return max(0.0, self._next - self._now())

    async def take(self) -> None:
        """Wait for this submit's turn. Turns are handed out in call order."""
        async with self._lock:
            wait = self.delay()
            if wait > 0:
                await self._sleep(wait)
            self._next = max(self._next, self._now()) + 1.0 / self.rate

    def throttled(self) -> float:
        """The SMSC said slow down: halve the rate, push the next turn back; returns the pause ahead.

        Refusals of submits that were already in flight when the pause began are one signal, not many:
        the rate and the pause change once per pause."""
        now = self._now()
        if now < self._paused_until:
            return self._paused_until - now
        self.rate = max(self.floor, self.rate / 2)
        self._pause = FIRST_PAUSE if self._pause == 0 else min(MAX_PAUSE, self._pause * 2)
        self._paused_until = now + self._pause
        self._next = max(self._next, self._paused_until)
        return self._pause

    def accepted(self) -> None:
        """A submit went through: forget the pause, win back a sixteenth of the contract rate."""
        self._pause = 0.0
        self.rate = min(self.max_rate, self.rate + self.max_rate / 16)
