"""Billing routes: contracts, service changes, outages, usage, the billing run, invoices, payments, exports.

Writes need a platform admin (the operator); an account's admins read their own account's billing.
Ownership is checked before the role, so a stranger learns nothing (404) about other accounts' ids.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints
from sqlalchemy import select

from rooms.billing import ledger, reports, store
from rooms.billing.charges import ServiceChangeKind
from rooms.billing.export import describe, invoice_csv, invoices_csv
from rooms.billing.invoice import InvoiceLine
from rooms.billing.models import SiteServiceChange
from rooms.billing.pdf import invoice_pdf
from rooms.billing.run import run_billing
from rooms.models import Account, Site
from web.api.base import (
    CLOCK,
    DB,
    Api,
    ApiError,
    Principal,
    owned,
    parse_body,
    parse_query,
    path_id,
    principal,
    send,
)
from web.api.schemas import Body, Id, Out

api = Api()
TAG = "billing"

DecimalText = Annotated[str, StringConstraints(pattern=r"^-?[0-9]{1,13}(\.[0-9]{1,6})?$")]
Count = Annotated[int, Field(ge=0, le=100_000)]
Note = Annotated[str, StringConstraints(max_length=500)]
Lang = Literal["zh-CN", "en"]


class ContractSiteIn(Body):
    site_id: Id
    endpoints: Count | None = None


class ContractIn(Body):
    terms: dict[str, Any]
    sites: Annotated[list[ContractSiteIn], Field(min_length=1, max_length=1000)]


class ContractOut(Out):
    id: int
    account_id: int
    start: date
    end: date | None
    notice_on: date | None
    terms: dict[str, Any]
    created_at: datetime


class NoticeIn(Body):
    on: date


class ServiceChangeIn(Body):
    kind: Literal["open", "change", "suspend", "resume", "terminate"]
    on: date
    endpoints: Count | None = None


class ServiceChangeOut(Out):
    id: int
    site_id: int
    on: date
    kind: str
    endpoints: int | None
    source: str
    created_at: datetime


class OutageIn(Body):
    start: AwareDatetime
    end: AwareDatetime
    account_id: Id | None = None
    source: Literal["monitor", "admin"] = "admin"
    note: Note = ""


class OutageOut(Out):
    id: int
    account_id: int | None
    start: datetime
    end: datetime
    source: str
    note: str
    created_at: datetime


class UsageIn(Body):
    kind: Annotated[str, StringConstraints(max_length=40)]
    month: date
    quantity: DecimalText | Annotated[int, Field(ge=0, le=10**12)]


class UsageOut(Out):
    account_id: int
    kind: str
    month: date
    quantity: Decimal
    source: str


class RunOut(BaseModel):
    issued: list[str]
    notices: list[str]
    suspended: list[str]
    purged: int


class InvoiceOut(Out):
    id: int
    account_id: int
    contract_id: int
    number: str | None
    state: str
    currency: str
    period_start: date
    period_end: date
    issue_date: date
    due_date: date
    total: Decimal
    amount_due: Decimal
    carry_forward: Decimal
    notice_on: date | None
    suspended_on: date | None
    paid_on: date | None


class InvoiceLineOut(BaseModel):
    kind: str
    site_id: int | None
    label: str
    detail: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    description: str


class InvoiceDetailOut(InvoiceOut):
    lines: list[InvoiceLineOut]
    accrued_late_fee: Decimal


class InvoiceDraftOut(BaseModel):
    account_id: int
    state: Literal["draft"] = "draft"
    currency: str
    period_start: date
    period_end: date
    issue_date: date
    due_date: date
    total: Decimal
    carry_forward: Decimal
    lines: list[InvoiceLineOut]


class PaymentIn(Body):
    amount: DecimalText | Annotated[int, Field(ge=0, le=10**12)]
    paid_on: date
    reference: Annotated[str, StringConstraints(max_length=200)] = ""


class CreditNoteIn(Body):
    amount: DecimalText | Annotated[int, Field(ge=0, le=10**12)]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class CreditNoteOut(Out):
    id: int
    account_id: int
    invoice_id: int
    number: str
    amount: Decimal
    reason: str
    issued_on: date
    settles: bool
    applied_in: int | None
    created_at: datetime


class StandingOut(BaseModel):
    account_id: int
    suspended: bool
    reason: str


class LangQuery(Body):
    lang: Lang = "en"


def _reader(request: web.Request) -> Principal:
    who = principal(request)
    who.require_admin()
    return who


async def _account_id(request: web.Request, who: Principal) -> int:
    """The path's account if the caller may see it (404 otherwise, whatever the role)."""
    account_id = path_id(request, "account_id")
    if who.account_id is not None and who.account_id != account_id:
        raise ApiError(404, "not_found", "no such account", "account_id")
    async with request.app[DB].session() as session:
        if await session.get(Account, account_id) is None:
            raise ApiError(404, "not_found", "no such account", "account_id")
    return account_id


