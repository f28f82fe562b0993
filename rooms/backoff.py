"""Backoff and FailureTable: back-off on failed attempts (passcodes, logins), in memory, pure (`now` given).

One rule for every guessable secret: a few failures are free, then each one more blocks its key for a delay
that doubles up to a cap, and one failure is forgiven per period so a key left alone returns to zero. The
meeting server's passcode limits (signaling/attempts.py) and the REST login throttle (web/api/throttle.py)
both build on it.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Backoff:
    """``free`` failures cost nothing; the n-th beyond them blocks for ``base·2^(n-1)``, at most ``cap``.
    One failure is forgiven every ``forgive``, so a key left alone returns to zero."""

    free: int
    base: timedelta
    cap: timedelta
    forgive: timedelta

    def delay(self, failures: int) -> timedelta:
        beyond = failures - self.free
        if beyond <= 0:
            return timedelta(0)
        # Bounded exponent: 2**beyond overflows timedelta long before it would matter.
        doubled: timedelta = self.base * (2 ** min(beyond - 1, 40))
        return min(self.cap, doubled)


@dataclass(slots=True)
class _Entry:
    failures: int
    since: datetime  # failures are forgiven one per Backoff.forgive from here
    blocked_until: datetime


class FailureTable:
    """Failures of one kind of key: a leaky counter with a block time, in a two-segment LRU.

    Entries that have earned a back-off are evicted only after every entry that has not, so junk keys (one
    failure each) flush each other, not the keys whose back-off is worth keeping."""

    def __init__(self, backoff: Backoff, max_keys: int) -> None:
        self.backoff = backoff
        self._max_keys = max_keys
        self._calm: OrderedDict[str, _Entry] = OrderedDict()  # never beyond the free failures
        self._hot: OrderedDict[str, _Entry] = OrderedDict()  # earned a back-off at least once

    def __len__(self) -> int:
        return len(self._calm) + len(self._hot)

    def _get(self, key: str, now: datetime) -> _Entry | None:
        entry = self._calm.get(key) or self._hot.get(key)
        if entry is None:
            return None
        forgiven = min(entry.failures, max(0, int((now - entry.since) / self.backoff.forgive)))
        entry.failures -= forgiven
        entry.since += self.backoff.forgive * forgiven
        if entry.failures == 0 and entry.blocked_until <= now:
            self.forget(key)
            return None
        return entry

    def failures(self, key: str, now: datetime) -> int:
        entry = self._get(key, now)
        return 0 if entry is None else entry.failures

    def blocked_by_pending(self, key: str, pending: int, now: datetime) -> bool:
        """Whether ``key`` would be in back-off if its ``pending`` attempts all failed."""
        return pending > 0 and self.failures(key, now) + pending > self.backoff.free

    def blocked_for(self, key: str, now: datetime) -> timedelta:
        entry = self._get(key, now)
        return timedelta(0) if entry is None else max(timedelta(0), entry.blocked_until - now)

    def clean_in(self, key: str, now: datetime) -> timedelta:
        """How long until ``key`` has no failures on record (zero: it has none)."""
        entry = self._get(key, now)
        if entry is None:
            return timedelta(0)
        return max(entry.since + self.backoff.forgive * entry.failures, entry.blocked_until) - now

    def failed(self, key: str, now: datetime) -> None:
        entry = self._get(key, now) or _Entry(0, now, now)
        if entry.failures == 0:
            entry.since = now
        entry.failures += 1
        delay = self.backoff.delay(entry.failures)
        if delay:
            entry.blocked_until = max(entry.blocked_until, now + delay)
        hot = bool(delay) or key in self._hot
        self.forget(key)
        (self._hot if hot else self._calm)[key] = entry
        while len(self) > self._max_keys:
            # The key just written is the newest of its segment: popitem(last=False) takes it only if alone.
            calm_others = len(self._calm) - (key in self._calm)
            (self._calm if calm_others else self._hot).popitem(last=False)

    def forget(self, key: str) -> None:
        self._calm.pop(key, None)
        self._hot.pop(key, None)


def count_pending(counts: dict[str, int], key: str, step: int) -> None:
    """Attempts still being checked per key: ``step`` +1 when one starts, -1 when it ends."""
    value = counts.get(key, 0) + step
    if value > 0:
        counts[key] = value
    else:
        counts.pop(key, None)


def address_key(address: str) -> str:
    """The key of a client address: an IPv6 client is its /64 (one subscriber's whole prefix, which it can
    rotate through at will), an IPv4-mapped address its IPv4 address, anything unparsable as is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
