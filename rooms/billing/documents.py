"""The invoice as a finance office reads it: supplier and customer, what is due now and why, how to pay.

`InvoiceDocument` (export.py) is the bill's lines; `InvoiceSheet` adds the parties and the running figures
(amount due after credit notes, late fee accrued so far, credit carried in and out) that pdf.py prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rooms.billing import reports
from rooms.billing.export import InvoiceDocument
from rooms.billing.invoice import LineKind
from rooms.billing.models import Contract
from rooms.billing.money import ZERO
from rooms.billing.periods import local_date
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
    )
