"""A Contract's terms as data, their single parse and serialise points, and the term/renewal rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta

from rooms.billing.errors import BillingInputError
from rooms.billing.money import parse_currency, parse_decimal
from rooms.billing.periods import PaymentPeriod

MIN_RETENTION_MONTHS = 5

_E = TypeVar("_E", bound=StrEnum)
ONE = Decimal(1)

# Usage kinds a contract may price (see metering.py); "sms" is metered from the outbox (rooms/sms) or entered.
USAGE_KINDS = frozenset(
    {
        "participant_minutes.browser",
        "participant_minutes.sip",
        "participant_minutes.whip",
        "participant_minutes.recorder",
        "live_viewer_minutes",
        "peak_endpoints",
        "recording_gb_months",
        "sms",
    }
)


class ChangeRule(StrEnum):
    """When an opening, change, suspension, resumption or termination of a site's service is billed."""

    NEXT_MONTH = "next_month"  # from the next natural month; suspension/resumption/termination month in full
    PRORATE = "prorate"  # immediately, pro-rated by day


@dataclass(frozen=True)
class SiteFee:
    site_id: int
    fee_per_endpoint_year: Decimal


@dataclass(frozen=True)
class FixedFee:
    """A monthly fixed fee with a line of its own, e.g. a line rental."""

    name: str
    monthly_amount: Decimal


@dataclass(frozen=True)
class UsagePrice:
    """A price per unit of a usage kind, after a yearly included allowance (per contract year)."""

    kind: str
    unit_price: Decimal
    included_per_year: Decimal = Decimal(0)


@dataclass(frozen=True)
class ContractTerms:
    currency: str
    fee_per_endpoint_year: Decimal
    start: date  # the acceptance date
    site_fees: tuple[SiteFee, ...] = ()
    timezone: str = "Asia/Shanghai"
    payment_period: PaymentPeriod = PaymentPeriod.MONTHLY
    change_rule: ChangeRule = ChangeRule.NEXT_MONTH
    trial_months: int = 1
    payment_due_days: int = 40
    late_fee_rate_per_day: Decimal = Decimal("0.03")
    late_fee_cap: Decimal | None = None  # a fraction of the overdue amount; None = uncapped
    suspension_after_notice_days: int = 20
    retention_months: int = MIN_RETENTION_MONTHS
    # Days a finished recording is kept before the scheduler purges it; None: the recording settings' default.
    recording_retention_days: int | None = None
    term_months: int = 12
    renewal_notice_days: int = 30
    availability_target: Decimal = Decimal("99.5")  # percent per calendar quarter
    live_event_fee: Decimal | None = None
    # The operations (management platform) availability per quarter and the incident clocks (issue #21):
    # a response within response_hours, a solution within resolution_hours, a major fault within
    # major_resolution_hours.
    operations_availability_target: Decimal = Decimal("99.9")
    response_hours: int = 2
    resolution_hours: int = 4
    major_resolution_hours: int = 24
    fixed_fees: tuple[FixedFee, ...] = field(default=())
    usage_prices: tuple[UsagePrice, ...] = field(default=())

    def fee_for_site(self, site_id: int) -> Decimal:
        for fee in self.site_fees:
            if fee.site_id == site_id:
                return fee.fee_per_endpoint_year
        return self.fee_per_endpoint_year

    def usage_price(self, kind: str) -> UsagePrice | None:
        return next((p for p in self.usage_prices if p.kind == kind), None)


def trial_end(terms: ContractTerms) -> date:
    """The first day that is not free."""
    return terms.start + relativedelta(months=terms.trial_months)


def contract_year(terms: ContractTerms, day: date) -> tuple[date, date]:
    """The contract year [start, end) containing `day` (the first one for days before the start)."""
    k = 0
    while terms.start + relativedelta(months=terms.term_months * (k + 1)) <= day:
        k += 1
    return (
        terms.start + relativedelta(months=terms.term_months * k),
        terms.start + relativedelta(months=terms.term_months * (k + 1)),
    )


def contract_end(terms: ContractTerms, notice_on: date | None) -> date | None:
    """The first day no longer covered: the contract renews itself every term unless notice is given at
    least `renewal_notice_days` before a renewal date; None while no notice is given."""
    if notice_on is None:
        return None
    k = 1
    while True:
        boundary = terms.start + relativedelta(months=terms.term_months * k)
        if notice_on <= boundary - timedelta(days=terms.renewal_notice_days):
            return boundary
        k += 1


