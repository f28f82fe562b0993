"""Failed-login back-off, in memory, on the injected clock: slows guessing without locking the owner out.

Two keys. Per (client address, account): after ``free`` failures each more blocks that pair for a delay that
doubles up to a cap; only the address that failed waits, so failures from an attacker's address never slow
the owner's. Per account (all addresses together): the same back-off against many addresses guessing one
password. A per-account limit that refused everyone would hand any attacker a lockout of the real owner, so
it only slows: while an account is in back-off, an address with no failures on record *for that account*
still has its password checked (a new address with the right password always gets in at once); an address
that failed recently waits until the account's back-off ends or its own failures are forgiven. Each
attacking address therefore gets one guess per forgiveness period during an attack. There is no CAPTCHA.

Attempts still being checked (password hashing takes a while) count as failures for the ones behind them,
or a thousand parallel requests would all be checked before the first failure is recorded.

Memory is bounded: at most ``max_keys`` entries per table. Entries that have earned a back-off are evicted
only after every entry that has not, so junk e-mails (one failure each) flush each other, not the keys
whose back-off is worth keeping.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rooms.backoff import Backoff, FailureTable, address_key, count_pending

__all__ = ["ACCOUNT_BACKOFF", "PAIR_BACKOFF", "PENDING_WAIT", "Backoff", "LoginThrottle"]


# How long to wait for attempts already being checked (one password hash: well under a second).
PENDING_WAIT = timedelta(seconds=1)
PAIR_BACKOFF = Backoff(
    free=5, base=timedelta(seconds=1), cap=timedelta(minutes=5), forgive=timedelta(minutes=10)
)
ACCOUNT_BACKOFF = Backoff(
    free=20, base=timedelta(seconds=1), cap=timedelta(minutes=5), forgive=timedelta(minutes=1)
)


class LoginThrottle:
    """Failed logins per (client address, e-mail) and per e-mail (see the module's docstring).

    Every attempt ``begin`` allows (returns zero) must be finished with ``end``."""

    def __init__(
        self,
        *,
        per_pair: Backoff = PAIR_BACKOFF,
        per_account: Backoff = ACCOUNT_BACKOFF,
        max_keys: int = 10_000,
    ) -> None:
        self._pairs = FailureTable(per_pair, max_keys)
        self._accounts = FailureTable(per_account, max_keys)
        self._pending_pairs: dict[str, int] = {}
        self._pending_accounts: dict[str, int] = {}

    def tracked(self) -> tuple[int, int]:
        """How many (address, account) pairs and accounts have failures on record."""
        return len(self._pairs), len(self._accounts)

    @staticmethod
    def _keys(email: str, address: str) -> tuple[str, str]:
        account = email.strip().lower()
        return f"{address_key(address)} {account}", account

    def begin(self, email: str, address: str, now: datetime) -> timedelta:
        """Zero: check the password now (then call ``end``); else refuse unchecked and retry after this."""
        pair, account = self._keys(email, address)
        own = self._pairs.blocked_for(pair, now)
        if own:
            return own
        pending = self._pending_pairs.get(pair, 0)
        if pending and self._pairs.failures(pair, now) + pending > self._pairs.backoff.free:
            return PENDING_WAIT
        wait = self._accounts.blocked_for(account, now)
        account_pending = self._pending_accounts.get(account, 0)
        if (
            not wait
            and account_pending
            and self._accounts.failures(account, now) + account_pending > self._accounts.backoff.free
        ):
            wait = PENDING_WAIT
        if wait:
            # The account is under attack: only addresses that failed at it recently are slowed.
            clean = PENDING_WAIT if pending else self._pairs.clean_in(pair, now)
            if clean:
                return min(wait, clean)
        count_pending(self._pending_pairs, pair, +1)
        count_pending(self._pending_accounts, account, +1)
        return timedelta(0)

    def end(self, email: str, address: str, now: datetime, *, success: bool | None) -> None:
        """Finish an allowed attempt: ``success`` True (signed in), False (wrong password) or None (not
        decided, e.g. the database failed). A success clears that address's failures for the account only:
        the account's own count stays, since an attack on it from elsewhere goes on."""
        pair, account = self._keys(email, address)
        count_pending(self._pending_pairs, pair, -1)
        count_pending(self._pending_accounts, account, -1)
        if success is True:
            self._pairs.forget(pair)
        elif success is False:
            self._pairs.failed(pair, now)
            self._accounts.failed(account, now)
