"""The billing documents the outbox attaches to e-mails, rendered when the e-mail is sent.

An invoice's e-mail names its PDF ("invoice_pdf:<invoice id>:<lang>"), the statement's e-mail its statement
of account ("statement_pdf:<account id>:<YYYY-MM>:<lang>"); the dispatcher asks here for the bytes. They are
made from the database as it is then, as the REST API makes them (the issued invoice does not change).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from rooms.billing.documents import invoice_sheet, statement_sheet
from rooms.billing.pdf import invoice_pdf
from rooms.billing.statement_pdf import statement_pdf
from rooms.database import Database
from rooms.settings import SupplierSettings
from yunhui.dispatcher import Dispatcher

LANGS = frozenset({"en", "zh-CN"})


def _lang(value: str) -> str:
    if value not in LANGS:
        raise ValueError(f"unknown language {value!r}")
    return value


def install(
    dispatcher: Dispatcher, database: Database, supplier: SupplierSettings, clock: Callable[[], datetime]
) -> None:
    """Register the invoice and statement PDFs with the dispatcher."""

    async def invoice(reference: str) -> bytes:
        invoice_id, _, lang = reference.partition(":")
        sheet = await invoice_sheet(
            database, int(invoice_id), account_id=None, supplier=supplier, now=clock()
        )
        return await asyncio.to_thread(invoice_pdf, sheet, _lang(lang))

    async def statement(reference: str) -> bytes:
        account_id, month, lang = reference.split(":")
        sheet = await statement_sheet(database, int(account_id), month, supplier=supplier, now=clock())
        return await asyncio.to_thread(statement_pdf, sheet, _lang(lang))

    dispatcher.register_document("invoice_pdf", invoice)
    dispatcher.register_document("statement_pdf", statement)
