"""Billing routes, bill side: invoices, exports, payments, credit notes, an account's standing."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import select

from rooms.billing import ledger, reports, store
from rooms.billing.documents import invoice_sheet
from rooms.billing.dunning import OUTSTANDING, InvoiceState, notice_date, suspension_date
from rooms.billing.export import describe, invoice_csv, invoices_csv
from rooms.billing.invoice import InvoiceLine
from rooms.billing.models import Contract, CreditNote, Invoice
from rooms.billing.money import ZERO, quantize
from rooms.billing.pdf import InvoiceFontMissing, invoice_pdf
from web.api.base import (
    CLOCK,
    DB,
    SETTINGS,
    Api,
    ApiError,
    parse_body,
    parse_query,
    path_id,
    principal,
    send,
)
from web.api.billing_schemas import (
    TAG,
    CreditNoteBrief,
    CreditNoteIn,
    CreditNoteOut,
    InvoiceDetailOut,
    InvoiceDraftOut,
    InvoiceLineOut,
    InvoiceOut,
    LangQuery,
    PaymentIn,
    StandingOut,
    account_reader,
    csv_response,
)

api = Api()


@api.op(
    "GET",
    "/accounts/{account_id}/invoices",
    summary="List an account's invoices",
    tag=TAG,
    response=InvoiceOut,
    many=True,
)
async def list_invoices(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
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
    _, account_id = await account_reader(request)
    lang = parse_query(request, LangQuery).lang
    rows = await reports.invoice_summaries(request.app[DB], account_id=account_id)
    return csv_response(invoices_csv(rows, lang), f"invoices-{account_id}.csv", lang)


@api.op(
    "GET",
    "/accounts/{account_id}/invoices/preview",
    summary="The draft invoice of the current period so far (nothing is stored)",
    tag=TAG,
    response=InvoiceDraftOut,
    query=LangQuery,
)
async def preview_invoice(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
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
    invoice = view.invoice
    accrued = await reports.accrued_late_fee(db, invoice, now=request.app[CLOCK]())
    lines = [_line_out(line, lang) for line in reports.lines_of(view)]
    base = InvoiceOut.model_validate(invoice).model_dump()
    async with db.session() as session:
        billed_in = (
            await session.get(Invoice, invoice.late_fee_billed_in)
            if invoice.late_fee_billed_in is not None
            else None
        )
        notes = (
            await session.scalars(
                select(CreditNote).where(CreditNote.invoice_id == invoice.id).order_by(CreditNote.seq)
            )
        ).all()
        contract = await session.get(Contract, invoice.contract_id)
    # While unpaid, the dates dunning will follow (the run records them as they come).
    overdue_from = suspends_on = None
    if invoice.paid_on is None and InvoiceState(invoice.state) in OUTSTANDING and contract is not None:
        overdue_from = notice_date(invoice.due_date)
        suspends_on = suspension_date(store.terms_of(contract), invoice.due_date)
    return send(
        InvoiceDetailOut(
            **base,
            lines=lines,
            accrued_late_fee=accrued,
            # A credit note can settle an invoice without a payment row: then nothing was paid.
            paid_amount=view.payment.amount if view.payment is not None else None,
            balance=ZERO if invoice.paid_on is not None else invoice.amount_due,
            late_fee_billed_in=billed_in.number if billed_in is not None else None,
            overdue_from=overdue_from,
            suspends_on=suspends_on,
            credit_notes=[
                CreditNoteBrief(
                    id=n.id,
                    number=n.number,
                    amount=quantize(n.amount),
                    issued_on=n.issued_on,
                    settles=n.settles,
                )
                for n in notes
            ],
        )
    )


@api.op(
    "GET",
    "/invoices/{invoice_id}/csv",
    summary="Export an invoice as CSV",
    tag=TAG,
    query=LangQuery,
    content_type="text/csv",
)
async def invoice_ascsv_response(request: web.Request) -> web.Response:
    who = principal(request)
    document = await reports.invoice_document(
        request.app[DB], path_id(request, "invoice_id"), account_id=who.account_id
    )
    who.require_admin()
    lang = parse_query(request, LangQuery).lang
    return csv_response(invoice_csv(document, lang), f"invoice-{document.number}.csv", lang)


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
    sheet = await invoice_sheet(
        request.app[DB],
        path_id(request, "invoice_id"),
        account_id=who.account_id,
        supplier=request.app[SETTINGS].supplier,
        now=request.app[CLOCK](),
    )
    who.require_admin()
    lang = parse_query(request, LangQuery).lang
    try:
        body = await asyncio.to_thread(invoice_pdf, sheet, lang)
    except InvoiceFontMissing as exc:
        raise ApiError(503, "invoice_font_missing", str(exc)) from None
    document = sheet.document
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
    _, account_id = await account_reader(request)
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
    _, account_id = await account_reader(request)
    result = await ledger.account_standing(request.app[DB], account_id)
    return send(StandingOut(account_id=account_id, suspended=result.suspended, reason=result.reason))
