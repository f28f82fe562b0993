"""AttemptLimiter: back-off on failed passcode joins, per client address and per meeting. Pure: every call
takes ``now``; the caller owns the clock.

Why both keys, and why the meeting's limit only slows: a per-address limit stops one client guessing (or
scanning meeting numbers) but not many addresses guessing one meeting; a per-meeting limit stops those, but a
limit that refuses everyone would let one attacker keep a meeting's guests out for as long as the attack
lasts. So while a meeting is in back-off, an address with no failures on record still has its passcode
checked: a guest who types the right passcode gets in; an address that failed recently (anywhere) waits
until the meeting's back-off ends or its own failures are forgiven. Each attacking address therefore gets
one guess per forgiveness period during an attack instead of its free failures; tokens and logins never
pass through here.

Memory is bounded: at most ``max_keys`` entries per kind. Entries that have earned a back-off are evicted only
after every entry that has not, so junk keys (one failure each, from many addresses) flush each other, not
the keys in back-off; meeting keys are made only for meeting numbers that exist.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from rooms.backoff import Backoff, FailureTable, address_key, count_pending

__all__ = ["AttemptLimiter", "Backoff", "Failure", "Verdict", "address_key", "client_address"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """``retry_after`` zero: check the passcode; else refuse the attempt unchecked and say when to retry."""

    retry_after: timedelta

    @property
    def allowed(self) -> bool:
        return not self.retry_after

    @property
    def retry_after_seconds(self) -> int:
        return max(1, math.ceil(self.retry_after.total_seconds()))


ALLOWED = Verdict(timedelta(0))
# How long to wait for attempts already being checked (a database lookup: milliseconds).
PENDING_WAIT = timedelta(seconds=1)


class AttemptLimiter:
    """Failed passcode joins per client address and per meeting number (see the module's docstring).

    Every attempt that ``begin`` allows must be finished with ``end``. Attempts still being checked count as
    failures for the attempts behind them: otherwise a client opening a thousand connections at once would
    have a thousand passcodes checked before the first failure is recorded."""

    def __init__(self, *, per_address: Backoff, per_meeting: Backoff, max_keys: int) -> None:
        self._addresses = FailureTable(per_address, max_keys)
        self._meetings = FailureTable(per_meeting, max_keys)
        # Attempts between begin and end; bounded by the open connections, entries dropped at zero.
        self._pending_addresses: dict[str, int] = {}
        self._pending_meetings: dict[str, int] = {}

    def tracked(self) -> tuple[int, int]:
        """How many (addresses, meetings) have failures on record."""
        return len(self._addresses), len(self._meetings)

    def begin(self, *, address: str, meeting_number: str, now: datetime) -> Verdict:
        """Whether a passcode join from ``address`` to ``meeting_number`` may be checked now."""
        key = address_key(address)
        pending = self._pending_addresses.get(key, 0)
        own = self._addresses.blocked_for(key, now)
        if own:
            return Verdict(own)
        if self._addresses.blocked_by_pending(key, pending, now):
            return Verdict(PENDING_WAIT)
        meeting = self._meetings.blocked_for(meeting_number, now)
        meeting_pending = self._pending_meetings.get(meeting_number, 0)
        if not meeting and self._meetings.blocked_by_pending(meeting_number, meeting_pending, now):
            meeting = PENDING_WAIT
        if meeting:
            clean = PENDING_WAIT if pending else self._addresses.clean_in(key, now)
            if clean:
                return Verdict(min(meeting, clean))
        count_pending(self._pending_addresses, key, +1)
        count_pending(self._pending_meetings, meeting_number, +1)
        return ALLOWED

    def end(self, *, address: str, meeting_number: str, failure: Failure | None, now: datetime) -> None:
        """Finish an attempt ``begin`` allowed: ``failure`` None (admitted, or refused for another reason),
        WRONG_PASSCODE, or NO_SUCH_MEETING (counted against the address only: no meeting to protect).

        A success resets nothing: otherwise joining one's own meeting would clear the failures spent guessing
        another's."""
        key = address_key(address)
        count_pending(self._pending_addresses, key, -1)
        count_pending(self._pending_meetings, meeting_number, -1)
        if failure is not None:
            self._addresses.failed(key, now)
            if failure is Failure.WRONG_PASSCODE:
                self._meetings.failed(meeting_number, now)


class Failure(Enum):
    WRONG_PASSCODE = "wrong_passcode"
    NO_SUCH_MEETING = "no_such_meeting"


def client_address(environ: Mapping[str, object], resolve: Callable[[Any], str] | None = None) -> str:
    """The address a Socket.IO connection came from (the one place that decides it).

    python-engineio's aiohttp driver writes "127.0.0.1" into every environ's REMOTE_ADDR, so the peer comes
    from the aiohttp request it keeps there; REMOTE_ADDR is the fallback for other drivers. `resolve`: the
    application's request -> address function (behind trusted proxies: X-Forwarded-For, web/proxies.py)."""
    request = environ.get("aiohttp.request")
    if resolve is not None and request is not None:
        return resolve(request)
    remote = getattr(request, "remote", None)
    if isinstance(remote, str) and remote:
        return remote
    fallback = environ.get("REMOTE_ADDR")
    return fallback if isinstance(fallback, str) else ""
