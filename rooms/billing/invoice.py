"""One billing period's invoice for an account: lines per site, fixed fee, usage kind, late fee and credit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from rooms.billing.charges import ServiceChange, site_months, trial_days
from rooms.billing.contract import ChangeRule, ContractTerms, contract_end, contract_year, trial_end
from rooms.billing.credits import (
    LiveEvent,
    Outage,
    affecting,
    availability,
    availability_credit,
    live_event_credit,
    longest_interruption,
)
from rooms.billing.dunning import days_late, due_date, issue_date, late_fee
from rooms.billing.metering import Usage
from rooms.billing.money import ZERO, quantize
from rooms.billing.periods import (
    Period,
    billing_period,
    days_in_month,
    effective_month,
    local_date,
    local_midnight,
    month_period,
    quarter_period,
)

QUANTITY = Decimal("0.0001")


class LineKind(StrEnum):
    SITE_FEE = "site_fee"
    TRIAL = "trial"
    FIXED_FEE = "fixed_fee"
    USAGE = "usage"
    LIVE_EVENT = "live_event"
    LATE_FEE = "late_fee"
    EVENT_CREDIT = "event_credit"
    AVAILABILITY_CREDIT = "availability_credit"
    CREDIT_NOTE = "credit_note"
    CARRIED_CREDIT = "carried_credit"


CREDIT_KINDS = frozenset(
    {LineKind.EVENT_CREDIT, LineKind.AVAILABILITY_CREDIT, LineKind.CREDIT_NOTE, LineKind.CARRIED_CREDIT}
)


@dataclass(frozen=True)
class InvoiceLine:
    kind: LineKind
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # quantized; negative for credits
    site_id: int | None = None
    label: str = ""  # site name, fixed fee name, usage kind, invoice number or meeting id
    detail: str = ""  # free text for the reader, e.g. the trial's end or a credit carried forward


@dataclass(frozen=True)
class SiteInfo:
    site_id: int
    name: str


@dataclass(frozen=True)
class SettledInvoice:
    """A paid invoice whose late fee has not been billed yet."""

    number: str
    total: Decimal
    due: date
    paid_on: date


@dataclass(frozen=True)
class CreditNoteFact:
    """A credit note on a paid invoice, credited on the next invoice."""

    number: str
    amount: Decimal
    invoice_number: str


@dataclass(frozen=True)
class BillingInputs:
    account_id: int
    sites: tuple[SiteInfo, ...]
    changes: tuple[ServiceChange, ...] = ()
    usage: tuple[Usage, ...] = ()  # per month, for the contract years the period touches
    live_events: tuple[LiveEvent, ...] = ()
    outages: tuple[Outage, ...] = ()
    settled: tuple[SettledInvoice, ...] = ()
    credit_notes: tuple[CreditNoteFact, ...] = ()
    carried_credit: Decimal = ZERO  # credit left over from the previous invoice
    notice_on: date | None = None  # the day notice of termination was given


@dataclass(frozen=True)
class InvoiceDraft:
    account_id: int
    currency: str
    period: Period
    issue_date: date
    due_date: date
    lines: tuple[InvoiceLine, ...] = field(default=())
    total: Decimal = ZERO
    carry_forward: Decimal = ZERO  # credit that did not fit this invoice


def billable_periods(terms: ContractTerms, today: date, notice_on: date | None) -> list[Period]:
    """Periods that have ended by `today` and that the contract covers, oldest first."""
    end = contract_end(terms, notice_on)
    periods = []
    period = billing_period(terms.start, terms.payment_period)
    while period.end <= today and (end is None or period.start < end):
        periods.append(period)
        period = billing_period(period.end, terms.payment_period)
    return periods


def chargeable_fraction(terms: ContractTerms, month: date, end: date | None) -> Decimal:
    """The part of a month the contract charges for after the trial: whole months under the next-month
    rule, days under pro-rating."""
    whole = month_period(month)
    if terms.change_rule is ChangeRule.NEXT_MONTH:
        first = effective_month(trial_end(terms))
        last = None if end is None else effective_month(end)
        inside = whole.start >= first and (last is None or whole.start < last)
        return Decimal(1) if inside else Decimal(0)
    lo = max(whole.start, trial_end(terms))
    hi = whole.end if end is None else min(whole.end, end)
    return Decimal(max(0, (hi - lo).days)) / Decimal(days_in_month(month))


def build_invoice(terms: ContractTerms, inputs: BillingInputs, period: Period) -> InvoiceDraft:
    """The invoice of `period`: a pure function of the terms and the inputs."""
    end = contract_end(terms, inputs.notice_on)
    charges: list[InvoiceLine] = []
    credits: list[InvoiceLine] = []

    free_days = trial_days(terms, period)
    if free_days:
        charges.append(
            InvoiceLine(LineKind.TRIAL, Decimal(free_days), ZERO, ZERO, detail=str(trial_end(terms)))
        )
    site_ids = [s.site_id for s in inputs.sites]
    names = {s.site_id: s.name for s in inputs.sites}
    months = site_months(terms, site_ids, inputs.changes, period, end)
    for site_id in sorted(set(site_ids)):
        own = [m for m in months if m.site_id == site_id]
        amount = quantize(sum((m.amount for m in own), ZERO))
        if amount == 0:
            continue
        quantity = sum((m.endpoint_months for m in own), Decimal(0)).quantize(QUANTITY)
        unit = quantize(terms.fee_for_site(site_id) / 12)
        charges.append(InvoiceLine(LineKind.SITE_FEE, quantity, unit, amount, site_id, names[site_id]))

    chargeable = {m: chargeable_fraction(terms, m, end) for m in period.months()}
    for fixed in terms.fixed_fees:
        quantity = sum(chargeable.values(), Decimal(0))
        amount = quantize(fixed.monthly_amount * quantity)
        if amount:
            charges.append(
                InvoiceLine(
                    LineKind.FIXED_FEE,
                    quantity.quantize(QUANTITY),
                    fixed.monthly_amount,
                    amount,
                    None,
                    fixed.name,
                )
            )

    charges.extend(_usage_lines(terms, inputs.usage, period, {m for m, f in chargeable.items() if f > 0}))
    event_lines, event_credits = _live_event_lines(terms, inputs, period, chargeable)
    charges.extend(event_lines)
    credits.extend(event_credits)
    credits.extend(_availability_credits(terms, inputs, period, end))

    for settled in sorted(inputs.settled, key=lambda s: s.number):
        fee = late_fee(terms, settled.total, settled.due, settled.paid_on)
        if fee:
            days = Decimal(days_late(settled.due, settled.paid_on))
            charges.append(
                InvoiceLine(
                    LineKind.LATE_FEE,
                    days,
                    terms.late_fee_rate_per_day,
                    fee,
                    label=settled.number,
                    detail=f"{settled.total}",
                )
            )
    for note in sorted(inputs.credit_notes, key=lambda n: n.number):
        credits.append(
            InvoiceLine(
                LineKind.CREDIT_NOTE,
                Decimal(1),
                -note.amount,
                -note.amount,
                label=note.number,
                detail=note.invoice_number,
            )
        )
    if inputs.carried_credit > 0:
        credits.append(
            InvoiceLine(LineKind.CARRIED_CREDIT, Decimal(1), -inputs.carried_credit, -inputs.carried_credit)
        )

    lines, carry = _apply_credits(charges, credits)
    issued = issue_date(period)
    return InvoiceDraft(
        account_id=inputs.account_id,
        currency=terms.currency,
        period=period,
        issue_date=issued,
        due_date=due_date(terms, issued),
        lines=tuple(lines),
        total=sum((line.amount for line in lines), ZERO),
        carry_forward=carry,
    )


def _apply_credits(
    charges: Sequence[InvoiceLine], credits: Sequence[InvoiceLine]
) -> tuple[list[InvoiceLine], Decimal]:
    """Credits reduce the invoice at most to zero; the rest is carried forward to the next invoice."""
    room = sum((line.amount for line in charges), ZERO)
    lines = list(charges)
    carry = ZERO
    for credit in credits:
        wanted = -credit.amount
        applied = min(wanted, room)
        room -= applied
        if applied == wanted:
            lines.append(credit)
            continue
        carry += wanted - applied
        lines.append(
            InvoiceLine(
                credit.kind,
                credit.quantity,
                credit.unit_price,
                ZERO - applied,
                credit.site_id,
                credit.label,
                f"{wanted - applied} carried forward",
            )
        )
    return lines, carry


def _usage_lines(
    terms: ContractTerms, usage: Sequence[Usage], period: Period, chargeable_months: set[date]
) -> list[InvoiceLine]:
    lines = []
    for price in terms.usage_prices:
        own = sorted((u for u in usage if u.kind == price.kind), key=lambda u: u.month)
        billable = Decimal(0)
        for u in own:
            if not period.contains(u.month) or u.month not in chargeable_months:
                continue
            year = contract_year(terms, max(u.month, terms.start))
            before = sum(
                (
                    v.quantity
                    for v in own
                    if v.month < u.month and contract_year(terms, max(v.month, terms.start)) == year
                ),
                Decimal(0),
            )
            over_after = max(Decimal(0), before + u.quantity - price.included_per_year)
            over_before = max(Decimal(0), before - price.included_per_year)
            billable += over_after - over_before
        amount = quantize(billable * price.unit_price)
        if amount:
            lines.append(InvoiceLine(LineKind.USAGE, billable, price.unit_price, amount, label=price.kind))
    return lines


def _live_event_lines(
    terms: ContractTerms, inputs: BillingInputs, period: Period, chargeable: dict[date, Decimal]
) -> tuple[list[InvoiceLine], list[InvoiceLine]]:
    fee = terms.live_event_fee
    if fee is None:
        return [], []
    outages = affecting(inputs.outages, inputs.account_id)
    events = []
    for event in sorted(inputs.live_events, key=lambda e: (e.start, e.meeting_id)):
        day = local_date(event.start, terms.timezone)
        if period.contains(day) and chargeable.get(day.replace(day=1), Decimal(0)) > 0:
            events.append(event)
    if not events:
        return [], []
    charge = InvoiceLine(LineKind.LIVE_EVENT, Decimal(len(events)), fee, quantize(fee * len(events)))
    credits = []
    for event in events:
        gap = longest_interruption(outages, event.start, event.end)
        credit = live_event_credit(fee, gap)
        if credit:
            credits.append(
                InvoiceLine(
                    LineKind.EVENT_CREDIT,
                    Decimal(1),
                    -credit,
                    -credit,
                    label=str(event.meeting_id),
                    detail=f"{int(gap.total_seconds())} s",
                )
            )
    return [charge], credits


def _availability_credits(
    terms: ContractTerms, inputs: BillingInputs, period: Period, end: date | None
) -> list[InvoiceLine]:
    """For each calendar quarter ending inside the period, credit its site and fixed fees pro rata to the
    shortfall below the availability target (measured over the part of the quarter the contract covers)."""
    outages = affecting(inputs.outages, inputs.account_id)
    lines = []
    quarter = quarter_period(period.start)
    while quarter.end <= period.end:
        if quarter.end > period.start and quarter.end > terms.start:
            fee = _quarter_fee(terms, inputs, quarter, end)
            lo = local_midnight(max(quarter.start, terms.start), terms.timezone)
            hi = local_midnight(quarter.end if end is None else min(quarter.end, end), terms.timezone)
            if fee > 0 and lo < hi:
                actual = availability(outages, lo, hi)
                credit = availability_credit(fee, actual, terms.availability_target)
                if credit:
                    lines.append(
                        InvoiceLine(
                            LineKind.AVAILABILITY_CREDIT,
                            actual.quantize(Decimal("0.001")),
                            -credit,
                            -credit,
                            label=quarter.label(),
                            detail=f"{fee}",
                        )
                    )
        quarter = quarter_period(quarter.end)
    return lines


def _quarter_fee(terms: ContractTerms, inputs: BillingInputs, quarter: Period, end: date | None) -> Decimal:
    months = site_months(terms, [s.site_id for s in inputs.sites], inputs.changes, quarter, end)
    fixed = sum(
        (
            f.monthly_amount * chargeable_fraction(terms, m, end)
            for f in terms.fixed_fees
            for m in quarter.months()
        ),
        Decimal(0),
    )
    return quantize(sum((m.amount for m in months), Decimal(0)) + fixed)
