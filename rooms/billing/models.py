"""Billing's tables. Money and quantities are stored as decimal text: exact on every backend."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from rooms.models import Base


class DecimalText(TypeDecorator[Decimal]):
    """A Decimal stored as its canonical text (SQLite has no exact decimal type)."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError("DecimalText takes Decimal values only")
        return str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class Contract(Base):
    __tablename__ = "billing_contracts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    start: Mapped[date] = mapped_column(Date)
    # The first day no longer covered, once notice is given; None while the contract renews itself.
    end: Mapped[date | None] = mapped_column(Date)
    notice_on: Mapped[date | None] = mapped_column(Date)
    terms: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class SiteServiceChange(Base):
    __tablename__ = "billing_site_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    on: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(20))
    endpoints: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20))  # contract, admin, endpoints (counted by the run)
    created_at: Mapped[datetime]


class Outage(Base):
    __tablename__ = "billing_outages"
    __table_args__ = (Index("ix_billing_outages_span", "start", "end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # None: the whole service was interrupted.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    start: Mapped[datetime]
    end: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(20))  # monitor, admin
    # What interrupted the service when it is known, e.g. server_crash (recorded by crash recovery).
    cause: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime]


class UsageRecord(Base):
    __tablename__ = "billing_usage"
    __table_args__ = (
        UniqueConstraint("account_id", "kind", "month", name="uq_billing_usage_account_kind_month"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    month: Mapped[date] = mapped_column(Date)
    quantity: Mapped[Decimal] = mapped_column(DecimalText())
    source: Mapped[str] = mapped_column(String(20))  # metered, entered
    created_at: Mapped[datetime]


class Invoice(Base):
    __tablename__ = "billing_invoices"
    __table_args__ = (
        UniqueConstraint("contract_id", "period_start", name="uq_billing_invoices_contract_period"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    contract_id: Mapped[int] = mapped_column(
        ForeignKey("billing_contracts.id", ondelete="CASCADE"), index=True
    )
    # Gapless, assigned when issued; None for a draft.
    seq: Mapped[int | None] = mapped_column(Integer, unique=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    state: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    total: Mapped[Decimal] = mapped_column(DecimalText())
    # The total less credit notes issued while the invoice was unpaid: what the payment must be.
    amount_due: Mapped[Decimal] = mapped_column(DecimalText())
    carry_forward: Mapped[Decimal] = mapped_column(DecimalText())
    notice_on: Mapped[date | None] = mapped_column(Date)
    suspended_on: Mapped[date | None] = mapped_column(Date)
    paid_on: Mapped[date | None] = mapped_column(Date)
    # The invoice that billed this one's late fee. A plain id, not a foreign key: purging that invoice must
    # not make the fee look unbilled again.
    late_fee_billed_in: Mapped[int | None] = mapped_column(Integer)
    purge_on: Mapped[date] = mapped_column(Date, index=True)
    created_at: Mapped[datetime]


class InvoiceLineRow(Base):
    __tablename__ = "billing_invoice_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoices.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))
    site_id: Mapped[int | None] = mapped_column(Integer)  # no FK: the bill outlives the site
    label: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(DecimalText())
    unit_price: Mapped[Decimal] = mapped_column(DecimalText())
    amount: Mapped[Decimal] = mapped_column(DecimalText())


class Payment(Base):
    __tablename__ = "billing_payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # One payment settles one invoice in full: a second payment is refused by this key too.
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("billing_invoices.id", ondelete="CASCADE"), unique=True, index=True
    )
    amount: Mapped[Decimal] = mapped_column(DecimalText())
    paid_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]


class CreditNote(Base):
    """A correction of an issued invoice (which itself never changes). Against an unpaid invoice it lowers
    the amount due; against a paid one it is credited on the account's next invoice."""

    __tablename__ = "billing_credit_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoices.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)  # the invoices' gapless sequence
    number: Mapped[str] = mapped_column(String(20), unique=True)
    amount: Mapped[Decimal] = mapped_column(DecimalText())
    reason: Mapped[str] = mapped_column(String(500))
    issued_on: Mapped[date] = mapped_column(Date)
    settles: Mapped[bool] = mapped_column(Boolean)  # lowered the unpaid invoice's amount due
    # For a credit carried to a later invoice: the invoice that applied it (a plain id, as above).
    applied_in: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]


class Counter(Base):
    """Gapless sequences (invoice numbers), advanced inside the transaction that uses the value."""

    __tablename__ = "billing_counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
