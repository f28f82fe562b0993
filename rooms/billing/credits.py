"""Outage credits: per live event (interruption thresholds) and per quarter (availability target)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from rooms.billing.money import ZERO, quantize

HALF_FEE_AFTER = timedelta(seconds=30)
WAIVED_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class Outage:
    """An interruption of the whole service (account_id None) or of one account."""

    start: datetime
    end: datetime
    account_id: int | None = None


@dataclass(frozen=True)
class LiveEvent:
    """A meeting streamed live, charged a fee per event."""

    meeting_id: int
    start: datetime
    end: datetime


def affecting(outages: Iterable[Outage], account_id: int) -> list[Outage]:
    return [o for o in outages if o.account_id is None or o.account_id == account_id]


def merged(outages: Iterable[Outage], lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    """Outages clipped to [lo, hi) and merged where they overlap or touch."""
    spans = sorted((max(o.start, lo), min(o.end, hi)) for o in outages)
    result: list[tuple[datetime, datetime]] = []
    for start, end in spans:
        if start >= end:
            continue
        if result and start <= result[-1][1]:
            result[-1] = (result[-1][0], max(result[-1][1], end))
        else:
            result.append((start, end))
    return result


def longest_interruption(outages: Iterable[Outage], lo: datetime, hi: datetime) -> timedelta:
    return max((end - start for start, end in merged(outages, lo, hi)), default=timedelta(0))


def downtime(outages: Iterable[Outage], lo: datetime, hi: datetime) -> timedelta:
    return sum((end - start for start, end in merged(outages, lo, hi)), timedelta(0))


def live_event_credit(fee: Decimal, interruption: timedelta) -> Decimal:
    """An interruption of 30 s or more halves the event's fee; 60 s or more waives it."""
    if interruption >= WAIVED_AFTER:
        return quantize(fee)
    if interruption >= HALF_FEE_AFTER:
        return quantize(fee / 2)
    return ZERO


def availability(outages: Iterable[Outage], lo: datetime, hi: datetime) -> Decimal:
    """Percent of [lo, hi) without an outage, exact (not rounded)."""
    total = Decimal(int((hi - lo).total_seconds()))
    down = Decimal(int(downtime(outages, lo, hi).total_seconds()))
    return (total - down) / total * 100


def availability_credit(fee: Decimal, actual: Decimal, target: Decimal) -> Decimal:
    """Below the target, credit the fee pro rata to the shortfall in percentage points."""
    if actual >= target:
        return ZERO
    return min(quantize(fee), quantize(fee * (target - actual) / 100))
