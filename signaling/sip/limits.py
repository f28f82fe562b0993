"""Per source address limits of the SIP listener (A19): cheap to check, bounded in memory."""

from __future__ import annotations

from dataclasses import dataclass

from signaling.clock import Scheduler
from signaling.sip.settings import SipRateLimits

__all__ = ["AddressLimits"]

# Past this many tracked addresses the idle ones are forgotten (a spoofed-source flood must not grow memory).
MAX_TRACKED = 20000


@dataclass
class _Address:
    tokens: float
    stamp: float
    blocked_until: float = 0.0
    failures: int = 0
    failures_since: float = 0.0
    connections: int = 0


class AddressLimits:
    """Token bucket per IP over every message, a failed-digest counter, and a connection cap.

    Addresses in ``trusted`` (a front proxy) are never limited: the proxy limits its own clients.
    """

    def __init__(self, settings: SipRateLimits, clock: Scheduler, trusted: tuple[str, ...] = ()) -> None:
        self._settings = settings
        self._clock = clock
        self._trusted = frozenset(trusted)
        self._addresses: dict[str, _Address] = {}
        self.blocked_messages = 0

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _entry(self, host: str, now: float) -> _Address:
        entry = self._addresses.get(host)
        if entry is None:
            if len(self._addresses) >= MAX_TRACKED:
                self._forget_idle(now)
            entry = _Address(tokens=float(self._settings.burst), stamp=now)
            self._addresses[host] = entry
        return entry

    def _forget_idle(self, now: float) -> None:
        horizon = self._settings.block_seconds + self._settings.auth_failure_window_seconds
        for host in [h for h, e in self._addresses.items() if e.connections == 0 and now - e.stamp > horizon]:
            del self._addresses[host]
        if len(self._addresses) >= MAX_TRACKED:
            # Everyone is recent: keep the blocked ones, drop the rest (they start with a full bucket).
            for host in [
                h for h, e in self._addresses.items() if e.blocked_until <= now and e.connections == 0
            ]:
                del self._addresses[host]

    def admit(self, host: str) -> bool:
        """Take one token for a message from ``host``; False = drop it unanswered."""
        if host in self._trusted:
            return True
        now = self._now()
        entry = self._entry(host, now)
        if entry.blocked_until > now:
            self.blocked_messages += 1
            return False
        rate = self._settings.messages_per_second
        entry.tokens = min(float(self._settings.burst), entry.tokens + (now - entry.stamp) * rate)
        entry.stamp = now
        if entry.tokens < 1.0:
            entry.blocked_until = now + self._settings.block_seconds
            self.blocked_messages += 1
            return False
        entry.tokens -= 1.0
        return True

    def block(self, host: str) -> None:
        if host in self._trusted:
            return
        now = self._now()
        self._entry(host, now).blocked_until = now + self._settings.block_seconds

    def is_blocked(self, host: str) -> bool:
        entry = self._addresses.get(host)
        return entry is not None and entry.blocked_until > self._now()

    def auth_failed(self, host: str) -> None:
        """Count a failed digest answer; too many in the window blocks the address."""
        if host in self._trusted:
            return
        now = self._now()
        entry = self._entry(host, now)
        if now - entry.failures_since > self._settings.auth_failure_window_seconds:
            entry.failures, entry.failures_since = 0, now
        entry.failures += 1
        if entry.failures >= self._settings.auth_failures:
            entry.blocked_until = now + self._settings.block_seconds

    def admit_connection(self, host: str) -> bool:
        if host in self._trusted:
            return True
        now = self._now()
        entry = self._entry(host, now)
        if entry.blocked_until > now or entry.connections >= self._settings.connections_per_ip:
            return False
        entry.connections += 1
        return True

    def release_connection(self, host: str) -> None:
        entry = self._addresses.get(host)
        if entry is not None and entry.connections > 0:
            entry.connections -= 1