@api.op(
    "GET",
    "/accounts/{account_id}/contracts",
    summary="List an account's contracts",
    tag=TAG,
    response=ContractOut,
    many=True,
)
async def list_contracts(request: web.Request) -> web.Response:
    who = principal(request)
    account_id = await _account_id(request, who)
    who.require_admin()
    rows = await store.list_contracts(request.app[DB], account_id=account_id)
    return send([ContractOut.model_validate(r) for r in rows])


@api.op(
    "POST",
    "/accounts/{account_id}/contracts",
    summary="Create a contract (platform admin)",
    tag=TAG,
    body=ContractIn,
    response=ContractOut,
    status=201,
)
async def create_contract(request: web.Request) -> web.Response:
    who = principal(request)
    account_id = await _account_id(request, who)
    who.require_platform_admin()
    body = await parse_body(request, ContractIn)
    contract = await store.create_contract(
        request.app[DB],
        account_id=account_id,
        terms=body.terms,
        sites=[s.model_dump(exclude_none=True) for s in body.sites],
        now=request.app[CLOCK](),
    )
    return send(ContractOut.model_validate(contract), 201)


@api.op(
    "POST",
    "/contracts/{contract_id}/notice",
    summary="Give notice of termination (platform admin)",
    tag=TAG,
    body=NoticeIn,
    response=ContractOut,
)
async def give_notice(request: web.Request) -> web.Response:
    who = principal(request)
    db = request.app[DB]
    contract = await store.get_contract(db, path_id(request, "contract_id"), account_id=who.account_id)
    who.require_platform_admin()
    body = await parse_body(request, NoticeIn)
    updated = await store.give_notice(db, contract.id, on=body.on, now=request.app[CLOCK]())
    return send(ContractOut.model_validate(updated))


@api.op(
    "GET",
    "/sites/{site_id}/service-changes",
    summary="List a site's service changes",
    tag=TAG,
    response=ServiceChangeOut,
    many=True,
)
async def list_service_changes(request: web.Request) -> web.Response:
    who = principal(request)
    async with request.app[DB].session() as session:
        site = await owned(session, Site, path_id(request, "site_id"), who)
        who.require_admin()
        rows = (
            await session.scalars(
                select(SiteServiceChange)
                .where(SiteServiceChange.site_id == site.id)
                .order_by(SiteServiceChange.on, SiteServiceChange.id)
            )
        ).all()
    return send([ServiceChangeOut.model_validate(r) for r in rows])


@api.op(
    "POST",
    "/sites/{site_id}/service-changes",
    summary="Open, change, suspend, resume or terminate a site's service (platform admin)",
    tag=TAG,
    body=ServiceChangeIn,
    response=ServiceChangeOut,
    status=201,
)
async def add_service_change(request: web.Request) -> web.Response:
    who = principal(request)
    async with request.app[DB].session() as session:
        site = await owned(session, Site, path_id(request, "site_id"), who)
    who.require_platform_admin()
    body = await parse_body(request, ServiceChangeIn)
    change = await store.add_service_change(
        request.app[DB],
        site_id=site.id,
        kind=ServiceChangeKind(body.kind),
        on=body.on,
        endpoints=body.endpoints,
        now=request.app[CLOCK](),
    )
    return send(ServiceChangeOut.model_validate(change), 201)


@api.op(
    "GET",
    "/outages",
    summary="List outages (the whole service's and your account's)",
    tag=TAG,
    response=OutageOut,
    many=True,
)
async def list_outages(request: web.Request) -> web.Response:
    who = _reader(request)
    rows = await store.list_outages(request.app[DB], account_id=who.account_id)
    return send([OutageOut.model_validate(r) for r in rows])


