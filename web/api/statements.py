"""Billing routes, documents: the monthly statement of account (JSON, PDF, CSV) and credit note PDFs."""

from __future__ import annotations

import asyncio

from aiohttp import web

from rooms.billing.documents import StatementSheet, credit_note_sheet, statement_sheet
from rooms.billing.pdf import InvoiceFontMissing
from rooms.billing.statement import MEMO, describe_entry, statement_csv
from rooms.billing.statement_pdf import credit_note_pdf, statement_pdf
from web.api.base import CLOCK, DB, SETTINGS, Api, ApiError, parse_query, path_id, principal
from web.api.billing_schemas import (
    TAG,
    LangQuery,
    OpenInvoiceOut,
    StatementLineOut,
    StatementOut,
    account_reader,
    csv_response,
)

api = Api()


async def _sheet(request: web.Request) -> tuple[int, str, StatementSheet]:
    _, account_id = await account_reader(request)
    month = request.match_info["month"]
    sheet = await statement_sheet(
        request.app[DB],
        account_id,
        month,
        supplier=request.app[SETTINGS].supplier,
        now=request.app[CLOCK](),
    )
    return account_id, month, sheet


def _pdf(body: bytes, filename: str) -> web.Response:
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


@api.op(
    "GET",
    "/accounts/{account_id}/statements/{month}",
    summary="An account's statement of account for a month (YYYY-MM): entries and running balance",
    tag=TAG,
    response=StatementOut,
    query=LangQuery,
)
async def get_statement(request: web.Request) -> web.Response:
    account_id, month, sheet = await _sheet(request)
    lang = parse_query(request, LangQuery).lang
    s = sheet.statement
    lines = [
        StatementLineOut(
            on=line.entry.on,
            kind=line.entry.kind.value,
            reference=line.entry.reference,
            invoice=line.entry.invoice,
            description=describe_entry(line.entry, lang),
            debit=line.debit,
            credit=line.credit,
            memo=line.entry.amount if line.entry.kind in MEMO else None,
            balance=line.balance,
        )
        for line in s.lines
    ]
    body = StatementOut(
        account_id=account_id,
        month=month,
        currency=s.currency,
        as_of=s.as_of,
        opening_balance=s.opening_balance,
        lines=lines,
        total_debit=s.total_debit,
        total_credit=s.total_credit,
        closing_balance=s.closing_balance,
        open_invoices=[
            OpenInvoiceOut(number=i.number, due=i.due, open_amount=i.open_amount) for i in s.open_invoices
        ],
        credit_held=s.credit_held,
    )
    return web.Response(body=body.model_dump_json(), content_type="application/json")


@api.op(
    "GET",
    "/accounts/{account_id}/statements/{month}/csv",
    summary="Export an account's statement of account for a month as CSV",
    tag=TAG,
    query=LangQuery,
    content_type="text/csv",
)
async def statement_as_csv(request: web.Request) -> web.Response:
    account_id, month, sheet = await _sheet(request)
    lang = parse_query(request, LangQuery).lang
    return csv_response(statement_csv(sheet.statement, lang), f"statement-{account_id}-{month}.csv", lang)


@api.op(
    "GET",
    "/accounts/{account_id}/statements/{month}/pdf",
    summary="Export an account's statement of account for a month as PDF",
    tag=TAG,
    query=LangQuery,
    content_type="application/pdf",
)
async def statement_as_pdf(request: web.Request) -> web.Response:
    account_id, month, sheet = await _sheet(request)
    lang = parse_query(request, LangQuery).lang
    try:
        body = await asyncio.to_thread(statement_pdf, sheet, lang)
    except InvoiceFontMissing as exc:
        raise ApiError(503, "invoice_font_missing", str(exc)) from None
    return _pdf(body, f"statement-{account_id}-{month}.pdf")


@api.op(
    "GET",
    "/credit-notes/{credit_note_id}/pdf",
    summary="Export a credit note as PDF",
    tag=TAG,
    query=LangQuery,
    content_type="application/pdf",
)
async def credit_note_as_pdf(request: web.Request) -> web.Response:
    who = principal(request)
    sheet = await credit_note_sheet(
        request.app[DB],
        path_id(request, "credit_note_id"),
        account_id=who.account_id,
        supplier=request.app[SETTINGS].supplier,
    )
    who.require_admin()
    lang = parse_query(request, LangQuery).lang
    try:
        body = await asyncio.to_thread(credit_note_pdf, sheet, lang)
    except InvoiceFontMissing as exc:
        raise ApiError(503, "invoice_font_missing", str(exc)) from None
    return _pdf(body, f"credit-note-{sheet.number}.pdf")
