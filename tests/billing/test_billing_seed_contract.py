"""The seed contract as a worked example: two county venues, one endpoint each, 25 700 a year combined."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from rooms.billing.charges import ServiceChange, ServiceChangeKind
from rooms.billing.contract import ContractTerms
from rooms.billing.dunning import (
    InvoiceState,
    Standing,
    due_date,
    invoice_state,
    late_fee,
    notice_date,
    standing,
    suspension_date,
)
from rooms.billing.invoice import (
    BillingInputs,
    LineKind,
    SettledInvoice,
    SiteInfo,
    billable_periods,
    build_invoice,
)
from rooms.billing.periods import month_period

ACCEPTED = date(2026, 3, 16)  # mid-month
SEED = ContractTerms(currency="CNY", fee_per_endpoint_year=Decimal("12850"), start=ACCEPTED)
SITES = (SiteInfo(1, "County A venue"), SiteInfo(2, "County B venue"))
OPENED = (
    ServiceChange(1, ACCEPTED, ServiceChangeKind.OPEN, 1),
    ServiceChange(2, ACCEPTED, ServiceChangeKind.OPEN, 1),
)
INPUTS = BillingInputs(account_id=7, sites=SITES, changes=OPENED)


def test_seed_terms_are_the_contracts_numbers() -> None:
    assert SEED.payment_due_days == 40
    assert SEED.late_fee_rate_per_day == Decimal("0.03")
    assert SEED.suspension_after_notice_days == 20
    assert SEED.retention_months >= 5
    assert sum(SEED.fee_for_site(s.site_id) for s in SITES) == Decimal("25700")


def test_acceptance_month_and_trial_month_are_free() -> None:
    march = build_invoice(SEED, INPUTS, month_period(date(2026, 3, 1)))
    april = build_invoice(SEED, INPUTS, month_period(date(2026, 4, 1)))
    assert march.total == april.total == Decimal("0.00")
    # The trial line shows the free days: 16-31 March, then 1-15 April (the trial ends 16 April).
    assert [(line.kind, line.quantity, line.amount) for line in march.lines] == [
        (LineKind.TRIAL, Decimal(16), Decimal(0))
    ]
    assert [(line.kind, line.quantity) for line in april.lines] == [(LineKind.TRIAL, Decimal(15))]


def test_first_bill_is_may_with_a_line_per_site() -> None:
    may = build_invoice(SEED, INPUTS, month_period(date(2026, 5, 1)))
    assert [(line.kind, line.site_id, line.amount) for line in may.lines] == [
        (LineKind.SITE_FEE, 1, Decimal("1070.83")),
        (LineKind.SITE_FEE, 2, Decimal("1070.83")),
    ]
    assert may.total == Decimal("2141.66")
    assert may.issue_date == date(2026, 6, 1)
    assert may.due_date == date(2026, 7, 11)  # due within 40 days


def test_periods_billed_by_a_run_follow_the_calendar() -> None:
    periods = billable_periods(SEED, date(2026, 6, 1), None)
    assert [p.start for p in periods] == [date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)]
    assert billable_periods(SEED, date(2026, 5, 31), None)[-1].start == date(2026, 4, 1)


def test_payment_45_days_after_issue_pays_a_late_fee_for_5_days() -> None:
    may = build_invoice(SEED, INPUTS, month_period(date(2026, 5, 1)))
    paid_on = date(2026, 7, 16)  # 45 days after the 1 June issue date
    assert (paid_on - may.issue_date).days == 45
    fee = late_fee(SEED, may.total, may.due_date, paid_on)
    assert fee == Decimal("321.25")  # 2141.66 x 3 % x 5 days = 321.249
    assert late_fee(SEED, may.total, may.due_date, date(2026, 7, 11)) == Decimal("0.00")
    # The fee is billed once, on the invoice of the month the payment was made in (July).
    july = build_invoice(
        SEED,
        BillingInputs(
            7, SITES, OPENED, settled=(SettledInvoice("000003", may.total, may.due_date, paid_on),)
        ),
        month_period(date(2026, 7, 1)),
    )
    late = [line for line in july.lines if line.kind is LineKind.LATE_FEE]
    assert [(line.label, line.quantity, line.amount) for line in late] == [
        ("000003", Decimal(5), Decimal("321.25"))
    ]
    assert july.total == Decimal("2141.66") + Decimal("321.25")


def test_notice_then_suspension_20_days_later_then_reinstatement_on_payment() -> None:
    june = build_invoice(SEED, INPUTS, month_period(date(2026, 6, 1)))
    due = june.due_date
    assert due == date(2026, 8, 10)
    assert notice_date(due) == date(2026, 8, 11)
    assert suspension_date(SEED, due) == date(2026, 8, 31)

    def state(today: date, paid_on: date | None = None) -> InvoiceState:
        return invoice_state(SEED, total=june.total, due=due, paid_on=paid_on, today=today)

    assert state(date(2026, 7, 1)) is InvoiceState.ISSUED
    assert state(date(2026, 8, 10)) is InvoiceState.ISSUED
    assert state(date(2026, 8, 11)) is InvoiceState.OVERDUE
    assert state(date(2026, 8, 30)) is InvoiceState.OVERDUE
    assert state(date(2026, 8, 31)) is InvoiceState.SUSPENDED
    assert standing([("000004", state(date(2026, 8, 31)))]) == Standing(
        True, "suspended for non-payment of invoice 000004"
    )
    paid = date(2026, 9, 5)
    assert state(date(2026, 9, 5), paid) is InvoiceState.PAID
    assert standing([("000004", state(date(2026, 9, 5), paid))]) == Standing(False)
    # 26 days late: 78 % of the amount, uncapped in the seed contract.
    assert late_fee(SEED, june.total, due, paid) == Decimal("1670.49")  # 2141.66 x 0.78 = 1670.4948


def test_late_fee_cap_and_configurable_rate() -> None:
    capped = ContractTerms(
        currency="CNY",
        fee_per_endpoint_year=Decimal("12850"),
        start=ACCEPTED,
        late_fee_rate_per_day=Decimal("0.005"),
        late_fee_cap=Decimal("0.1"),
    )
    assert late_fee(capped, Decimal("1000.00"), date(2026, 1, 1), date(2026, 1, 11)) == Decimal("50.00")
    assert late_fee(capped, Decimal("1000.00"), date(2026, 1, 1), date(2026, 3, 1)) == Decimal("100.00")


def test_due_date_counts_from_issue() -> None:
    assert due_date(SEED, date(2026, 6, 1)) == date(2026, 7, 11)


def test_zero_invoice_is_paid_at_issue() -> None:
    assert (
        invoice_state(SEED, total=Decimal(0), due=date(2026, 5, 11), paid_on=None, today=date(2026, 12, 1))
        is InvoiceState.PAID
    )
