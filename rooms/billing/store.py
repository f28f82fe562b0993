"""Billing writes and reads: contracts, service changes, outages, entered usage, payments, invoices.

Every function validates before it writes and writes in one transaction; `account_id` None means a
platform admin (all accounts), otherwise every lookup is confined to that account.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.billing.charges import ServiceChangeKind
from rooms.billing.contract import (
    USAGE_KINDS,
    ContractTerms,
    accepted,
    contract_end,
    parse_date,
    parse_terms,
    terms_to_json,
)
from rooms.billing.dunning import InvoiceState
from rooms.billing.errors import BillingConflict, BillingInputError, BillingNotFound
from rooms.billing.models import (
    Contract,
    Invoice,
    InvoiceLineRow,
    Outage,
    Payment,
    SiteServiceChange,
    UsageRecord,
)
from rooms.billing.money import parse_decimal
from rooms.billing.periods import local_date, month_start
from rooms.database import Database
from rooms.models import Account, Endpoint, Site

OUTAGE_SOURCES = ("monitor", "admin")
MAX_ID = 2**31 - 1
MAX_ENDPOINTS = 100_000


def terms_of(contract: Contract) -> ContractTerms:
    return parse_terms(contract.terms)


async def _account(session: AsyncSession, account_id: int) -> Account:
    account = await session.get(Account, account_id)
    if account is None:
        raise BillingNotFound("no such account", field="account_id")
    return account


async def _site(session: AsyncSession, site_id: object, field: str, account_id: int | None) -> Site:
    if isinstance(site_id, bool) or not isinstance(site_id, int) or not 1 <= site_id <= MAX_ID:
        raise BillingInputError(field, "must be a site id")
    site = await session.get(Site, site_id)
    if site is None or (account_id is not None and site.account_id != account_id):
        raise BillingInputError(field, f"no site {site_id} in this account")
    return site


async def enabled_endpoints(session: AsyncSession, site_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Endpoint)
        .where(Endpoint.site_id == site_id, Endpoint.enabled.is_(True))
    )
    return int(count or 0)


async def create_contract(
    db: Database,
    *,
    account_id: int,
    terms: Mapping[str, Any],
    sites: Sequence[Mapping[str, Any]],
    now: datetime,
) -> Contract:
    """Create an account's contract and open its sites' service on the acceptance date.

    `sites` items: {"site_id": int, "endpoints": int (default: the site's enabled endpoints now)}.
    """
    if not isinstance(terms, Mapping):
        raise BillingInputError("terms", "must be an object")
    try:
        parsed = parse_terms(terms)
    except BillingInputError as exc:
        raise BillingInputError(f"terms.{exc.field}", exc.message) from None
    if not isinstance(sites, Sequence) or not sites:
        raise BillingInputError("sites", "a contract covers at least one site")
    async with db.writer() as session:
        await _account(session, account_id)
        for i, fee in enumerate(parsed.site_fees):
            await _site(session, fee.site_id, f"terms.site_fees[{i}].site_id", account_id)
        opened: list[tuple[Site, int]] = []
        for i, item in enumerate(sites):
            if not isinstance(item, Mapping):
                raise BillingInputError(f"sites[{i}]", "must be an object")
            site = await _site(session, item.get("site_id"), f"sites[{i}].site_id", account_id)
            if any(s.id == site.id for s, _ in opened):
                raise BillingInputError(f"sites[{i}].site_id", "site listed twice")
            count = item.get("endpoints")
            if count is None:
                count = await enabled_endpoints(session, site.id)
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_ENDPOINTS:
                raise BillingInputError(
                    f"sites[{i}].endpoints", f"must be an integer from 0 to {MAX_ENDPOINTS}"
                )
            opened.append((site, count))
        existing = (await session.scalars(select(Contract).where(Contract.account_id == account_id))).all()
        for other in existing:
            if other.end is None or other.end > parsed.start:
                raise BillingConflict(
                    f"overlaps contract {other.id} of this account (from {other.start}"
                    f"{'' if other.end is None else f' to {other.end}'})",
                    field="terms.start",
                    code="contract_overlap",
                )
        contract = Contract(
            account_id=account_id,
            start=parsed.start,
            end=None,
            notice_on=None,
            terms=terms_to_json(parsed),
            created_at=now,
        )
        session.add(contract)
        for site, count in opened:
            session.add(
                SiteServiceChange(
                    account_id=account_id,
                    site_id=site.id,
                    on=parsed.start,
                    kind=ServiceChangeKind.OPEN.value,
                    endpoints=count,
                    source="contract",
                    created_at=now,
                )
            )
        await session.commit()
    return contract


async def amend_terms(db: Database, contract_id: int, *, terms: Mapping[str, Any], now: datetime) -> Contract:
    """Replace a contract's terms before its acceptance date; refused (409 contract_accepted) from then on,
    when invoices may already rest on them. The sites opened with the contract move to the new start."""
    if not isinstance(terms, Mapping):
        raise BillingInputError("terms", "must be an object")
    try:
        parsed = parse_terms(terms)
    except BillingInputError as exc:
        raise BillingInputError(f"terms.{exc.field}", exc.message) from None
    async with db.writer() as session:
        contract = await session.scalar(select(Contract).where(Contract.id == contract_id).with_for_update())
        if contract is None:
            raise BillingNotFound("no such contract")
        old = terms_of(contract)
        if accepted(old, local_date(now, old.timezone)):
            raise BillingConflict(
                f"the contract was accepted on {old.start}: its terms no longer change (give notice, record a"
                " service change or issue a credit note instead)",
                field="terms",
                code="contract_accepted",
            )
        if parsed.start < local_date(now, parsed.timezone):
            raise BillingInputError("terms.start", "the acceptance date cannot lie in the past")
        for i, fee in enumerate(parsed.site_fees):
            await _site(session, fee.site_id, f"terms.site_fees[{i}].site_id", contract.account_id)
        others = (
            await session.scalars(
                select(Contract).where(Contract.account_id == contract.account_id, Contract.id != contract.id)
            )
        ).all()
        for other in others:
            # The same rule as a new contract's: this one runs on without an end.
            if other.end is None or other.end > parsed.start:
                raise BillingConflict(
                    f"overlaps contract {other.id} of this account (from {other.start})",
                    field="terms.start",
                    code="contract_overlap",
                )
        opened = (
            await session.scalars(
                select(SiteServiceChange).where(
                    SiteServiceChange.account_id == contract.account_id,
                    SiteServiceChange.source == "contract",
                    SiteServiceChange.on == old.start,
                )
            )
        ).all()
        for change in opened:
            change.on = parsed.start
        contract.terms = terms_to_json(parsed)
        contract.start = parsed.start
        await session.commit()
    return contract


async def get_contract(db: Database, contract_id: int, *, account_id: int | None) -> Contract:
    async with db.session() as session:
        contract = await session.get(Contract, contract_id)
    if contract is None or (account_id is not None and contract.account_id != account_id):
        raise BillingNotFound("no such contract")
    return contract


async def list_contracts(db: Database, *, account_id: int) -> list[Contract]:
    async with db.session() as session:
        query = select(Contract).where(Contract.account_id == account_id).order_by(Contract.start)
        return list((await session.scalars(query)).all())


async def give_notice(db: Database, contract_id: int, *, on: object, now: datetime) -> Contract:
    """Record notice of termination; the contract ends at the first renewal date it is in time for."""
    day = parse_date(on, "on")
    async with db.writer() as session:
        contract = await session.get(Contract, contract_id)
        if contract is None:
            raise BillingNotFound("no such contract")
        terms = terms_of(contract)
        if contract.notice_on is not None:
            raise BillingConflict(f"notice was already given on {contract.notice_on}", field="on")
        if day < terms.start or day > local_date(now, terms.timezone):
            raise BillingInputError("on", "notice lies between the contract's start and today")
        contract.notice_on = day
        contract.end = contract_end(terms, day)
        await session.commit()
    return contract


async def add_service_change(
    db: Database, *, site_id: int, kind: object, on: object, endpoints: object = None, now: datetime
) -> SiteServiceChange:
    try:
        change_kind = ServiceChangeKind(str(kind))
    except ValueError:
        choices = ", ".join(k.value for k in ServiceChangeKind)
        raise BillingInputError("kind", f"{kind!r} is not one of {choices}") from None
    day = parse_date(on, "on")
    needs_count = change_kind in (ServiceChangeKind.OPEN, ServiceChangeKind.CHANGE)
    if needs_count and (
        isinstance(endpoints, bool) or not isinstance(endpoints, int) or not 0 <= endpoints <= MAX_ENDPOINTS
    ):
        raise BillingInputError(
            "endpoints", "an opening or change gives the endpoint count (an integer >= 0)"
        )
    if not needs_count and endpoints is not None:
        raise BillingInputError("endpoints", f"a {change_kind.value} carries no endpoint count")
    async with db.writer() as session:
        site = await _site(session, site_id, "site_id", None)
        await _require_open_month(session, site.account_id, day)
        change = SiteServiceChange(
            account_id=site.account_id,
            site_id=site.id,
            on=day,
            kind=change_kind.value,
            endpoints=endpoints if needs_count else None,
            source="admin",
            created_at=now,
        )
        session.add(change)
        await session.commit()
    return change


async def _require_open_month(session: AsyncSession, account_id: int, day: date) -> None:
    """Issued invoices are immutable: nothing may change a period that is already billed."""
    billed = await session.scalar(
        select(Invoice.number).where(
            Invoice.account_id == account_id,
            Invoice.period_end > day,
            Invoice.state != InvoiceState.DRAFT.value,
        )
    )
    if billed is not None:
        raise BillingConflict(
            f"{day} lies in a period already billed by invoice {billed}; issue a credit note instead",
            field="on",
        )


async def record_outage(
    db: Database,
    *,
    start: datetime,
    end: datetime,
    account_id: int | None,
    source: str,
    note: str,
    now: datetime,
) -> Outage:
    if start.tzinfo is None or end.tzinfo is None:
        raise BillingInputError("start", "give instants with a UTC offset")
    if end <= start:
        raise BillingInputError("end", "an outage ends after it starts")
    if end > now:
        raise BillingInputError("end", "an outage is recorded once it has ended")
    if source not in OUTAGE_SOURCES:
        raise BillingInputError("source", f"one of {', '.join(OUTAGE_SOURCES)}")
    async with db.writer() as session:
        if account_id is not None:
            await _account(session, account_id)
        outage = Outage(
            account_id=account_id, start=start, end=end, source=source, note=note[:500], created_at=now
        )
        session.add(outage)
        await session.commit()
    return outage


async def list_outages(db: Database, *, account_id: int | None) -> list[Outage]:
    async with db.session() as session:
        query = select(Outage).order_by(Outage.start)
        if account_id is not None:
            query = query.where((Outage.account_id.is_(None)) | (Outage.account_id == account_id))
        return list((await session.scalars(query)).all())


async def set_usage(
    db: Database, *, account_id: int, kind: object, month: object, quantity: object, now: datetime
) -> UsageRecord:
    """Enter a month's usage of a kind that is not metered here (e.g. SMS sent by a gateway)."""
    if kind not in USAGE_KINDS:
        raise BillingInputError("kind", f"{kind!r} is not one of {', '.join(sorted(USAGE_KINDS))}")
    day = month_start(parse_date(month, "month"))
    amount = parse_decimal(quantity, "quantity")
    async with db.writer() as session:
        await _account(session, account_id)
        await _require_open_month(session, account_id, day)
        row = await session.scalar(
            select(UsageRecord).where(
                UsageRecord.account_id == account_id, UsageRecord.kind == kind, UsageRecord.month == day
            )
        )
        if row is None:
            row = UsageRecord(
                account_id=account_id,
                kind=str(kind),
                month=day,
                quantity=amount,
                source="entered",
                created_at=now,
            )
            session.add(row)
        else:
            row.quantity = amount
            row.source = "entered"
        await session.commit()
    return row


@dataclass(frozen=True)
class InvoiceView:
    invoice: Invoice
    lines: tuple[InvoiceLineRow, ...]
    payment: Payment | None


async def get_invoice(db: Database, invoice_id: int, *, account_id: int | None) -> InvoiceView:
    async with db.session() as session:
        invoice = await session.get(Invoice, invoice_id)
        if invoice is None or (account_id is not None and invoice.account_id != account_id):
            raise BillingNotFound("no such invoice")
        lines = (
            await session.scalars(
                select(InvoiceLineRow)
                .where(InvoiceLineRow.invoice_id == invoice.id)
                .order_by(InvoiceLineRow.position)
            )
        ).all()
        payment = await session.scalar(select(Payment).where(Payment.invoice_id == invoice.id))
    return InvoiceView(invoice, tuple(lines), payment)


async def list_invoices(db: Database, *, account_id: int) -> list[Invoice]:
    async with db.session() as session:
        query = (
            select(Invoice).where(Invoice.account_id == account_id).order_by(Invoice.period_start, Invoice.id)
        )
        return list((await session.scalars(query)).all())
