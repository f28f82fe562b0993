"""Tier 1: PasscodeProbe tells the pre-join page whether to ask for a passcode, and no more (issue #22)."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from signaling.attempts import AttemptLimiter, Backoff
from signaling.prejoin import PasscodeProbe
from tests.signaling.signaling_fakes import T0, FakeStore

SECOND = timedelta(seconds=1)
ADDRESS = "203.0.113.7"


def probe(store: FakeStore) -> tuple[PasscodeProbe, AttemptLimiter]:
    backoff = Backoff(free=3, base=SECOND, cap=60 * SECOND, forgive=30 * SECOND)
    attempts = AttemptLimiter(per_address=backoff, per_meeting=backoff, max_keys=100)
    return PasscodeProbe(store, attempts), attempts


async def test_only_an_existing_room_without_passcode_answers_no() -> None:
    store = FakeStore()
    store.add_room(1, number="111111111", passcode="4321")
    store.add_room(2, number="222222222", passcode=None)
    lookup, attempts = probe(store)
    assert await lookup.needs_passcode("111111111", address=ADDRESS, now=T0) is True
    assert await lookup.needs_passcode("222222222", address=ADDRESS, now=T0) is False
    # A number nobody has answers like a room with a passcode.
    assert await lookup.needs_passcode("999999999", address=ADDRESS, now=T0) is True
    # Lookups of rooms that exist are not failures; the unknown number is one, of the address only.
    assert attempts.tracked() == (1, 0)


async def test_scanning_numbers_backs_off_like_joins_and_is_forgiven() -> None:
    store = FakeStore()
    store.add_room(2, number="222222222", passcode=None)
    lookup, attempts = probe(store)
    for n in range(4):  # the free failures and one more: the address is now in back-off
        assert await lookup.needs_passcode(f"90000000{n}", address=ADDRESS, now=T0) is True
    # In back-off the open room is not revealed (and the join would be refused the same way) ...
    assert await lookup.needs_passcode("222222222", address=ADDRESS, now=T0) is True
    assert not attempts.begin(address=ADDRESS, meeting_number="222222222", now=T0).allowed
    # ... while another address is unaffected, and the scanner's own failures are forgiven in time.
    assert await lookup.needs_passcode("222222222", address="198.51.100.1", now=T0) is False
    later = T0 + 5 * 30 * SECOND
    assert await lookup.needs_passcode("222222222", address=ADDRESS, now=later) is False


async def test_a_failed_lookup_ends_its_attempt() -> None:
    class Broken(FakeStore):
        async def room_by_number(self, meeting_number: str, *, now: object) -> None:  # type: ignore[override]
            raise OSError("database gone")

    lookup, attempts = probe(Broken())
    for _ in range(10):
        with contextlib.suppress(OSError):
            await lookup.needs_passcode("111111111", address=ADDRESS, now=T0)
    # Attempts still pending would count as failures for the ones behind them: none is left open.
    assert attempts.begin(address=ADDRESS, meeting_number="111111111", now=T0).allowed
