"""The documents as a finance office reads them: invoice, statement of account and credit note, with the
supplier and customer, what is due now and why, how to pay.

`InvoiceDocument` (export.py) is the bill's lines; `InvoiceSheet` adds the parties and the running figures
(amount due after credit notes, late fee accrued so far, credit carried in and out) that pdf.py prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from rooms.billing import reports
from rooms.billing.errors import BillingInputError, BillingNotFound
from rooms.billing.export import InvoiceDocument
from rooms.billing.invoice import LineKind
from rooms.billing.models import Contract, CreditNote, Invoice, Payment
from rooms.billing.money import ZERO, quantize
from rooms.billing.periods import local_date, month_period, month_start
from rooms.billing.statement import EntryKind, LedgerEntry, Statement, build_statement
from rooms.billing.store import get_invoice, terms_of
from rooms.database import Database
from rooms.models import Account
from rooms.settings import SupplierSettings

# The keys of Account.billing (the REST field `billing`); anything else stored there is ignored.
CUSTOMER_FIELDS = ("name", "tax_id", "address", "contact")


@dataclass(frozen=True)
class Party:
    name: str
    tax_id: str = ""
    address: str = ""
    contact: str = ""
    bank: str = ""
    bank_account: str = ""


@dataclass(frozen=True)
class InvoiceSheet:
    document: InvoiceDocument
    supplier: Party
    customer: Party
    # What the invoice asks for: the total less credit notes issued against it (a payment does not change it).
    amount_due: Decimal
    # What is still open: the amount due, or 0 once paid.
    balance: Decimal
    # The late fee accrued up to `as_of` (or up to the payment); it is billed on a later invoice.
    accrued_late_fee: Decimal
    # Credit from earlier invoices used on this one (the carried_credit lines, as a positive amount).
    credit_carried_in: Decimal
    # Credit this invoice could not use; it is applied on the account's next invoice.
    credit_carried_out: Decimal
    payment_note: str
    as_of: date
    # The contract's late fee per day as a fraction (0.03 is 3 % a day), printed with the payment terms.
    late_fee_rate_per_day: Decimal = ZERO
    # What the payment was (None while unpaid, or when a credit note settled it) and the invoice that charged
    # the late fee as a line (None while it is still to be charged).
    paid_amount: Decimal | None = None
    late_fee_billed_in: str | None = None


def supplier_party(settings: SupplierSettings) -> Party:
    return Party(
        name=settings.legal_name,
        tax_id=settings.tax_id,
        address=settings.address,
        contact=settings.phone,
        bank=settings.bank,
        bank_account=settings.bank_account,
    )


def customer_party(account_name: str, billing: Mapping[str, Any] | None) -> Party:
    """The account's billing details; its display name stands in for a missing billing name."""
    details = {k: str(v) for k, v in (billing or {}).items() if k in CUSTOMER_FIELDS and v}
    return Party(
        name=details.get("name", account_name),
        tax_id=details.get("tax_id", ""),
        address=details.get("address", ""),
        contact=details.get("contact", ""),
    )


def carried_in(document: InvoiceDocument) -> Decimal:
    return -sum((line.amount for line in document.lines if line.kind is LineKind.CARRIED_CREDIT), ZERO)


async def invoice_sheet(
    db: Database,
    invoice_id: int,
    *,
    account_id: int | None,
    supplier: SupplierSettings,
    now: datetime,
) -> InvoiceSheet:
    """The full document of one invoice as it stands at `now` (the late fee accrues until payment)."""
    view = await get_invoice(db, invoice_id, account_id=account_id)
    document = await reports.invoice_document(db, invoice_id, account_id=account_id)
    async with db.session() as session:
        account = await session.get(Account, view.invoice.account_id)
        contract = await session.get(Contract, view.invoice.contract_id)
    # "As of" is the contract's local date, like the due date it is compared with.
    terms = terms_of(contract) if contract is not None else None
    timezone = terms.timezone if terms is not None else "UTC"
    accrued = await reports.accrued_late_fee(db, view.invoice, now=now)
    billed_in = None
    if view.invoice.late_fee_billed_in is not None:
        async with db.session() as session:
            billed_in = await session.get(Invoice, view.invoice.late_fee_billed_in)
    return InvoiceSheet(
        document=document,
        supplier=supplier_party(supplier),
        customer=customer_party(document.account_name, account.billing if account is not None else None),
        amount_due=view.invoice.amount_due,
        balance=ZERO if view.invoice.paid_on is not None else view.invoice.amount_due,
        accrued_late_fee=accrued,
        credit_carried_in=carried_in(document),
        credit_carried_out=view.invoice.carry_forward,
        payment_note=supplier.payment_note,
        as_of=local_date(now, timezone),
        late_fee_rate_per_day=terms.late_fee_rate_per_day if terms is not None else ZERO,
        paid_amount=view.payment.amount if view.payment is not None else None,
        late_fee_billed_in=billed_in.number if billed_in is not None else None,
    )


@dataclass(frozen=True)
class StatementSheet:
    statement: Statement
    supplier: Party
    customer: Party
    payment_note: str


def _month(value: str) -> date:
    try:
        if len(value) != 7:
            raise ValueError(value)
        return date.fromisoformat(f"{value}-01")
    except ValueError:
        raise BillingInputError("month", f"{value!r} is not a month (YYYY-MM)") from None


