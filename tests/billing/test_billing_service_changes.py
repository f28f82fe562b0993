"""Service changes under the next-month rule and under pro-rating; renewal and notice."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from rooms.billing.charges import ServiceChange, ServiceChangeKind, site_month
from rooms.billing.contract import ChangeRule, ContractTerms, FixedFee, SiteFee, contract_end, contract_year
from rooms.billing.invoice import BillingInputs, LineKind, SiteInfo, billable_periods, build_invoice
from rooms.billing.periods import PaymentPeriod, billing_period, month_period

START = date(2026, 3, 16)
SEED = ContractTerms(currency="CNY", fee_per_endpoint_year=Decimal("12850"), start=START)
PRORATE = replace(SEED, change_rule=ChangeRule.PRORATE)
OPEN = ServiceChange(1, START, ServiceChangeKind.OPEN, 1)
SITE = (SiteInfo(1, "A"),)


def site_amount(
    terms: ContractTerms, changes: list[ServiceChange], month: date, end: date | None = None
) -> Decimal:
    return build_total(terms, changes, month, end)


def build_total(
    terms: ContractTerms, changes: list[ServiceChange], month: date, end: date | None = None
) -> Decimal:
    invoice = build_invoice(terms, BillingInputs(1, SITE, tuple(changes)), month_period(month))
    return sum((line.amount for line in invoice.lines if line.kind is LineKind.SITE_FEE), Decimal(0))


def test_endpoint_added_on_the_17th_counts_from_next_month_under_the_seed_rule() -> None:
    changes = [OPEN, ServiceChange(1, date(2026, 6, 17), ServiceChangeKind.CHANGE, 2)]
    assert site_amount(SEED, changes, date(2026, 6, 1)) == Decimal("1070.83")
    assert site_amount(SEED, changes, date(2026, 7, 1)) == Decimal("2141.67")


def test_endpoint_added_on_the_17th_is_pro_rated_by_day_under_a_prorating_contract() -> None:
    changes = [OPEN, ServiceChange(1, date(2026, 6, 17), ServiceChangeKind.CHANGE, 2)]
    month = site_month(PRORATE, 1, changes, date(2026, 6, 1), None)
    assert month.endpoint_days == 16 * 1 + 14 * 2
    assert site_amount(PRORATE, changes, date(2026, 6, 1)) == Decimal("1570.56")  # 12850/12 x 44/30
    assert site_amount(PRORATE, changes, date(2026, 7, 1)) == Decimal("2141.67")


def test_a_change_on_the_first_of_a_month_applies_to_that_month() -> None:
    changes = [OPEN, ServiceChange(1, date(2026, 6, 1), ServiceChangeKind.CHANGE, 2)]
    assert site_amount(SEED, changes, date(2026, 6, 1)) == Decimal("2141.67")


def test_pro_rated_trial_end_bills_the_rest_of_april() -> None:
    # The trial ends on 16 April: 15 days of April are billed.
    assert site_amount(PRORATE, [OPEN], date(2026, 4, 1)) == Decimal("535.42")  # 12850/12 x 15/30
    assert site_amount(SEED, [OPEN], date(2026, 4, 1)) == Decimal(0)


def test_suspension_month_is_charged_in_full_and_resumption_month_too() -> None:
    changes = [
        OPEN,
        ServiceChange(1, date(2026, 7, 10), ServiceChangeKind.SUSPEND),
        ServiceChange(1, date(2026, 9, 20), ServiceChangeKind.RESUME),
    ]
    full = Decimal("1070.83")
    assert site_amount(SEED, changes, date(2026, 7, 1)) == full
    assert site_amount(SEED, changes, date(2026, 8, 1)) == Decimal(0)
    assert site_amount(SEED, changes, date(2026, 9, 1)) == full
    assert site_amount(SEED, changes, date(2026, 10, 1)) == full
    # Pro-rated: 9 days of July, 11 days of September.
    assert site_amount(PRORATE, changes, date(2026, 7, 1)) == Decimal("310.89")  # 1070.833 x 9/31
    assert site_amount(PRORATE, changes, date(2026, 8, 1)) == Decimal(0)
    assert site_amount(PRORATE, changes, date(2026, 9, 1)) == Decimal("392.64")  # 1070.833 x 11/30


def test_site_opened_mid_month_starts_next_month_and_terminated_site_pays_its_last_month() -> None:
    changes = [
        ServiceChange(1, date(2026, 6, 17), ServiceChangeKind.OPEN, 1),
        ServiceChange(1, date(2026, 9, 3), ServiceChangeKind.TERMINATE),
    ]
    assert site_amount(SEED, changes, date(2026, 6, 1)) == Decimal(0)
    assert site_amount(SEED, changes, date(2026, 7, 1)) == Decimal("1070.83")
    assert site_amount(SEED, changes, date(2026, 9, 1)) == Decimal("1070.83")
    assert site_amount(SEED, changes, date(2026, 10, 1)) == Decimal(0)


def test_site_with_its_own_fee() -> None:
    terms = replace(SEED, site_fees=(SiteFee(1, Decimal("24000")),))
    assert site_amount(terms, [OPEN], date(2026, 6, 1)) == Decimal("2000.00")


def test_contract_renews_itself_yearly_unless_ended_with_30_days_notice() -> None:
    assert contract_end(SEED, None) is None
    assert contract_year(SEED, date(2027, 3, 15)) == (START, date(2027, 3, 16))
    assert contract_year(SEED, date(2027, 3, 16)) == (date(2027, 3, 16), date(2028, 3, 16))
    # 14 Feb 2027 is 30 days before the first renewal: in time. A day later: it renews once more.
    assert contract_end(SEED, date(2027, 2, 14)) == date(2027, 3, 16)
    assert contract_end(SEED, date(2027, 2, 15)) == date(2028, 3, 16)
    assert contract_end(SEED, date(2026, 4, 1)) == date(2027, 3, 16)


def test_ended_contract_bills_its_last_month_in_full_and_nothing_after() -> None:
    notice = date(2027, 1, 10)
    inputs = BillingInputs(1, SITE, (OPEN,), notice_on=notice)
    periods = billable_periods(SEED, date(2027, 6, 1), notice)
    assert periods[-1] == month_period(date(2027, 3, 1))
    march = build_invoice(SEED, inputs, month_period(date(2027, 3, 1)))
    assert march.total == Decimal("1070.83")
    prorated = build_invoice(PRORATE, inputs, month_period(date(2027, 3, 1)))
    assert prorated.total == Decimal("518.15")  # 15 days of March: 1070.833 x 15/31


def test_monthly_fixed_fee_has_a_line_of_its_own() -> None:
    terms = replace(SEED, fixed_fees=(FixedFee("Line rental", Decimal("300")),))
    june = build_invoice(terms, BillingInputs(1, SITE, (OPEN,)), month_period(date(2026, 6, 1)))
    assert [(line.kind, line.label, line.amount) for line in june.lines] == [
        (LineKind.SITE_FEE, "A", Decimal("1070.83")),
        (LineKind.FIXED_FEE, "Line rental", Decimal("300.00")),
    ]
    april = build_invoice(terms, BillingInputs(1, SITE, (OPEN,)), month_period(date(2026, 4, 1)))
    assert april.total == 0  # still in the trial


def test_quarterly_and_yearly_payment_periods() -> None:
    quarterly = replace(SEED, payment_period=PaymentPeriod.QUARTERLY)
    q2 = billing_period(date(2026, 5, 20), PaymentPeriod.QUARTERLY)
    assert q2 == month_period(date(2026, 4, 1)).__class__(date(2026, 4, 1), date(2026, 7, 1))
    invoice = build_invoice(quarterly, BillingInputs(1, SITE, (OPEN,)), q2)
    # April is free (trial), May and June are billed: 2 x 1070.8333 rounded once.
    assert invoice.total == Decimal("2141.67")
    yearly = replace(SEED, payment_period=PaymentPeriod.YEARLY)
    assert [p.start for p in billable_periods(yearly, date(2027, 1, 1), None)] == [date(2026, 1, 1)]
    year = build_invoice(yearly, BillingInputs(1, SITE, (OPEN,)), billing_period(START, PaymentPeriod.YEARLY))
    assert year.total == Decimal("8566.67")  # May-December: 8 x 1070.8333
