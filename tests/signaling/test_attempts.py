"""Tier 1: AttemptLimiter: back-off, forgiveness, the meeting's limit, pending attempts, its memory bound."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from signaling.attempts import AttemptLimiter, Backoff, Failure, address_key, client_address
from tests.signaling.signaling_fakes import T0

WRONG = Failure.WRONG_PASSCODE
SECOND = timedelta(seconds=1)


def limiter(*, address_free: int = 5, meeting_free: int = 20, max_keys: int = 100) -> AttemptLimiter:
    def backoff(free: int) -> Backoff:
        return Backoff(free=free, base=SECOND, cap=300 * SECOND, forgive=120 * SECOND)

    return AttemptLimiter(
        per_address=backoff(address_free), per_meeting=backoff(meeting_free), max_keys=max_keys
    )


def fail(lim: AttemptLimiter, address: str, meeting: str = "888", *, at: timedelta = timedelta(0)) -> None:
    assert lim.begin(address=address, meeting_number=meeting, now=T0 + at).allowed
    lim.end(address=address, meeting_number=meeting, failure=WRONG, now=T0 + at)


def wait(lim: AttemptLimiter, address: str, meeting: str = "888", *, at: timedelta = timedelta(0)) -> float:
    """Seconds the attempt must wait (0: it would be checked). Does not start an attempt."""
    verdict = lim.begin(address=address, meeting_number=meeting, now=T0 + at)
    if verdict.allowed:
        lim.end(address=address, meeting_number=meeting, failure=None, now=T0 + at)
    return verdict.retry_after.total_seconds()


def test_the_delay_doubles_after_the_free_failures_up_to_the_cap() -> None:
    backoff = Backoff(free=5, base=SECOND, cap=300 * SECOND, forgive=120 * SECOND)
    assert [backoff.delay(n).total_seconds() for n in range(1, 16)] == [
        *[0] * 5,
        *[1, 2, 4, 8, 16, 32, 64, 128, 256],
        300,
    ]
    assert backoff.delay(10**6) == 300 * SECOND  # no overflow


def test_one_address_is_blocked_after_its_free_failures_and_forgiven_over_time() -> None:
    lim = limiter()
    for _ in range(6):
        fail(lim, "198.51.100.7")
    assert wait(lim, "198.51.100.7") == 1
    assert wait(lim, "198.51.100.7", at=SECOND) == 0
    fail(lim, "198.51.100.7", at=SECOND)
    assert wait(lim, "198.51.100.7", at=SECOND) == 2
    assert wait(lim, "203.0.113.9") == 0  # others are not affected
    # 7 failures, one forgiven every 2 min: after 14 min the address is forgotten.
    assert lim.tracked() == (1, 1)
    assert wait(lim, "198.51.100.7", at=14 * 60 * SECOND + SECOND) == 0
    assert lim.tracked()[0] == 0


def test_forgiveness_lowers_the_next_delay() -> None:
    lim = limiter()
    for n in range(9):  # delays 1, 2, 4, 8 s after the 6th..9th
        fail(lim, "198.51.100.7", at=n * 10 * SECOND)
    # 4 min later two failures are forgiven: 7 on record, so the next failure (8th) blocks for 4 s, not 16.
    at = 80 * SECOND + 240 * SECOND
    fail(lim, "198.51.100.7", at=at)
    assert wait(lim, "198.51.100.7", at=at) == 4


def test_a_meeting_in_back_off_checks_only_addresses_without_failures() -> None:
    lim = limiter(address_free=5, meeting_free=2)
    fail(lim, "10.0.0.1")
    fail(lim, "10.0.0.2")
    fail(lim, "10.0.0.3")  # the meeting's 3rd: 1 s
    assert wait(lim, "10.0.0.1") == 1  # dirty: refused unchecked while the meeting waits
    assert wait(lim, "10.0.0.9") == 0  # clean: checked (a guest who knows the passcode gets in)
    assert wait(lim, "10.0.0.1", meeting="999") == 0  # other meetings are not affected
    assert wait(lim, "10.0.0.1", at=SECOND) == 0  # and the meeting's block ends


def test_a_long_meeting_block_waits_only_until_the_address_is_clean() -> None:
    lim = limiter(address_free=5, meeting_free=0)
    for n in range(10):
        fail(lim, f"10.0.1.{n}")  # the meeting is at 2**9 -> capped at 300 s
    assert wait(lim, "10.0.1.0") == 120  # one failure, forgiven in 2 min: sooner than the meeting's 300 s


def test_success_resets_nothing() -> None:
    lim = limiter()
    for _ in range(5):
        fail(lim, "198.51.100.7", meeting="111")
    assert lim.begin(address="198.51.100.7", meeting_number="222", now=T0).allowed
    lim.end(address="198.51.100.7", meeting_number="222", failure=None, now=T0)  # joined its own meeting
    fail(lim, "198.51.100.7", meeting="111")
    assert wait(lim, "198.51.100.7", meeting="111") == 1


def test_attempts_being_checked_count_as_failures_for_those_behind_them() -> None:
    lim = limiter(address_free=2)
    started = [lim.begin(address="10.0.0.1", meeting_number="888", now=T0) for _ in range(5)]
    assert [v.allowed for v in started] == [True, True, True, False, False]  # like 3 attempts in a row
    for _ in range(3):
        lim.end(address="10.0.0.1", meeting_number="888", failure=WRONG, now=T0)
    assert wait(lim, "10.0.0.1") == 1


def test_unknown_meetings_count_against_the_address_only() -> None:
    lim = limiter()
    for n in range(6):
        assert lim.begin(address="10.0.0.1", meeting_number=f"7{n}", now=T0).allowed
        lim.end(address="10.0.0.1", meeting_number=f"7{n}", failure=Failure.NO_SUCH_MEETING, now=T0)
    assert lim.tracked() == (1, 0)
    assert wait(lim, "10.0.0.1", meeting="888") == 1


def test_memory_is_bounded_and_junk_keys_do_not_flush_keys_in_back_off() -> None:
    lim = limiter(max_keys=10)
    for _ in range(6):
        fail(lim, "198.51.100.7")  # in back-off
    for n in range(1000):
        fail(lim, f"10.1.{n // 256}.{n % 256}", meeting=f"m{n}")  # one failure each
    assert lim.tracked() == (10, 10)
    assert wait(lim, "198.51.100.7", meeting="other") == 1
    fail(lim, "10.9.9.9", at=SECOND)
    for _ in range(4):
        fail(lim, "10.9.9.9", at=SECOND)
    assert wait(lim, "10.9.9.9", meeting="other", at=SECOND) == 0  # the newest key is always tracked...
    fail(lim, "10.9.9.9", at=SECOND)
    assert wait(lim, "10.9.9.9", meeting="other", at=SECOND) == 1  # ...up to its back-off


def test_ipv6_clients_are_grouped_by_their_64_prefix() -> None:
    assert address_key("2001:db8:1:2:3:4:5:6") == address_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("") == ""
    lim = limiter()
    for n in range(6):
        fail(lim, f"2001:db8:1:2::{n + 1}")
    assert wait(lim, "2001:db8:1:2::99") == 1
    assert wait(lim, "2001:db8:1:3::1") == 0


def test_the_client_address_comes_from_the_aiohttp_request_not_engineio_s_constant() -> None:
    request = SimpleNamespace(remote="192.0.2.44")
    assert client_address({"REMOTE_ADDR": "127.0.0.1", "aiohttp.request": request}) == "192.0.2.44"
    assert client_address({"REMOTE_ADDR": "192.0.2.45"}) == "192.0.2.45"
    assert client_address({}) == ""