@api.op(
    "POST",
    "/outages",
    summary="Record an outage (platform admin or the health monitor)",
    tag=TAG,
    body=OutageIn,
    response=OutageOut,
    status=201,
)
async def record_outage(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_platform_admin()
    body = await parse_body(request, OutageIn)
    outage = await store.record_outage(
        request.app[DB],
        start=body.start,
        end=body.end,
        account_id=body.account_id,
        source=body.source,
        note=body.note,
        now=request.app[CLOCK](),
    )
    return send(OutageOut.model_validate(outage), 201)


@api.op(
    "PUT",
    "/accounts/{account_id}/usage",
    summary="Enter a month's usage of a kind, e.g. SMS (platform admin)",
    tag=TAG,
    body=UsageIn,
    response=UsageOut,
)
async def set_usage(request: web.Request) -> web.Response:
    who = principal(request)
    account_id = await _account_id(request, who)
    who.require_platform_admin()
    body = await parse_body(request, UsageIn)
    row = await store.set_usage(
        request.app[DB],
        account_id=account_id,
        kind=body.kind,
        month=body.month,
        quantity=body.quantity,
        now=request.app[CLOCK](),
    )
    return send(UsageOut.model_validate(row))


@api.op(
    "POST",
    "/billing/run",
    summary="Run billing now (platform admin; the scheduler runs it daily)",
    tag=TAG,
    response=RunOut,
)
async def run(request: web.Request) -> web.Response:
    principal(request).require_platform_admin()
    report = await run_billing(request.app[DB], now=request.app[CLOCK]())
    return send(
        RunOut(issued=report.issued, notices=report.notices, suspended=report.suspended, purged=report.purged)
    )


@api.op(
    "GET",
    "/accounts/{account_id}/invoices",
    summary="List an account's invoices",
    tag=TAG,
    response=InvoiceOut,
    many=True,
)
async def list_invoices(request: web.Request) -> web.Response:
    who = principal(request)
    account_id = await _account_id(request, who)
    who.require_admin()
    rows = await store.list_invoices(request.app[DB], account_id=account_id)
    return send([InvoiceOut.model_validate(r) for r in rows])


@api.op(
    "GET",
    "/accounts/{account_id}/invoices/csv",
    summary="Export an account's invoices as CSV",
    tag=TAG,
    query=LangQuery,
    content_type="text/csv",
)
async def export_invoices(request: web.Request) -> web.Response:
    who = principal(request)
    account_id = await _account_id(request, who)
    who.require_admin()
    lang = parse_query(request, LangQuery).lang
    rows = await reports.invoice_summaries(request.app[DB], account_id=account_id)
    return _csv(invoices_csv(rows, lang), f"invoices-{account_id}.csv", lang)


@api.op(
    "GET",
    "/accounts/{account_id}/invoices/preview",
    summary="The draft invoice of the current period so far (nothing is stored)",
    tag=TAG,
    response=InvoiceDraftOut,
    query=LangQuery,
)
async def preview_invoice(request: web.Request) -> web.Response:
    who = principal(request)
    account_id = await _account_id(request, who)
    who.require_admin()
    lang = parse_query(request, LangQuery).lang
    draft = await reports.preview_invoice(request.app[DB], account_id=account_id, now=request.app[CLOCK]())
    return send(
        InvoiceDraftOut(
            account_id=account_id,
            currency=draft.currency,
            period_start=draft.period.start,
            period_end=draft.period.end,
            issue_date=draft.issue_date,
            due_date=draft.due_date,
            total=draft.total,
            carry_forward=draft.carry_forward,
            lines=[_line_out(line, lang) for line in draft.lines],
        )
    )


def _line_out(line: InvoiceLine, lang: str) -> InvoiceLineOut:
    return InvoiceLineOut(
        kind=line.kind.value,
        site_id=line.site_id,
        label=line.label,
        detail=line.detail,
        quantity=line.quantity,
        unit_price=line.unit_price,
        amount=line.amount,
        description=describe(line, lang),
    )


@api.op(
    "GET",
    "/invoices/{invoice_id}",
    summary="Get an invoice with its lines",
    tag=TAG,
    response=InvoiceDetailOut,
    query=LangQuery,
)
async def get_invoice(request: web.Request) -> web.Response:
    who = principal(request)
    db = request.app[DB]
    view = await store.get_invoice(db, path_id(request, "invoice_id"), account_id=who.account_id)
    who.require_admin()
    lang = parse_query(request, LangQuery).lang
    accrued = await reports.accrued_late_fee(db, view.invoice, now=request.app[CLOCK]())
    lines = [_line_out(line, lang) for line in reports.lines_of(view)]
    base = InvoiceOut.model_validate(view.invoice).model_dump()
    return send(InvoiceDetailOut(**base, lines=lines, accrued_late_fee=accrued))


@api.op(
    "GET",
    "/invoices/{invoice_id}/csv",
    summary="Export an invoice as CSV",
    tag=TAG,
    query=LangQuery,
    content_type="text/csv",
)
async def invoice_as_csv(request: web.Request) -> web.Response:
    who = principal(request)
    document = await reports.invoice_document(
        request.app[DB], path_id(request, "invoice_id"), account_id=who.account_id
    )
    who.require_admin()
    lang = parse_query(request, LangQuery).lang
    return _csv(invoice_csv(document, lang), f"invoice-{document.number}.csv", lang)


@api.op(
    "GET",
    "/invoices/{invoice_id}/pdf",
    summary="Export an invoice as PDF",
    tag=TAG,
    query=LangQuery,
    content_type="application/pdf",
)
async def invoice_as_pdf(request: web.Request) -> web.Response:
    who = principal(request)
    document = await reports.invoice_document(
        request.app[DB], path_id(request, "invoice_id"), account_id=who.account_id
    )
    who.require_admin()
    lang = parse_query(request, LangQuery).lang
    body = await asyncio.to_thread(invoice_pdf, document, lang)
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="invoice-{document.number}.pdf"'},
    )


