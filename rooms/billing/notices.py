"""E-mail to an account's admins when one of its invoices is issued, queued in the outbox (rooms/outbox) in
the transaction that issues it: a rolled-back run sends nothing, a crash after the commit still sends.

The invoice's PDF goes with it, and the first invoice issued in a month brings the statement of account of
the month before (with its PDF): both are rendered by the dispatcher when it sends (yunhui/documents.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.billing.capital import rmb_capital
from rooms.billing.dunning import OUTSTANDING
from rooms.billing.models import Invoice
from rooms.billing.periods import Period, month_start
from rooms.models import Account, User
from rooms.outbox.store import Attachment, enqueue

TEMPLATE = "invoice_issued"
STATEMENT_TEMPLATE = "statement"
PDF = "application/pdf"


async def notify_invoice_issued(session: AsyncSession, invoice: Invoice, *, now: datetime) -> list[int]:
    """Queue one e-mail per admin of the invoice's account; nothing is committed here. An invoice with
    nothing to pay (a trial month) sends none. The key makes a second queueing of the same invoice a no-op."""
    if invoice.number is None:
        return []
    account = await session.get(Account, invoice.account_id)
    admins = (
        await session.scalars(
            select(User).where(User.account_id == invoice.account_id, User.role == "admin").order_by(User.id)
        )
    ).all()
    queued = await _statement(session, invoice, account, admins, now=now)
    if invoice.amount_due <= 0:
        return queued
    # What the account owes on all its open invoices, this one included: the statement's balance today.
    # Summed here, not in SQL: amounts are stored as decimal text.
    open_total = sum(
        (
            await session.scalars(
                select(Invoice.amount_due).where(
                    Invoice.account_id == invoice.account_id,
                    Invoice.currency == invoice.currency,
                    Invoice.state.in_([s.value for s in OUTSTANDING]),
                )
            )
        ).all(),
        Decimal(0),
    )
    for user in admins:
        locale = user.locale or "zh-CN"
        pdf = Attachment(f"invoice-{invoice.number}.pdf", PDF, source=f"invoice_pdf:{invoice.id}:{locale}")
        row = await enqueue(
            session,
            channel="email",
            kind=TEMPLATE,
            recipient=user.email,
            idempotency_key=f"invoice:{invoice.number}:issued:{user.id}",
            now=now,
            account_id=invoice.account_id,
            locale=locale,
            attachments=[pdf],
            variables={
                "name": user.display_name,
                "account_name": account.name if account is not None else "",
                "number": invoice.number,
                "period": Period(invoice.period_start, invoice.period_end).label(),
                "issue_date": invoice.issue_date.isoformat(),
                "due_date": invoice.due_date.isoformat(),
                "currency": invoice.currency,
                "amount_due": f"{invoice.amount_due:,.2f}",
                "amount_in_words": rmb_capital(invoice.amount_due) if invoice.currency == "CNY" else "",
                "open_balance": f"{open_total:,.2f}",
            },
        )
        if row is not None:
            queued.append(row)
    return queued


async def _statement(
    session: AsyncSession, invoice: Invoice, account: Account | None, admins: Sequence[User], *, now: datetime
) -> list[int]:
    """The statement of account of the month before the invoice's issue: once per account and month (the
    key), whichever of that day's invoices comes first."""
    month = month_start(invoice.issue_date) - relativedelta(months=1)
    label = f"{month:%Y-%m}"
    queued = []
    for user in admins:
        locale = user.locale or "zh-CN"
        pdf = Attachment(
            f"statement-{label}.pdf", PDF, source=f"statement_pdf:{invoice.account_id}:{label}:{locale}"
        )
        row = await enqueue(
            session,
            channel="email",
            kind=STATEMENT_TEMPLATE,
            recipient=user.email,
            idempotency_key=f"statement:{invoice.account_id}:{label}:{user.id}",
            now=now,
            account_id=invoice.account_id,
            locale=locale,
            attachments=[pdf],
            variables={
                "name": user.display_name,
                "account_name": account.name if account is not None else "",
                "month": label,
            },
        )
        if row is not None:
            queued.append(row)
    return queued
