"""Money owed and settled: payments, credit notes, the gapless numbering, and an account's standing."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.billing.contract import parse_date
from rooms.billing.dunning import OUTSTANDING, InvoiceState, Standing, standing
from rooms.billing.errors import BillingConflict, BillingInputError, BillingNotFound
from rooms.billing.models import Contract, Counter, CreditNote, Invoice, Payment
from rooms.billing.money import parse_decimal
from rooms.billing.periods import local_date
from rooms.billing.store import terms_of
from rooms.database import Database
from rooms.models import Site


async def record_payment(
    db: Database, invoice_id: int, *, amount: object, paid_on: object, reference: str = "", now: datetime
) -> Invoice:
    """Settle an invoice in full; reinstates the account's sites when nothing else keeps them suspended."""
    value = parse_decimal(amount, "amount")
    day = parse_date(paid_on, "paid_on")
    async with db.writer() as session:
        invoice = await session.scalar(select(Invoice).where(Invoice.id == invoice_id).with_for_update())
        if invoice is None:
            raise BillingNotFound("no such invoice")
        if invoice.state == InvoiceState.PAID.value:
            # Named as the amount's error so that the payment form shows it beside the amount.
            raise BillingConflict(
                f"invoice {invoice.number} is already paid (on {invoice.paid_on}): nothing is due",
                field="amount",
                code="already_paid",
            )
        if invoice.state not in {s.value for s in OUTSTANDING}:
            raise BillingConflict(f"invoice is {invoice.state}, not payable")
        contract = await session.get(Contract, invoice.contract_id)
        assert contract is not None
        today = local_date(now, terms_of(contract).timezone)
        if day < invoice.issue_date or day > today:
            raise BillingInputError("paid_on", f"lies between the issue date {invoice.issue_date} and today")
        if value > invoice.amount_due:
            raise BillingInputError(
                "amount", f"{value} is more than the amount due {invoice.amount_due}; pay the amount due"
            )
        if value != invoice.amount_due:
            raise BillingInputError("amount", f"must equal the amount due {invoice.amount_due}")
        invoice.paid_on = day
        invoice.state = InvoiceState.PAID.value
        session.add(
            Payment(
                invoice_id=invoice.id, amount=value, paid_on=day, reference=reference[:200], created_at=now
            )
        )
        await session.flush()
        await apply_standing(session, invoice.account_id, now)
        await session.commit()
    return invoice


async def apply_standing(session: AsyncSession, account_id: int, now: datetime) -> Standing:
    """Suspend the account's sites while an invoice is in the suspended state; reinstate them otherwise."""
    rows = (
        await session.execute(select(Invoice.number, Invoice.state).where(Invoice.account_id == account_id))
    ).all()
    result = standing((number or "", InvoiceState(state)) for number, state in rows)
    for site in (await session.scalars(select(Site).where(Site.account_id == account_id))).all():
        if result.suspended and site.suspended_at is None:
            site.suspended_at = now
        elif not result.suspended and site.suspended_at is not None:
            site.suspended_at = None
    return result


async def account_standing(db: Database, account_id: int) -> Standing:
    """Whether the account's endpoints are to be refused for non-payment (as of the last run/payment)."""
    async with db.session() as session:
        rows = (
            await session.execute(
                select(Invoice.number, Invoice.state).where(Invoice.account_id == account_id)
            )
        ).all()
    return standing((number or "", InvoiceState(state)) for number, state in rows)


INVOICE_COUNTER = "invoice"


async def next_number(session: AsyncSession) -> tuple[int, str]:
    """The next number of the invoices' and credit notes' shared gapless sequence (in the caller's
    transaction: a rollback gives the number back)."""
    counter = await session.scalar(select(Counter).where(Counter.name == INVOICE_COUNTER).with_for_update())
    if counter is None:
        counter = Counter(name=INVOICE_COUNTER, value=0)
        session.add(counter)
    counter.value += 1
    return counter.value, f"{counter.value:06d}"


async def issue_credit_note(
    db: Database, invoice_id: int, *, amount: object, reason: str, now: datetime
) -> CreditNote:
    """Correct an issued invoice without changing it: lowers its amount due while unpaid, otherwise
    credits the account's next invoice."""
    value = parse_decimal(amount, "amount")
    if value <= 0:
        raise BillingInputError("amount", "must be greater than 0")
    if not reason.strip():
        raise BillingInputError("reason", "a credit note states its reason")
    async with db.writer() as session:
        invoice = await session.scalar(select(Invoice).where(Invoice.id == invoice_id).with_for_update())
        if invoice is None:
            raise BillingNotFound("no such invoice")
        if invoice.state == InvoiceState.DRAFT.value:
            raise BillingConflict("a draft is changed, not credited")
        credited = sum(
            (
                n.amount
                for n in (
                    await session.scalars(select(CreditNote).where(CreditNote.invoice_id == invoice.id))
                ).all()
            ),
            Decimal(0),
        )
        if value > invoice.total - credited:
            raise BillingInputError(
                "amount", f"at most {invoice.total - credited} is left to credit on this invoice"
            )
        contract = await session.get(Contract, invoice.contract_id)
        assert contract is not None
        today = local_date(now, terms_of(contract).timezone)
        settles = invoice.state in {s.value for s in OUTSTANDING}
        seq, number = await next_number(session)
        note = CreditNote(
            account_id=invoice.account_id,
            invoice_id=invoice.id,
            seq=seq,
            number=number,
            amount=value,
            reason=reason.strip()[:500],
            issued_on=today,
            settles=settles,
            applied_in=None,
            created_at=now,
        )
        session.add(note)
        if settles:
            invoice.amount_due -= value
            if invoice.amount_due == 0:
                invoice.state = InvoiceState.PAID.value
                invoice.paid_on = today
            await session.flush()
            await apply_standing(session, invoice.account_id, now)
        await session.commit()
    return note


async def list_credit_notes(db: Database, *, account_id: int) -> list[CreditNote]:
    async with db.session() as session:
        query = select(CreditNote).where(CreditNote.account_id == account_id).order_by(CreditNote.seq)
        return list((await session.scalars(query)).all())