async def statement_sheet(
    db: Database, account_id: int, month: str, *, supplier: SupplierSettings, now: datetime
) -> StatementSheet:
    """The statement of account of `month` (YYYY-MM) as it stands at `now`: the current month up to today."""
    first = _month(month)
    period = month_period(first)
    async with db.session() as session:
        account = await session.get(Account, account_id)
        if account is None:
            raise BillingNotFound("no such account", field="account_id")
        contracts = (
            await session.scalars(
                select(Contract).where(Contract.account_id == account_id).order_by(Contract.start)
            )
        ).all()
        if not contracts:
            raise BillingNotFound("this account has no contract, so no statement", field="account_id")
        # The contract of the month (the latest begun by its end) gives the currency, the local "today" and
        # how long records are kept.
        in_force = [c for c in contracts if c.start < period.end] or [contracts[0]]
        terms = terms_of(in_force[-1])
        today = local_date(now, terms.timezone)
        if first > today:
            raise BillingInputError("month", f"{month} has not begun")
        earliest = month_start(today) - relativedelta(months=terms.retention_months - 1)
        if first < earliest:
            raise BillingInputError(
                "month", f"records before {earliest:%Y-%m} are purged after {terms.retention_months} months"
            )
        invoices = (
            await session.scalars(
                select(Invoice)
                .where(
                    Invoice.account_id == account_id,
                    Invoice.number.is_not(None),
                    Invoice.currency == terms.currency,
                )
                .order_by(Invoice.period_start, Invoice.id)
            )
        ).all()
        ids = [i.id for i in invoices]
        payments = (await session.scalars(select(Payment).where(Payment.invoice_id.in_(ids)))).all()
        notes = (await session.scalars(select(CreditNote).where(CreditNote.invoice_id.in_(ids)))).all()
    statement = build_statement(
        ledger_entries(invoices, payments, notes), period, currency=terms.currency, as_of=today
    )
    return StatementSheet(
        statement=statement,
        supplier=supplier_party(supplier),
        customer=customer_party(account.name, account.billing),
        payment_note=supplier.payment_note,
    )


def ledger_entries(
    invoices: Sequence[Invoice], payments: Sequence[Payment], notes: Sequence[CreditNote]
) -> list[LedgerEntry]:
    """The statement's entries from the stored rows (`invoices` in billing order); amounts in cents (a credit
    note's amount is stored as it was given, e.g. 100)."""
    by_id = {i.id: i for i in invoices}
    entries = [
        LedgerEntry(
            i.issue_date, EntryKind.INVOICE, i.number or "", i.number or "", quantize(i.total), due=i.due_date
        )
        for i in invoices
    ]
    for payment in payments:
        number = by_id[payment.invoice_id].number or ""
        entries.append(
            LedgerEntry(
                payment.paid_on, EntryKind.PAYMENT, payment.reference, number, quantize(payment.amount)
            )
        )
    for note in notes:
        number = by_id[note.invoice_id].number or ""
        applied = by_id.get(note.applied_in) if note.applied_in is not None else None
        kind = EntryKind.CREDIT_NOTE if note.settles else EntryKind.CREDIT_HELD
        entries.append(
            LedgerEntry(
                note.issued_on,
                kind,
                note.number,
                number,
                quantize(note.amount),
                applied_on=None if note.settles or applied is None else applied.issue_date,
            )
        )
    for i, invoice in enumerate(invoices):
        if invoice.carry_forward > 0:
            following = next((j for j in invoices[i + 1 :] if j.contract_id == invoice.contract_id), None)
            entries.append(
                LedgerEntry(
                    invoice.issue_date,
                    EntryKind.CREDIT_CARRIED,
                    invoice.number or "",
                    invoice.number or "",
                    quantize(invoice.carry_forward),
                    applied_on=None if following is None else following.issue_date,
                )
            )
    return entries


@dataclass(frozen=True)
class CreditNoteSheet:
    number: str
    invoice_number: str
    currency: str
    amount: Decimal
    reason: str
    issued_on: date
    # Lowered the unpaid invoice's amount due (True), or is credited on the account's next invoice.
    settles: bool
    # The invoice that applied it, once one has.
    applied_in: str | None
    supplier: Party
    customer: Party


async def credit_note_sheet(
    db: Database, note_id: int, *, account_id: int | None, supplier: SupplierSettings
) -> CreditNoteSheet:
    async with db.session() as session:
        note = await session.get(CreditNote, note_id)
        if note is None or (account_id is not None and note.account_id != account_id):
            raise BillingNotFound("no such credit note")
        invoice = await session.get(Invoice, note.invoice_id)
        account = await session.get(Account, note.account_id)
        applied = await session.get(Invoice, note.applied_in) if note.applied_in is not None else None
    assert invoice is not None and account is not None
    return CreditNoteSheet(
        number=note.number,
        invoice_number=invoice.number or "",
        currency=invoice.currency,
        amount=note.amount,
        reason=note.reason,
        issued_on=note.issued_on,
        settles=note.settles,
        applied_in=None if applied is None else applied.number,
        supplier=supplier_party(supplier),
        customer=customer_party(account.name, account.billing),
    )
