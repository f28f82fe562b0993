"""Due dates, late fees, notices, suspension and retention: pure functions of terms, amounts and dates."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from dateutil.relativedelta import relativedelta

from rooms.billing.contract import ContractTerms
from rooms.billing.money import ZERO, quantize
from rooms.billing.periods import Period


class InvoiceState(StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    PAID = "paid"
    OVERDUE = "overdue"
    SUSPENDED = "suspended"


OUTSTANDING = frozenset({InvoiceState.ISSUED, InvoiceState.OVERDUE, InvoiceState.SUSPENDED})


def issue_date(period: Period) -> date:
    """Invoices are issued in arrears, on the first day after their period."""
    return period.end


def due_date(terms: ContractTerms, issued_on: date) -> date:
    """The last day to pay without a late fee."""
    return issued_on + timedelta(days=terms.payment_due_days)


def notice_date(due: date) -> date:
    """The overdue notice goes out on the first day after the due date."""
    return due + timedelta(days=1)


def suspension_date(terms: ContractTerms, due: date) -> date:
    return notice_date(due) + timedelta(days=terms.suspension_after_notice_days)


def days_late(due: date, paid_on: date) -> int:
    return max(0, (paid_on - due).days)


def late_fee(terms: ContractTerms, amount: Decimal, due: date, paid_on: date) -> Decimal:
    """Simple daily interest on the overdue amount for each day past the due date, capped if the contract
    says so; rounded once, at the end."""
    days = days_late(due, paid_on)
    if days == 0 or amount <= 0:
        return ZERO
    fee = amount * terms.late_fee_rate_per_day * days
    if terms.late_fee_cap is not None:
        fee = min(fee, amount * terms.late_fee_cap)
    return quantize(fee)


def invoice_state(
    terms: ContractTerms, *, total: Decimal, due: date, paid_on: date | None, today: date, issued: bool = True
) -> InvoiceState:
    """draft -> issued -> paid, or issued -> overdue (after the due date) -> suspended (notice + N days)."""
    if not issued:
        return InvoiceState.DRAFT
    if paid_on is not None or total <= 0:
        return InvoiceState.PAID
    if today >= suspension_date(terms, due):
        return InvoiceState.SUSPENDED
    if today > due:
        return InvoiceState.OVERDUE
    return InvoiceState.ISSUED


@dataclass(frozen=True)
class Standing:
    """Whether an account's sites are suspended for non-payment, and why."""

    suspended: bool
    reason: str = ""


def standing(states: Iterable[tuple[str, InvoiceState]]) -> Standing:
    """From (invoice number, state) pairs: suspended while any invoice is in the suspended state."""
    overdue = sorted(number for number, state in states if state is InvoiceState.SUSPENDED)
    if overdue:
        return Standing(True, f"suspended for non-payment of invoice {', '.join(overdue)}")
    return Standing(False)


def purge_date(terms: ContractTerms, period: Period) -> date:
    """Billing records of a period are kept `retention_months` whole months after the period's last month,
    and purged from this day on."""
    return period.end + relativedelta(months=terms.retention_months)
