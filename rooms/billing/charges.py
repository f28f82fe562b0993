"""Site fees: billable endpoints per site and month under the contract's change rule, trial and end."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from rooms.billing.contract import ChangeRule, ContractTerms, trial_end
from rooms.billing.periods import Period, days_in_month, effective_month, month_period


class ServiceChangeKind(StrEnum):
    OPEN = "open"
    CHANGE = "change"  # a new endpoint count
    SUSPEND = "suspend"
    RESUME = "resume"
    TERMINATE = "terminate"


@dataclass(frozen=True)
class ServiceChange:
    """A change of one site's service, dated by the local day it was made."""

    site_id: int
    on: date
    kind: ServiceChangeKind
    endpoints: int | None = None  # the count after an OPEN or a CHANGE


@dataclass(frozen=True)
class SiteState:
    in_service: bool = False
    endpoints: int = 0


@dataclass(frozen=True)
class SiteMonth:
    """One site's billable endpoint-days in one natural month and their unrounded fee."""

    site_id: int
    month: date
    endpoint_days: int
    days: int
    amount: Decimal

    @property
    def endpoint_months(self) -> Decimal:
        return Decimal(self.endpoint_days) / Decimal(self.days)


def apply(state: SiteState, change: ServiceChange) -> SiteState:
    match change.kind:
        case ServiceChangeKind.OPEN:
            return SiteState(True, change.endpoints if change.endpoints is not None else state.endpoints)
        case ServiceChangeKind.CHANGE:
            return SiteState(state.in_service, change.endpoints if change.endpoints is not None else 0)
        case ServiceChangeKind.SUSPEND | ServiceChangeKind.TERMINATE:
            return SiteState(False, state.endpoints)
        case ServiceChangeKind.RESUME:
            return SiteState(True, state.endpoints)


def state_on(changes: Sequence[ServiceChange], day: date) -> SiteState:
    """The state after every change dated on or before `day` (changes are applied in date order)."""
    state = SiteState()
    for change in sorted(changes, key=lambda c: c.on):
        if change.on > day:
            break
        state = apply(state, change)
    return state


def site_month(
    terms: ContractTerms, site_id: int, changes: Sequence[ServiceChange], month: date, end: date | None
) -> SiteMonth:
    """The billable endpoint-days of one site in one month (`end`: the contract's first uncovered day)."""
    own = [c for c in changes if c.site_id == site_id]
    period = month_period(month)
    days = days_in_month(period.start)
    free_until = trial_end(terms)
    if terms.change_rule is ChangeRule.NEXT_MONTH:
        endpoint_days = _next_month_days(own, period, free_until, end, days)
    else:
        endpoint_days = _prorated_days(own, period, free_until, end)
    fee = terms.fee_for_site(site_id)
    amount = fee / 12 * endpoint_days / days
    return SiteMonth(site_id, period.start, endpoint_days, days, amount)


def _next_month_days(
    changes: Sequence[ServiceChange], period: Period, free_until: date, end: date | None, days: int
) -> int:
    # Whole months only: the state at the month's start (changes dated on the 1st count) governs the
    # month, except that the month of a resumption is charged in full. The end of the trial and of the
    # contract behave like an opening and a termination dated on those days.
    if period.start < effective_month(free_until):
        return 0
    if end is not None and period.start >= effective_month(end):
        return 0
    state = state_on(changes, period.start)
    if state.in_service:
        return state.endpoints * days
    resumed = [c for c in changes if c.kind is ServiceChangeKind.RESUME and period.contains(c.on)]
    if resumed:
        return state_on(changes, resumed[-1].on).endpoints * days
    return 0


def _prorated_days(
    changes: Sequence[ServiceChange], period: Period, free_until: date, end: date | None
) -> int:
    total = 0
    day = period.start
    while day < period.end:
        if day >= free_until and (end is None or day < end):
            state = state_on(changes, day)
            if state.in_service:
                total += state.endpoints
        day += timedelta(days=1)
    return total


def site_months(
    terms: ContractTerms,
    site_ids: Iterable[int],
    changes: Sequence[ServiceChange],
    period: Period,
    end: date | None,
) -> list[SiteMonth]:
    return [
        site_month(terms, site_id, changes, month, end)
        for site_id in sorted(set(site_ids))
        for month in period.months()
    ]


def trial_days(terms: ContractTerms, period: Period) -> int:
    """How many days of `period` fall inside the free trial."""
    first = max(period.start, terms.start)
    last = min(period.end, trial_end(terms))
    return max(0, (last - first).days)
