"""Read models for exports and the API: an invoice as a document, an account's invoice summaries."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from rooms.billing.charges import state_on
from rooms.billing.dunning import OUTSTANDING, InvoiceState, late_fee
from rooms.billing.errors import BillingInputError, BillingNotFound
from rooms.billing.export import InvoiceDocument, InvoiceSummary
from rooms.billing.inputs import changes_of, gather_inputs, stays_of
from rooms.billing.invoice import InvoiceDraft, InvoiceLine, LineKind, build_invoice
from rooms.billing.metering import Usage, meter_month
from rooms.billing.models import Contract, Invoice, InvoiceLineRow, UsageRecord
from rooms.billing.money import ZERO
from rooms.billing.periods import (
    Period,
    billing_period,
    local_date,
    local_midnight,
    month_period,
    month_start,
)
from rooms.billing.store import InvoiceView, get_invoice, list_invoices, terms_of
from rooms.database import Database
from rooms.live.stats import viewer_minutes
from rooms.live.store import viewings_of
from rooms.models import Account, Site
from rooms.recordings.store import stored_of
from rooms.sms.store import billable_parts as billable_sms_parts


def summary(invoice: Invoice) -> InvoiceSummary:
    return InvoiceSummary(
        number=invoice.number or "",
        period=Period(invoice.period_start, invoice.period_end),
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        state=invoice.state,
        currency=invoice.currency,
        total=invoice.total,
        paid_on=invoice.paid_on,
    )


async def invoice_summaries(db: Database, *, account_id: int) -> list[InvoiceSummary]:
    return [summary(i) for i in await list_invoices(db, account_id=account_id)]


def lines_of(view: InvoiceView) -> tuple[InvoiceLine, ...]:
    return tuple(
        InvoiceLine(LineKind(r.kind), r.quantity, r.unit_price, r.amount, r.site_id, r.label, r.detail)
        for r in view.lines
    )


async def invoice_document(db: Database, invoice_id: int, *, account_id: int | None) -> InvoiceDocument:
    view = await get_invoice(db, invoice_id, account_id=account_id)
    async with db.session() as session:
        account = await session.get(Account, view.invoice.account_id)
    invoice = view.invoice
    return InvoiceDocument(
        number=invoice.number or "",
        account_name=account.name if account is not None else "",
        currency=invoice.currency,
        period=Period(invoice.period_start, invoice.period_end),
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        state=invoice.state,
        total=invoice.total,
        paid_on=invoice.paid_on,
        lines=lines_of(view),
    )


async def accrued_late_fee(db: Database, invoice: Invoice, *, now: datetime) -> Decimal:
    """The late fee an invoice has accrued so far (billed on a later invoice once it is paid)."""
    async with db.session() as session:
        contract = await session.scalar(select(Contract).where(Contract.id == invoice.contract_id))
    if contract is None:
        return ZERO
    terms = terms_of(contract)
    if invoice.paid_on is not None:
        return late_fee(terms, invoice.total, invoice.due_date, invoice.paid_on)
    if InvoiceState(invoice.state) in OUTSTANDING:
        return late_fee(terms, invoice.total, invoice.due_date, local_date(now, terms.timezone))
    return ZERO


async def preview_invoice(db: Database, *, account_id: int, now: datetime) -> InvoiceDraft:
    """The draft of the account's current, unfinished period as it stands at `now`: nothing is written and
    nothing is numbered; usage is metered up to `now`."""
    async with db.session() as session:
        contracts = (
            await session.scalars(
                select(Contract).where(Contract.account_id == account_id).order_by(Contract.start.desc())
            )
        ).all()
        for contract in contracts:
            terms = terms_of(contract)
            today = local_date(now, terms.timezone)
            if terms.start <= today and (contract.end is None or today < contract.end):
                break
        else:
            raise BillingNotFound("no contract in force for this account", field="account_id")
        period = billing_period(today, terms.payment_period)
        inputs = await gather_inputs(session, contract, terms, period)
        metered: list[Usage] = []
        for month in period.months():
            if month > today:
                break
            lo = local_midnight(month, terms.timezone)
            hi = min(now, local_midnight(month_period(month).end, terms.timezone))
            stays = await stays_of(session, account_id, lo, hi)
            kept = await stored_of(session, account_id, lo, hi)
            live = viewer_minutes(await viewings_of(session, account_id, lo, hi), lo, hi)
            metered.extend(meter_month(month, lo, hi, stays, kept, live_minutes=live))
    stored = {(u.kind, u.month) for u in inputs.usage}
    usage = inputs.usage + tuple(u for u in metered if (u.kind, u.month) not in stored)
    return build_invoice(terms, replace(inputs, usage=usage), period)


@dataclass(frozen=True)
class UsageRow:
    kind: str
    quantity: Decimal
    source: str  # metered, entered, so_far


@dataclass(frozen=True)
class SiteUsage:
    site_id: int
    name: str
    endpoints: int
    in_service: bool


@dataclass(frozen=True)
class UsageReport:
    month: date
    usage: tuple[UsageRow, ...]
    sites: tuple[SiteUsage, ...]


async def usage_report(db: Database, *, account_id: int, month: date | None, now: datetime) -> UsageReport:
    """Every usage kind recorded for the account's month, whatever wrote it (the run's metering, an admin's
    entry, other packages' meters): a kind is shown because a row exists, not because this code knows it.
    A month no invoice covers yet (the current one) is also metered up to `now` for the kinds not stored."""
    async with db.session() as session:
        contract = await session.scalar(
            select(Contract).where(Contract.account_id == account_id).order_by(Contract.start.desc()).limit(1)
        )
        zone = terms_of(contract).timezone if contract is not None else "UTC"
        today = local_date(now, zone)
        first = month_start(month or today)
        if first > today:
            raise BillingInputError("month", f"{first:%Y-%m} has not begun")
        rows = (
            await session.scalars(
                select(UsageRecord)
                .where(UsageRecord.account_id == account_id, UsageRecord.month == first)
                .order_by(UsageRecord.kind)
            )
        ).all()
        usage = {r.kind: UsageRow(r.kind, r.quantity, r.source) for r in rows}
        billed = await session.scalar(
            select(Invoice.id).where(
                Invoice.account_id == account_id,
                Invoice.number.is_not(None),
                Invoice.period_start <= first,
                Invoice.period_end > first,
            )
        )
        if billed is None:
            lo = local_midnight(first, zone)
            hi = min(now, local_midnight(month_period(first).end, zone))
            stays = await stays_of(session, account_id, lo, hi)
            kept = await stored_of(session, account_id, lo, hi)
            live = viewer_minutes(await viewings_of(session, account_id, lo, hi), lo, hi)
            for metered in meter_month(first, lo, hi, stays, kept, live_minutes=live):
                if metered.kind not in usage and metered.quantity:
                    usage[metered.kind] = UsageRow(metered.kind, metered.quantity, "so_far")
            # The run meters SMS parts apart (rooms/sms); counted the same way, trial included (it is usage).
            parts = await billable_sms_parts(session, account_id, lo, hi)
            if parts and "sms" not in usage:
                usage["sms"] = UsageRow("sms", Decimal(parts), "so_far")
        changes = await changes_of(session, account_id)
        sites = (
            await session.scalars(select(Site).where(Site.account_id == account_id).order_by(Site.id))
        ).all()
    last = min(today, month_period(first).end - timedelta(days=1))
    site_rows = []
    for site in sites:
        state = state_on([c for c in changes if c.site_id == site.id], last)
        site_rows.append(SiteUsage(site.id, site.name, state.endpoints, state.in_service))
    return UsageReport(first, tuple(sorted(usage.values(), key=lambda u: u.kind)), tuple(site_rows))


@dataclass(frozen=True)
class OutageCredit:
    """A credit line an outage caused, with the invoice that carries it."""

    invoice_id: int
    number: str
    period: Period
    currency: str
    line: InvoiceLine


async def outage_credits(db: Database, *, account_id: int) -> list[OutageCredit]:
    """The live-event and availability credits on the account's invoices, oldest first: what outages cost."""
    kinds = [LineKind.EVENT_CREDIT.value, LineKind.AVAILABILITY_CREDIT.value]
    async with db.session() as session:
        rows = (
            await session.execute(
                select(Invoice, InvoiceLineRow)
                .join(InvoiceLineRow, InvoiceLineRow.invoice_id == Invoice.id)
                .where(Invoice.account_id == account_id, InvoiceLineRow.kind.in_(kinds))
                .order_by(Invoice.period_start, Invoice.id, InvoiceLineRow.position)
            )
        ).all()
    return [
        OutageCredit(
            invoice.id,
            invoice.number or "",
            Period(invoice.period_start, invoice.period_end),
            invoice.currency,
            InvoiceLine(LineKind(r.kind), r.quantity, r.unit_price, r.amount, r.site_id, r.label, r.detail),
        )
        for invoice, r in rows
    ]
