"""Properties of the invoice builder over random contracts, usage, outages and payments."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.billing.charges import ServiceChange, ServiceChangeKind
from rooms.billing.contract import ChangeRule, ContractTerms, UsagePrice
from rooms.billing.credits import LiveEvent, Outage
from rooms.billing.invoice import (
    CREDIT_KINDS,
    BillingInputs,
    SettledInvoice,
    SiteInfo,
    billable_periods,
    build_invoice,
)
from rooms.billing.metering import Usage
from rooms.billing.money import ZERO
from rooms.billing.periods import PaymentPeriod

BASE = datetime(2026, 1, 1, tzinfo=UTC)
money = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[ContractTerms, BillingInputs, date]:
    start = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 200)))
    terms = ContractTerms(
        currency="CNY",
        fee_per_endpoint_year=draw(money),
        start=start,
        change_rule=draw(st.sampled_from(ChangeRule)),
        payment_period=draw(st.sampled_from(PaymentPeriod)),
        trial_months=draw(st.integers(0, 2)),
        live_event_fee=draw(st.none() | money),
        late_fee_cap=draw(st.none() | st.decimals(min_value=0, max_value=1, places=2)),
        usage_prices=(UsagePrice("sms", Decimal("0.038"), Decimal(draw(st.integers(0, 1000)))),),
    )
    sites = tuple(SiteInfo(i, f"site {i}") for i in range(1, draw(st.integers(1, 3)) + 1))
    changes = [
        ServiceChange(s.site_id, start, ServiceChangeKind.OPEN, draw(st.integers(0, 3))) for s in sites
    ]
    for _ in range(draw(st.integers(0, 6))):
        changes.append(
            ServiceChange(
                draw(st.sampled_from(sites)).site_id,
                start + timedelta(days=draw(st.integers(0, 500))),
                draw(st.sampled_from(ServiceChangeKind)),
                draw(st.integers(0, 4)),
            )
        )
    usage = tuple(
        Usage("sms", date(2026 + m // 12, m % 12 + 1, 1), Decimal(draw(st.integers(0, 800))))
        for m in range(draw(st.integers(0, 20)))
    )
    instants = st.integers(0, 600 * 86400).map(lambda s: BASE + timedelta(seconds=s))
    outages = tuple(
        Outage(t, t + timedelta(seconds=draw(st.integers(1, 200_000))), draw(st.sampled_from([None, 1, 2])))
        for t in draw(st.lists(instants, max_size=5))
    )
    events = tuple(
        LiveEvent(i, t, t + timedelta(minutes=draw(st.integers(1, 300))))
        for i, t in enumerate(draw(st.lists(instants, max_size=4)))
    )
    settled = tuple(
        SettledInvoice(f"{i:06d}", draw(money), start + timedelta(days=d), start + timedelta(days=d + late))
        for i, (d, late) in enumerate(
            draw(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 90)), max_size=3))
        )
    )
    inputs = BillingInputs(
        1,
        sites,
        tuple(changes),
        usage,
        events,
        outages,
        settled,
        carried_credit=draw(money),
        notice_on=draw(st.none() | st.just(start + timedelta(days=draw(st.integers(0, 400))))),
    )
    return terms, inputs, start + timedelta(days=draw(st.integers(0, 700)))


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_totals_are_the_sum_of_lines_and_never_negative(
    scenario: tuple[ContractTerms, BillingInputs, date],
) -> None:
    terms, inputs, today = scenario
    carried = inputs.carried_credit
    credits_wanted = ZERO
    credits_applied = ZERO
    for period in billable_periods(terms, today, inputs.notice_on):
        step = replace(inputs, carried_credit=carried)
        invoice = build_invoice(terms, step, period)
        again = build_invoice(terms, step, period)
        assert invoice == again  # a re-run computes the same invoice
        assert invoice.total == sum((line.amount for line in invoice.lines), ZERO)
        assert invoice.total >= 0
        assert invoice.carry_forward >= 0
        for line in invoice.lines:
            assert line.amount == line.amount.quantize(Decimal("0.01"))
            assert (line.amount <= 0) if line.kind in CREDIT_KINDS else (line.amount >= 0)
        applied = -sum((line.amount for line in invoice.lines if line.kind in CREDIT_KINDS), ZERO)
        # Credit is conserved: what was asked for is either applied or carried forward.
        wanted = applied + invoice.carry_forward
        credits_wanted += wanted - carried
        credits_applied += applied
        carried = invoice.carry_forward
    assert credits_applied + carried == credits_wanted + inputs.carried_credit
