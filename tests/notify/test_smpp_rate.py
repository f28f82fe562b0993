"""The SMS channel's token bucket on an injected clock: spacing at the TPS, halving on throttling once per
pause, growing pauses, additive recovery."""

from __future__ import annotations

import pytest

from notify.smpp_rate import FIRST_PAUSE, MAX_PAUSE, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


async def test_submits_are_spaced_at_the_rate_from_the_first() -> None:
    clock = Clock()
    bucket = TokenBucket(10, now=clock.now, sleep=clock.sleep)
    for _ in range(5):
        await bucket.take()
    assert clock.slept == pytest.approx([0.1] * 4)
    clock.t += 5  # idle time does not bank a burst
    await bucket.take()
    await bucket.take()
    assert clock.slept[-1] == pytest.approx(0.1)


async def test_throttling_halves_once_per_pause_and_pauses_grow() -> None:
    clock = Clock()
    bucket = TokenBucket(16, now=clock.now, sleep=clock.sleep)
    assert bucket.throttled() == FIRST_PAUSE
    # Refusals of submits already in flight are the same signal.
    assert bucket.throttled() == pytest.approx(FIRST_PAUSE)
    assert bucket.rate == 8
    assert bucket.delay() == pytest.approx(FIRST_PAUSE)
    clock.t += FIRST_PAUSE
    assert bucket.throttled() == 2 * FIRST_PAUSE
    assert bucket.rate == 4
    for _ in range(10):
        clock.t += MAX_PAUSE
        bucket.throttled()
    assert bucket.rate == bucket.floor == 1.0
    assert bucket.throttled() <= MAX_PAUSE
    bucket.accepted()
    assert bucket.rate == 2.0
    for _ in range(40):
        bucket.accepted()
    assert bucket.rate == 16


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0, now=lambda: 0.0)