@api.op(
    "POST",
    "/invoices/{invoice_id}/payments",
    summary="Record the payment of an invoice in full (platform admin)",
    tag=TAG,
    body=PaymentIn,
    response=InvoiceOut,
    status=201,
)
async def pay(request: web.Request) -> web.Response:
    who = principal(request)
    db = request.app[DB]
    view = await store.get_invoice(db, path_id(request, "invoice_id"), account_id=who.account_id)
    who.require_platform_admin()
    body = await parse_body(request, PaymentIn)
    invoice = await ledger.record_payment(
        db,
        view.invoice.id,
        amount=body.amount,
        paid_on=body.paid_on,
        reference=body.reference,
        now=request.app[CLOCK](),
    )
    return send(InvoiceOut.model_validate(invoice), 201)


@api.op(
    "POST",
    "/invoices/{invoice_id}/credit-notes",
    summary="Correct an issued invoice with a credit note (platform admin)",
    tag=TAG,
    body=CreditNoteIn,
    response=CreditNoteOut,
    status=201,
)
async def credit(request: web.Request) -> web.Response:
    who = principal(request)
    db = request.app[DB]
    view = await store.get_invoice(db, path_id(request, "invoice_id"), account_id=who.account_id)
    who.require_platform_admin()
    body = await parse_body(request, CreditNoteIn)
    note = await ledger.issue_credit_note(
        db, view.invoice.id, amount=body.amount, reason=body.reason, now=request.app[CLOCK]()
    )
    return send(CreditNoteOut.model_validate(note), 201)


@api.op(
    "GET",
    "/accounts/{account_id}/credit-notes",
    summary="List an account's credit notes",
    tag=TAG,
    response=CreditNoteOut,
    many=True,
)
async def list_credit_notes(request: web.Request) -> web.Response:
    who = principal(request)
    account_id = await _account_id(request, who)
    who.require_admin()
    rows = await ledger.list_credit_notes(request.app[DB], account_id=account_id)
    return send([CreditNoteOut.model_validate(r) for r in rows])


@api.op(
    "GET",
    "/accounts/{account_id}/standing",
    summary="Whether the account's sites are suspended for non-payment",
    tag=TAG,
    response=StandingOut,
)
async def get_standing(request: web.Request) -> web.Response:
    who = principal(request)
    account_id = await _account_id(request, who)
    who.require_admin()
    result = await ledger.account_standing(request.app[DB], account_id)
    return send(StandingOut(account_id=account_id, suspended=result.suspended, reason=result.reason))


def _csv(text: str, filename: str, lang: str) -> web.Response:
    # Excel opens UTF-8 CSV as Chinese text only with a byte-order mark.
    body = ("\ufeff" if lang == "zh-CN" else "") + text
    return web.Response(
        body=body.encode(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