@dataclass(frozen=True)
class Renewal:
    """Where a running contract stands in its term, as the contract page shows it."""

    # The next renewal date (the current term's end).
    renews_on: date
    # The last day notice can be given to end the contract at the earliest renewal it is still in time for,
    # and that renewal date.
    notice_deadline: date
    notice_ends_on: date


def renewal(terms: ContractTerms, today: date) -> Renewal:
    k = 1
    while terms.start + relativedelta(months=terms.term_months * k) <= today:
        k += 1
    renews_on = terms.start + relativedelta(months=terms.term_months * k)
    ends_on = renews_on
    while ends_on - timedelta(days=terms.renewal_notice_days) < today:
        k += 1
        ends_on = terms.start + relativedelta(months=terms.term_months * k)
    return Renewal(renews_on, ends_on - timedelta(days=terms.renewal_notice_days), ends_on)


def accepted(terms: ContractTerms, today: date) -> bool:
    """A contract is accepted on its start date (the acceptance date); until then its terms may change."""
    return today >= terms.start


def parse_terms(data: Mapping[str, Any]) -> ContractTerms:
    """The one parse point for terms from JSON-like data; raises BillingInputError naming the field."""
    known = set(ContractTerms.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise BillingInputError(unknown[0], "unknown contract term")
    for required in ("currency", "fee_per_endpoint_year", "start"):
        if required not in data:
            raise BillingInputError(required, "is required")
    default = ContractTerms(currency="CNY", fee_per_endpoint_year=Decimal(0), start=date(2000, 1, 1))
    timezone = data.get("timezone", default.timezone)
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise BillingInputError("timezone", f"unknown time zone {timezone!r}") from None
    cap = data.get("late_fee_cap")
    live_fee = data.get("live_event_fee")
    terms = ContractTerms(
        currency=parse_currency(data["currency"]),
        fee_per_endpoint_year=parse_decimal(data["fee_per_endpoint_year"], "fee_per_endpoint_year"),
        start=_parse_date(data["start"], "start"),
        site_fees=tuple(_parse_site_fee(item, i) for i, item in enumerate(_list(data, "site_fees"))),
        timezone=str(timezone),
        payment_period=_enum(
            PaymentPeriod, data.get("payment_period", default.payment_period), "payment_period"
        ),
        change_rule=_enum(ChangeRule, data.get("change_rule", default.change_rule), "change_rule"),
        trial_months=_int(data, "trial_months", default.trial_months, 0, 24),
        payment_due_days=_int(data, "payment_due_days", default.payment_due_days, 0),
        late_fee_rate_per_day=parse_decimal(
            data.get("late_fee_rate_per_day", default.late_fee_rate_per_day),
            "late_fee_rate_per_day",
            maximum=ONE,
        ),
        late_fee_cap=None if cap is None else parse_decimal(cap, "late_fee_cap", maximum=Decimal(100)),
        suspension_after_notice_days=_int(
            data, "suspension_after_notice_days", default.suspension_after_notice_days, 0
        ),
        retention_months=_int(data, "retention_months", default.retention_months, MIN_RETENTION_MONTHS, 240),
        recording_retention_days=(
            None
            if data.get("recording_retention_days") is None
            else _int(data, "recording_retention_days", 0, 1, 3660)
        ),
        term_months=_int(data, "term_months", default.term_months, 1, 120),
        renewal_notice_days=_int(data, "renewal_notice_days", default.renewal_notice_days, 0),
        availability_target=parse_decimal(
            data.get("availability_target", default.availability_target), "availability_target"
        ),
        live_event_fee=None if live_fee is None else parse_decimal(live_fee, "live_event_fee"),
        operations_availability_target=parse_decimal(
            data.get("operations_availability_target", default.operations_availability_target),
            "operations_availability_target",
            maximum=Decimal(100),
        ),
        response_hours=_int(data, "response_hours", default.response_hours, 1, 720),
        resolution_hours=_int(data, "resolution_hours", default.resolution_hours, 1, 720),
        major_resolution_hours=_int(data, "major_resolution_hours", default.major_resolution_hours, 1, 720),
        fixed_fees=tuple(_parse_fixed_fee(item, i) for i, item in enumerate(_list(data, "fixed_fees"))),
        usage_prices=tuple(_parse_usage_price(item, i) for i, item in enumerate(_list(data, "usage_prices"))),
    )
    if terms.availability_target > 100:
        raise BillingInputError("availability_target", "must be a percentage of at most 100")
    if len({f.site_id for f in terms.site_fees}) != len(terms.site_fees):
        raise BillingInputError("site_fees", "a site is listed twice")
    if len({p.kind for p in terms.usage_prices}) != len(terms.usage_prices):
        raise BillingInputError("usage_prices", "a usage kind is priced twice")
    return terms


def terms_to_json(terms: ContractTerms) -> dict[str, Any]:
    """The one serialise point: money and rates as strings, dates in ISO form."""
    return {
        "currency": terms.currency,
        "fee_per_endpoint_year": str(terms.fee_per_endpoint_year),
        "start": terms.start.isoformat(),
        "site_fees": [
            {"site_id": f.site_id, "fee_per_endpoint_year": str(f.fee_per_endpoint_year)}
            for f in terms.site_fees
        ],
        "timezone": terms.timezone,
        "payment_period": terms.payment_period.value,
        "change_rule": terms.change_rule.value,
        "trial_months": terms.trial_months,
        "payment_due_days": terms.payment_due_days,
        "late_fee_rate_per_day": str(terms.late_fee_rate_per_day),
        "late_fee_cap": None if terms.late_fee_cap is None else str(terms.late_fee_cap),
        "suspension_after_notice_days": terms.suspension_after_notice_days,
        "retention_months": terms.retention_months,
        "recording_retention_days": terms.recording_retention_days,
        "term_months": terms.term_months,
        "renewal_notice_days": terms.renewal_notice_days,
        "availability_target": str(terms.availability_target),
        "live_event_fee": None if terms.live_event_fee is None else str(terms.live_event_fee),
        "operations_availability_target": str(terms.operations_availability_target),
        "response_hours": terms.response_hours,
        "resolution_hours": terms.resolution_hours,
        "major_resolution_hours": terms.major_resolution_hours,
        "fixed_fees": [{"name": f.name, "monthly_amount": str(f.monthly_amount)} for f in terms.fixed_fees],
        "usage_prices": [
            {"kind": p.kind, "unit_price": str(p.unit_price), "included_per_year": str(p.included_per_year)}
            for p in terms.usage_prices
        ],
    }


FIRST_DATE = date(2000, 1, 1)
LAST_DATE = date(2199, 12, 31)


def _parse_date(value: object, name: str) -> date:
    if isinstance(value, date):
        day = value
    elif isinstance(value, str):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise BillingInputError(name, f"{value!r} is not a date (YYYY-MM-DD)") from None
    else:
        raise BillingInputError(name, "must be a date (YYYY-MM-DD)")
    if not FIRST_DATE <= day <= LAST_DATE:
        raise BillingInputError(name, f"must lie between {FIRST_DATE} and {LAST_DATE}")
    return day


def parse_date(value: object, name: str) -> date:
    return _parse_date(value, name)


def _list(data: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    value = data.get(name, [])
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, Mapping) for item in value):
        raise BillingInputError(name, "must be a list of objects")
    return list(value)


