"""The billing run: issue due invoices, meter usage, send notices, suspend and reinstate, purge.

Idempotent (a second run with the same `now` changes nothing) and transactional (one transaction per
contract). The scheduler calls `run_billing` daily; the API and CLI may call it at any time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.audit.recorder import Actor, acting_unless_acting
from rooms.billing.charges import ServiceChangeKind, state_on
from rooms.billing.contract import ContractTerms, parse_date, trial_end
from rooms.billing.dunning import (
    OUTSTANDING,
    InvoiceState,
    invoice_state,
    notice_date,
    purge_date,
    suspension_date,
)
from rooms.billing.errors import BillingInputError
from rooms.billing.inputs import changes_of, gather_inputs, stays_of
from rooms.billing.invoice import (
    BillingInputs,
    InvoiceDraft,
    billable_periods,
    build_invoice,
)
from rooms.billing.ledger import apply_standing, next_number
from rooms.billing.metering import meter_month
from rooms.billing.models import (
    Contract,
    CreditNote,
    Invoice,
    InvoiceLineRow,
    SiteServiceChange,
    UsageRecord,
)
from rooms.billing.notices import notify_invoice_issued
from rooms.billing.periods import Period, local_date, local_midnight, month_period, month_start, next_month
from rooms.billing.store import enabled_endpoints, terms_of
from rooms.database import Database
from rooms.live.stats import viewer_minutes
from rooms.live.store import viewings_of
from rooms.models import Endpoint
from rooms.recordings.store import stored_of
from rooms.sms.store import billable_parts as billable_sms_parts
from rooms.webhooks.events import emit

logger = logging.getLogger(__name__)
# The audit log's actor for what the periodic run (not a person) writes.
BILLING_RUN = Actor(None, "system: billing run", None, "")

# Usage rows are kept a contract year past retention: included yearly packs are counted from them.
USAGE_KEPT_MONTHS = 13


@dataclass(frozen=True)
class IssuedBill:
    """One invoice a run issued, as its report lists it."""

    number: str
    account_id: int
    period: Period
    currency: str
    total: Decimal


@dataclass
class RunReport:
    issued: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    purged: int = 0
    bills: list[IssuedBill] = field(default_factory=list)
    # The last month the run billed up to, when one was chosen.
    through: date | None = None


# The latest local date anywhere (UTC+14): a month has ended somewhere once this date lies past it.
_LATEST_OFFSET = timedelta(hours=14)


def check_through(through: object, now: datetime) -> date:
    """A chosen month to bill up to: its first day; it must have ended (invoices are issued in arrears)."""
    month = month_start(parse_date(through, "through"))
    latest = (now.astimezone(UTC) + _LATEST_OFFSET).date()
    if next_month(month) > latest:
        raise BillingInputError(
            "through", f"{month:%Y-%m} has not ended: its invoices are issued from {next_month(month)} on"
        )
    return month


async def run_billing(db: Database, *, now: datetime, through: date | None = None) -> RunReport:
    """Run billing at `now`; with `through` (a month), only periods that end by that month's end are issued
    (notices, suspension and purging still follow `now`)."""
    if through is not None:
        through = check_through(through, now)
    report = RunReport(through=through)
    async with db.session() as session:
        contract_ids = list((await session.scalars(select(Contract.id).order_by(Contract.id))).all())
    # What the run writes (invoices issued, sites suspended or restored) is in the audit log under its name.
    with acting_unless_acting(BILLING_RUN, lambda: now):
        for contract_id in contract_ids:
            async with db.writer() as session:
                contract = await session.scalar(
                    select(Contract).where(Contract.id == contract_id).with_for_update()
                )
                if contract is None:
                    continue
                await _run_contract(session, contract, now, report, through)
                await session.commit()
    if report.issued or report.suspended or report.purged:
        logger.info(
            "billing run: %d invoices issued, %d suspended, %d purged",
            len(report.issued),
            len(report.suspended),
            report.purged,
        )
    return report


async def _run_contract(
    session: AsyncSession, contract: Contract, now: datetime, report: RunReport, through: date | None
) -> None:
    terms = terms_of(contract)
    today = local_date(now, terms.timezone)
    await _sync_endpoint_counts(session, contract, terms, today, now)
    billed = {
        row.period_start: row
        for row in (await session.scalars(select(Invoice).where(Invoice.contract_id == contract.id))).all()
    }
    # Periods are billed in order; older ones may since have been purged, so only later ones are new.
    latest = max(billed, default=None)
    for period in billable_periods(terms, today, contract.notice_on):
        if latest is not None and period.start <= latest:
            continue
        if through is not None and period.end > next_month(through):
            break
        await _meter(session, contract.account_id, terms, period, now)
        inputs = await gather_inputs(session, contract, terms, period)
        draft = build_invoice(terms, inputs, period)
        number = await _issue(session, contract=contract, terms=terms, draft=draft, inputs=inputs, now=now)
        report.issued.append(number)
        report.bills.append(IssuedBill(number, contract.account_id, period, draft.currency, draft.total))
    await _dun(session, contract, terms, now, report)
    await apply_standing(session, contract.account_id, now)
    report.purged += await _purge(session, contract, terms, today)


async def _sync_endpoint_counts(
    session: AsyncSession, contract: Contract, terms: ContractTerms, today: date, now: datetime
) -> None:
    """Endpoint records drive the count: a site whose enabled endpoints differ from its billed count gets a
    change (billed under the contract's change rule). An increase is dated by the newest endpoint's creation,
    so a run that is late still bills an endpoint added on the 17th from the right month; a decrease leaves
    no date behind and is dated today. Nothing is dated inside an already billed period."""
    changes = await changes_of(session, contract.account_id)
    billed_until = await session.scalar(
        select(func.max(Invoice.period_end)).where(Invoice.account_id == contract.account_id)
    )
    for site_id in sorted({c.site_id for c in changes}):
        own = [c for c in changes if c.site_id == site_id]
        state = state_on(own, today)
        if not state.in_service:
            continue
        count = await enabled_endpoints(session, site_id)
        if count == state.endpoints:
            continue
        on = today
        if count > state.endpoints:
            newest = await session.scalar(
                select(func.max(Endpoint.created_at)).where(
                    Endpoint.site_id == site_id, Endpoint.enabled.is_(True)
                )
            )
            floor = max([c.on for c in own] + ([billed_until] if billed_until is not None else []))
            if newest is not None:
                on = min(today, max(floor, local_date(newest, terms.timezone)))
        session.add(
            SiteServiceChange(
                account_id=contract.account_id,
                site_id=site_id,
                on=on,
                kind=ServiceChangeKind.CHANGE.value,
                endpoints=count,
                source="endpoints",
                created_at=now,
            )
        )
    await session.flush()


async def _meter(
    session: AsyncSession, account_id: int, terms: ContractTerms, period: Period, now: datetime
) -> None:
    """Store each month's metered usage once, when its period is billed (entered usage is left alone)."""
    for month in period.months():
        lo, hi = (
            local_midnight(month, terms.timezone),
            local_midnight(month_period(month).end, terms.timezone),
        )
        stays = await stays_of(session, account_id, lo, hi)
        existing = {
            r.kind
            for r in (
                await session.scalars(
                    select(UsageRecord).where(
                        UsageRecord.account_id == account_id, UsageRecord.month == month
                    )
                )
            ).all()
        }
        kept = await stored_of(session, account_id, lo, hi)
        live = viewer_minutes(await viewings_of(session, account_id, lo, hi), lo, hi)
        for usage in meter_month(month, lo, hi, stays, kept, live_minutes=live):
            if usage.kind not in existing:
                session.add(
                    UsageRecord(
                        account_id=account_id,
                        kind=usage.kind,
                        month=month,
                        quantity=usage.quantity,
                        source="metered",
                        created_at=now,
                    )
                )
        # SMS parts the SMSC took for the account's own sends (rooms/sms), none from the free trial; a count
        # entered by hand wins.
        sms_lo = max(lo, local_midnight(trial_end(terms), terms.timezone))
        parts = await billable_sms_parts(session, account_id, sms_lo, hi) if "sms" not in existing else 0
        if parts:
            session.add(
                UsageRecord(
                    account_id=account_id,
                    kind="sms",
                    month=month,
                    quantity=Decimal(parts),
                    source="metered",
                    created_at=now,
                )
            )
    await session.flush()


async def _issue(
    session: AsyncSession,
    *,
    contract: Contract,
    terms: ContractTerms,
    draft: InvoiceDraft,
    inputs: BillingInputs,
    now: datetime,
) -> str:
    seq, number = await next_number(session)
    invoice = Invoice(
        account_id=contract.account_id,
        contract_id=contract.id,
        seq=seq,
        number=number,
        state=InvoiceState.PAID.value if draft.total == 0 else InvoiceState.ISSUED.value,
        currency=draft.currency,
        period_start=draft.period.start,
        period_end=draft.period.end,
        issue_date=draft.issue_date,
        due_date=draft.due_date,
        total=draft.total,
        amount_due=draft.total,
        carry_forward=draft.carry_forward,
        paid_on=draft.issue_date if draft.total == 0 else None,
        purge_on=purge_date(terms, draft.period),
        created_at=now,
    )
    session.add(invoice)
    await session.flush()
    for position, line in enumerate(draft.lines):
        session.add(
            InvoiceLineRow(
                invoice_id=invoice.id,
                position=position,
                kind=line.kind.value,
                site_id=line.site_id,
                label=line.label[:200],
                detail=line.detail[:200],
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=line.amount,
            )
        )
    applied = {n.number for n in inputs.credit_notes}
    if applied:
        for note in (await session.scalars(select(CreditNote).where(CreditNote.number.in_(applied)))).all():
            note.applied_in = invoice.id
    billed_late = {s.number for s in inputs.settled}
    if billed_late:
        for row in (
            await session.scalars(
                select(Invoice).where(
                    Invoice.account_id == contract.account_id, Invoice.number.in_(billed_late)
                )
            )
        ).all():
            row.late_fee_billed_in = invoice.id
    await session.flush()
    data = {
        "invoice_id": invoice.id,
        "number": number,
        "period_start": invoice.period_start.isoformat(),
        "period_end": invoice.period_end.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "currency": invoice.currency,
        "total": str(invoice.total),
        "state": invoice.state,
    }
    await emit(session, "invoice.issued", account_id=invoice.account_id, data=data, now=now)
    await notify_invoice_issued(session, invoice, now=now)
    return number


async def _dun(
    session: AsyncSession, contract: Contract, terms: ContractTerms, now: datetime, report: RunReport
) -> None:
    today = local_date(now, terms.timezone)
    outstanding = (
        await session.scalars(
            select(Invoice).where(
                Invoice.contract_id == contract.id, Invoice.state.in_([s.value for s in OUTSTANDING])
            )
        )
    ).all()
    for invoice in outstanding:
        state = invoice_state(
            terms, total=invoice.amount_due, due=invoice.due_date, paid_on=invoice.paid_on, today=today
        )
        if state in (InvoiceState.OVERDUE, InvoiceState.SUSPENDED) and invoice.notice_on is None:
            invoice.notice_on = notice_date(invoice.due_date)
            report.notices.append(invoice.number or "")
        if state is InvoiceState.SUSPENDED and invoice.suspended_on is None:
            invoice.suspended_on = suspension_date(terms, invoice.due_date)
            report.suspended.append(invoice.number or "")
        invoice.state = state.value
    await session.flush()


async def _purge(session: AsyncSession, contract: Contract, terms: ContractTerms, today: date) -> int:
    """Delete settled invoices (with their lines and payment) past retention, and old usage rows."""
    latest = await session.scalar(
        select(Invoice.period_start)
        .where(Invoice.contract_id == contract.id)
        .order_by(Invoice.period_start.desc())
        .limit(1)
    )
    old = (
        await session.scalars(
            select(Invoice).where(
                Invoice.contract_id == contract.id,
                Invoice.purge_on <= today,
                Invoice.state == InvoiceState.PAID.value,
                # A late fee not billed yet still needs its invoice.
                (Invoice.late_fee_billed_in.is_not(None)) | (Invoice.paid_on <= Invoice.due_date),
            )
        )
    ).all()
    pending = set(
        (
            await session.scalars(
                select(CreditNote.invoice_id).where(
                    CreditNote.account_id == contract.account_id,
                    CreditNote.settles.is_(False),
                    CreditNote.applied_in.is_(None),
                )
            )
        ).all()
    )
    # The latest invoice carries credit forward to the next one, and a credit note not yet applied still
    # needs its invoice: both are kept.
    old = [invoice for invoice in old if invoice.period_start != latest and invoice.id not in pending]
    for invoice in old:
        await session.delete(invoice)
    cutoff = today.replace(day=1) - relativedelta(months=max(USAGE_KEPT_MONTHS, terms.retention_months))
    await session.execute(
        delete(UsageRecord).where(UsageRecord.account_id == contract.account_id, UsageRecord.month < cutoff)
    )
    await session.flush()
    return len(old)
