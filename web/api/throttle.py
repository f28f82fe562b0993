"""Failed-login throttling: per e-mail and client address, in memory, on the injected clock."""

from __future__ import annotations

from collections import OrderedDict, deque
from datetime import datetime, timedelta


class LoginThrottle:
    """After `attempts` failures within `window`, a (e-mail, address) pair is refused until they age out."""

    def __init__(
        self, *, attempts: int = 10, window: timedelta = timedelta(minutes=15), max_keys: int = 10_000
    ):
        self._attempts = attempts
        self._window = window
        self._max_keys = max_keys
        self._failures: OrderedDict[tuple[str, str], deque[datetime]] = OrderedDict()

    def __len__(self) -> int:
        """How many (e-mail, address) pairs are tracked."""
        return len(self._failures)

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def blocked(self, email: str, address: str, now: datetime) -> bool:
        return len(self._recent((email.strip().lower(), address), now)) >= self._attempts

    def failed(self, email: str, address: str, now: datetime) -> None:
        key = (email.strip().lower(), address)
        failures = self._recent(key, now)
        failures.append(now)
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, email: str, address: str) -> None:
        self._failures.pop((email.strip().lower(), address), None)