def _int(data: Mapping[str, Any], name: str, default: int, minimum: int, maximum: int = 366) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BillingInputError(name, "must be an integer")
    if value < minimum:
        raise BillingInputError(name, f"must be at least {minimum}")
    if value > maximum:
        raise BillingInputError(name, f"must be at most {maximum}")
    return value


def _enum(kind: type[_E], value: object, name: str) -> _E:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise BillingInputError(name, f"{value!r} is not one of {choices}") from None


def _parse_site_fee(item: Mapping[str, Any], i: int) -> SiteFee:
    site_id = item.get("site_id")
    if isinstance(site_id, bool) or not isinstance(site_id, int):
        raise BillingInputError(f"site_fees[{i}].site_id", "must be an integer")
    fee = parse_decimal(item.get("fee_per_endpoint_year"), f"site_fees[{i}].fee_per_endpoint_year")
    return SiteFee(site_id, fee)


def _parse_fixed_fee(item: Mapping[str, Any], i: int) -> FixedFee:
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BillingInputError(f"fixed_fees[{i}].name", "must be a non-empty string")
    return FixedFee(
        name.strip(), parse_decimal(item.get("monthly_amount"), f"fixed_fees[{i}].monthly_amount")
    )


def _parse_usage_price(item: Mapping[str, Any], i: int) -> UsagePrice:
    kind = item.get("kind")
    if kind not in USAGE_KINDS:
        raise BillingInputError(
            f"usage_prices[{i}].kind", f"{kind!r} is not one of {', '.join(sorted(USAGE_KINDS))}"
        )
    return UsagePrice(
        str(kind),
        parse_decimal(item.get("unit_price"), f"usage_prices[{i}].unit_price"),
        parse_decimal(item.get("included_per_year", 0), f"usage_prices[{i}].included_per_year"),
    )
