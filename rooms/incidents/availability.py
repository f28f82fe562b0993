"""The quarterly availability report of one account: uptime against the contract, outages and credits.

Pure: the measured outages, the contract's terms and the credits the billing rules grant come in, `now`
bounds a quarter that is still running. Meetings are measured against every outage that affects the
account; operations (the management platform) only against those that took the whole service down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from rooms.billing.contract import ContractTerms
from rooms.billing.credits import Outage as CreditOutage
from rooms.billing.credits import affecting, availability, downtime
from rooms.billing.periods import Period, local_midnight, quarter_period
from rooms.incidents.outages import Scope, scope_of_cause

PERCENT = Decimal("0.001")


@dataclass(frozen=True)
class MeasuredOutage:
    id: int
    start: datetime
    end: datetime
    account_id: int | None
    source: str
    cause: str | None
    note: str = ""

    @property
    def scope(self) -> Scope:
        return scope_of_cause(self.cause)

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())


@dataclass(frozen=True)
class Credit:
    """A credit the billing rules grant for the quarter: kind event_credit or availability_credit."""

    kind: str
    amount: Decimal  # positive: what is taken off the bill
    label: str
    detail: str = ""


@dataclass(frozen=True)
class Uptime:
    service: str  # meetings or operations
    target: Decimal
    actual: Decimal  # percent, to three decimals
    downtime_seconds: int

    @property
    def met(self) -> bool:
        return self.actual >= self.target


@dataclass(frozen=True)
class AvailabilityReport:
    account_id: int
    quarter: str  # e.g. 2026-Q2
    start: datetime
    end: datetime  # the end of the quarter, or `now` while it runs
    meetings: Uptime
    operations: Uptime
    outages: tuple[MeasuredOutage, ...]
    credits: tuple[Credit, ...]
    currency: str

    @property
    def credit_total(self) -> Decimal:
        return sum((c.amount for c in self.credits), Decimal(0))


def quarter_label(quarter: Period) -> str:
    return f"{quarter.start.year}-Q{(quarter.start.month - 1) // 3 + 1}"


def parse_quarter(text: str) -> Period:
    """'2026-Q2' as the quarter's days; ValueError otherwise."""
    year, sep, q = text.partition("-Q")
    if not sep or not year.isdigit() or len(year) != 4 or q not in {"1", "2", "3", "4"}:
        raise ValueError(f"{text!r} is not a quarter (YYYY-Qn)")
    if not 2000 <= int(year) <= 2199:
        raise ValueError("the year must lie between 2000 and 2199")
    return quarter_period(date(int(year), 3 * (int(q) - 1) + 1, 1))


def measured_span(terms: ContractTerms, quarter: Period, now: datetime) -> tuple[datetime, datetime]:
    """The part of the quarter the contract covers, up to `now` (empty when it has not begun)."""
    lo = local_midnight(max(quarter.start, terms.start), terms.timezone)
    hi = min(local_midnight(quarter.end, terms.timezone), now)
    return lo, max(lo, hi)


def _uptime(
    service: str, target: Decimal, outages: Sequence[CreditOutage], lo: datetime, hi: datetime
) -> Uptime:
    if hi <= lo:
        return Uptime(service, target, Decimal(100).quantize(PERCENT), 0)
    actual = availability(outages, lo, hi).quantize(PERCENT)
    return Uptime(service, target, actual, int(downtime(outages, lo, hi).total_seconds()))


def availability_report(
    account_id: int,
    *,
    terms: ContractTerms,
    quarter: Period,
    outages: Sequence[MeasuredOutage],
    credits: Sequence[Credit],
    now: datetime,
) -> AvailabilityReport:
    lo, hi = measured_span(terms, quarter, now)
    mine = [o for o in outages if o.account_id is None or o.account_id == account_id]
    mine = [o for o in mine if o.start < hi and o.end > lo]
    facts = affecting([CreditOutage(o.start, o.end, o.account_id) for o in mine], account_id)
    whole = [CreditOutage(o.start, o.end, o.account_id) for o in mine if o.scope is Scope.SERVICE]
    return AvailabilityReport(
        account_id=account_id,
        quarter=quarter_label(quarter),
        start=lo,
        end=hi,
        meetings=_uptime("meetings", terms.availability_target, facts, lo, hi),
        operations=_uptime("operations", terms.operations_availability_target, whole, lo, hi),
        outages=tuple(sorted(mine, key=lambda o: (o.start, o.id))),
        credits=tuple(credits),
        currency=terms.currency,
    )
