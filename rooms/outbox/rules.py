"""Pure rules of the outbox: retry back-off, retention, and which failures suppress a recipient."""

from __future__ import annotations

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta

# The notifications brief §5.3: 30 s, 2 min, 10 min, 1 h, then every 6 h until the row expires.
RETRY_DELAYS = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
)
LATE_RETRY_DELAY = timedelta(hours=6)
# Up to this fraction is added to each delay so that a burst of failures does not retry in lock-step.
JITTER = 0.1
DEFAULT_EXPIRY = timedelta(hours=48)
# A claimed row whose sender neither succeeded nor failed by then is presumed to have died mid-send.
LEASE = timedelta(minutes=2)
RETENTION = relativedelta(months=6)


def retry_at(attempts: int, now: datetime, expires_at: datetime, *, jitter: float = 0.0) -> datetime | None:
    """When to try again after `attempts` failed tries (1 = the first), or None once past `expires_at`.

    `jitter` in [0, 1) is the caller's random draw; tests pass a fixed value.
    """
    if attempts < 1:
        raise ValueError("attempts counts the tries made so far, from 1")
    delay = RETRY_DELAYS[attempts - 1] if attempts <= len(RETRY_DELAYS) else LATE_RETRY_DELAY
    at = now + delay * (1 + JITTER * min(max(jitter, 0.0), 1.0))
    return at if at < expires_at else None


def retain_until(ended_at: datetime) -> datetime:
    """The sent history is kept six months for reconciliation, then purged (also PIPL minimisation)."""
    return ended_at + RETENTION


def month_start(at: datetime) -> datetime:
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return start + relativedelta(months=1)
