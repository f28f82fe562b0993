"""Natural months, quarters and billing periods as half-open date ranges [start, end)."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta


class PaymentPeriod(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


_PERIOD_MONTHS = {PaymentPeriod.MONTHLY: 1, PaymentPeriod.QUARTERLY: 3, PaymentPeriod.YEARLY: 12}


@dataclass(frozen=True, order=True)
class Period:
    """A half-open range of whole days [start, end)."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end

    def months(self) -> Iterator[date]:
        """The first days of the natural months that begin inside the period."""
        month = month_start(self.start)
        if month < self.start:
            month = next_month(month)
        while month < self.end:
            yield month
            month = next_month(month)

    def label(self) -> str:
        if self.end == next_month(self.start):
            return f"{self.start:%Y-%m}"
        return f"{self.start.isoformat()}..{(self.end - relativedelta(days=1)).isoformat()}"


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return month_start(day) + relativedelta(months=1)


def days_in_month(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def month_period(month: date) -> Period:
    start = month_start(month)
    return Period(start, next_month(start))


def quarter_period(day: date) -> Period:
    start = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return Period(start, start + relativedelta(months=3))


def billing_period(day: date, payment_period: PaymentPeriod) -> Period:
    """The calendar-aligned period (month, quarter or year) that contains `day`."""
    months = _PERIOD_MONTHS[payment_period]
    start = date(day.year, months * ((day.month - 1) // months) + 1, 1)
    return Period(start, start + relativedelta(months=months))


def effective_month(day: date) -> date:
    """Under the next-month rule a change dated `day` applies from this month start on."""
    return day if day.day == 1 else next_month(day)


def local_date(instant: datetime, zone: str) -> date:
    if instant.tzinfo is None:
        raise ValueError("naive datetime given where an aware instant is required")
    return instant.astimezone(ZoneInfo(zone)).date()


def local_midnight(day: date, zone: str) -> datetime:
    """The aware UTC instant at which `day` begins in `zone`."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)
