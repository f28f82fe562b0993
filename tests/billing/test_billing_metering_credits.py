"""Usage metering from attendance, included packs, outage credits and carried-forward credit."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from rooms.billing.charges import ServiceChange, ServiceChangeKind
from rooms.billing.contract import ContractTerms, UsagePrice
from rooms.billing.credits import (
    LiveEvent,
    Outage,
    availability,
    availability_credit,
    live_event_credit,
    longest_interruption,
)
from rooms.billing.invoice import BillingInputs, LineKind, SiteInfo, build_invoice
from rooms.billing.metering import (
    Stay,
    StoredRecording,
    Usage,
    meter_month,
    participant_minutes,
    peak_concurrency,
    peak_concurrent_endpoints,
    storage_gb_months,
)
from rooms.billing.periods import local_midnight, month_period, quarter_period

START = date(2026, 3, 16)
SEED = ContractTerms(currency="CNY", fee_per_endpoint_year=Decimal("12850"), start=START)
SITES = (SiteInfo(1, "A"), SiteInfo(2, "B"))
OPENED = tuple(ServiceChange(s.site_id, START, ServiceChangeKind.OPEN, 1) for s in SITES)
T0 = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_peak_concurrency_from_overlapping_intervals() -> None:
    assert peak_concurrency([]) == 0
    assert peak_concurrency([(at(0), at(60)), (at(30), at(90)), (at(45), at(50)), (at(95), at(100))]) == 3
    # Back to back is not concurrent: [0, 30) then [30, 60).
    assert peak_concurrency([(at(0), at(30)), (at(30), at(60))]) == 1
    assert peak_concurrency([(at(0), at(30)), (at(29), at(60))]) == 2


def test_peak_concurrent_endpoints_counts_room_terminals_only() -> None:
    stays = [
        Stay("sip", at(0), at(60), endpoint_id=1),
        Stay("sip", at(10), None, endpoint_id=2),  # still connected
        Stay("browser", at(0), at(60)),
        Stay("sip", at(200), at(260), endpoint_id=3),
    ]
    assert peak_concurrent_endpoints(stays, at(0), at(1000)) == 2
    assert peak_concurrent_endpoints(stays, at(61), at(1000)) == 2  # the open stay and endpoint 3
    assert peak_concurrent_endpoints(stays, at(100), at(150)) == 1


def test_participant_minutes_by_kind_round_each_stay_up() -> None:
    stays = [
        Stay("browser", at(0), at(0.5)),
        Stay("browser", at(0), at(2)),
        Stay("sip", at(0), at(10)),
        Stay("viewer", at(5), None),
    ]
    assert participant_minutes(stays, at(0), at(20)) == {"browser": 3, "sip": 10, "viewer": 15}
    # Clipped to the month: only the part inside counts.
    assert participant_minutes(stays, at(5), at(8)) == {"sip": 3, "viewer": 3}


def test_storage_gb_months() -> None:
    june = month_period(date(2026, 6, 1))
    lo, hi = local_midnight(june.start, "UTC"), local_midnight(june.end, "UTC")
    half = lo + (hi - lo) / 2
    recordings = [
        StoredRecording(2 * 10**9, lo - timedelta(days=3), None),
        StoredRecording(10**9, half, None),
    ]
    assert storage_gb_months(recordings, lo, hi) == Decimal("2.5000")
    usage = meter_month(june.start, lo, hi, [Stay("viewer", lo, lo + timedelta(minutes=3))], recordings)
    kinds = {u.kind: u.quantity for u in usage}
    assert kinds["live_viewer_minutes"] == 3
    assert kinds["recording_gb_months"] == Decimal("2.5000")
    assert kinds["peak_endpoints"] == 0


def test_sms_over_the_included_yearly_pack() -> None:
    terms = replace(SEED, usage_prices=(UsagePrice("sms", Decimal("0.038"), Decimal(300_000)),))
    usage = (
        Usage("sms", date(2026, 5, 1), Decimal(250_000)),
        Usage("sms", date(2026, 6, 1), Decimal(100_000)),
        Usage("sms", date(2026, 7, 1), Decimal(1_000)),
        Usage("sms", date(2027, 4, 1), Decimal(1_000)),  # a new contract year: a new pack
    )
    inputs = BillingInputs(1, (), usage=usage)

    def sms(month: date) -> list[tuple[Decimal, Decimal]]:
        lines = build_invoice(terms, inputs, month_period(month)).lines
        return [(line.quantity, line.amount) for line in lines if line.kind is LineKind.USAGE]

    assert sms(date(2026, 5, 1)) == []
    assert sms(date(2026, 6, 1)) == [(Decimal(50_000), Decimal("1900.00"))]
    assert sms(date(2026, 7, 1)) == [(Decimal(1_000), Decimal("38.00"))]
    assert sms(date(2027, 4, 1)) == []


@pytest.mark.parametrize(
    ("seconds", "credit"),
    [(29, Decimal("0.00")), (30, Decimal("500.00")), (59, Decimal("500.00")), (60, Decimal("1000.00"))],
)
def test_live_event_outage_credit_thresholds(seconds: int, credit: Decimal) -> None:
    start, end = at(0), at(60)
    outage = Outage(at(10), at(10) + timedelta(seconds=seconds))
    assert longest_interruption([outage], start, end) == timedelta(seconds=seconds)
    assert live_event_credit(Decimal("1000"), timedelta(seconds=seconds)) == credit
    terms = replace(SEED, live_event_fee=Decimal("1000"))
    invoice = build_invoice(
        terms,
        BillingInputs(1, (), live_events=(LiveEvent(42, start, end),), outages=(outage,)),
        month_period(date(2026, 6, 1)),
    )
    assert invoice.total == Decimal("1000.00") - credit
    credits = [line for line in invoice.lines if line.kind is LineKind.EVENT_CREDIT]
    assert [line.amount for line in credits] == ([-credit] if credit else [])


def test_event_interruption_is_the_longest_merged_outage_inside_the_event() -> None:
    # Two overlapping outages of 20 s make one 35 s interruption; another account's outage does not count.
    outages = [
        Outage(at(10), at(10) + timedelta(seconds=20)),
        Outage(at(10) + timedelta(seconds=15), at(10) + timedelta(seconds=35), account_id=1),
        Outage(at(20), at(30), account_id=2),
    ]
    mine = [o for o in outages if o.account_id in (None, 1)]
    assert longest_interruption(mine, at(0), at(60)) == timedelta(seconds=35)
    # Clipped to the event: an outage starting 20 s before the event's end counts for 20 s.
    assert longest_interruption([Outage(at(60) - timedelta(seconds=20), at(70))], at(0), at(60)) == timedelta(
        seconds=20
    )


def test_quarterly_availability_credit_pro_rata_to_the_shortfall() -> None:
    q2 = quarter_period(date(2026, 5, 1))
    lo, hi = local_midnight(q2.start, SEED.timezone), local_midnight(q2.end, SEED.timezone)
    day_down = Outage(lo + timedelta(days=40), lo + timedelta(days=41))
    actual = availability([day_down], lo, hi)
    assert actual == Decimal(100) * (Decimal(91 * 86400 - 86400) / Decimal(91 * 86400))
    assert availability_credit(Decimal("100"), Decimal("99.5"), Decimal("99.5")) == 0
    assert availability_credit(Decimal("1000"), Decimal("98.5"), Decimal("99.5")) == Decimal("10.00")
    # The June invoice closes Q2: its fee (May + June = 4283.33) is credited by (99.5 - 98.901) %.
    june = build_invoice(
        SEED, BillingInputs(1, SITES, OPENED, outages=(day_down,)), month_period(date(2026, 6, 1))
    )
    credit = [line for line in june.lines if line.kind is LineKind.AVAILABILITY_CREDIT]
    assert [(line.label, line.amount) for line in credit] == [("2026-04-01..2026-06-30", Decimal("-25.65"))]
    assert june.total == Decimal("2141.66") - Decimal("25.65")
    may = build_invoice(
        SEED, BillingInputs(1, SITES, OPENED, outages=(day_down,)), month_period(date(2026, 5, 1))
    )
    assert all(line.kind is LineKind.SITE_FEE for line in may.lines)
    # Above the target: no credit (an outage of one hour is 99.95 %).
    short = Outage(lo, lo + timedelta(hours=1))
    june_ok = build_invoice(
        SEED, BillingInputs(1, SITES, OPENED, outages=(short,)), month_period(date(2026, 6, 1))
    )
    assert june_ok.total == Decimal("2141.66")


def test_credits_never_make_an_invoice_negative_and_the_rest_is_carried_forward() -> None:
    terms = replace(SEED, live_event_fee=Decimal("1000"))
    inputs = BillingInputs(
        1,
        SITES,
        OPENED,
        live_events=(LiveEvent(42, at(0), at(60)),),
        outages=(Outage(at(1), at(3)),),
        carried_credit=Decimal("5000.00"),
    )
    june = build_invoice(terms, inputs, month_period(date(2026, 6, 1)))
    assert june.total == Decimal("0.00")
    # 2141.66 + 1000 of charges; 1000 event credit fits, then 2141.66 of the 5000 carried in.
    assert june.carry_forward == Decimal("5000.00") - Decimal("2141.66")
    carried = [line for line in june.lines if line.kind is LineKind.CARRIED_CREDIT]
    assert carried[0].amount == Decimal("-2141.66")
    assert sum(line.amount for line in june.lines) == june.total
