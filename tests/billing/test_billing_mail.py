"""Billing documents by e-mail, through the dispatcher to a real aiosmtpd: an issued invoice's mail carries
its PDF, and the month's first issue brings the statement of account of the month before, with its PDF,
once."""

from __future__ import annotations

from datetime import date
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select

from rooms.billing.run import run_billing
from rooms.billing.store import create_contract
from rooms.models import Endpoint, Site
from rooms.outbox.models import Notification
from tests.billing.test_billing_store import SEED_TERMS, at
from tests.notify.app_server import Clock, running_app, seed
from tests.notify.email_server import smtp_server


def pdfs(message: EmailMessage) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for part in message.iter_attachments():
        if part.get_content_type() == "application/pdf":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_filename() or ""] = payload
    return found


async def test_the_invoice_mail_carries_its_pdf_and_the_statement_comes_once(tmp_path: Path) -> None:
    clock = Clock(at(date(2026, 3, 16)))
    async with smtp_server(tmp_path) as server, running_app(tmp_path, clock, server.settings()) as app:
        account_id, _ = await seed(app.db, clock.now)  # two admins: en and zh-CN
        async with app.db.session() as session:
            site = Site(account_id=account_id, name="County venue", created_at=clock.now)
            session.add(site)
            await session.flush()
            session.add(
                Endpoint(account_id=account_id, site_id=site.id, sip_username="room-1", sip_secret="s",
                         display_name="Terminal", enabled=True, created_at=clock.now)
            )  # fmt: skip
            await session.commit()
            site_id = site.id
        await create_contract(
            app.db, account_id=account_id, terms=SEED_TERMS, sites=[{"site_id": site_id}], now=clock.now
        )
        clock.now = at(date(2026, 6, 1))
        assert (await run_billing(app.db, now=clock.now)).issued == ["000001", "000002", "000003"]
        assert (await run_billing(app.db, now=clock.now)).issued == []
        async with app.db.session() as session:
            rows = (await session.scalars(select(Notification).order_by(Notification.id))).all()
        kinds = sorted((n.kind, n.recipient, n.variables.get("month") or n.variables["number"]) for n in rows)
        # The catch-up issued March, April and May at their months' ends: a statement for each closed month,
        # one per admin, and the invoice e-mail only for May's (the trial months' are 0.00).
        assert kinds == [
            ("invoice_issued", "admin@acme.example", "000003"),
            ("invoice_issued", "li@acme.example", "000003"),
            *[("statement", "admin@acme.example", f"2026-0{m}") for m in (3, 4, 5)],
            *[("statement", "li@acme.example", f"2026-0{m}") for m in (3, 4, 5)],
        ]
        while await app.dispatcher.run_once():
            pass
        await server.handler.wait_for(8)
        mails = {(m.recipients[0], str(m.message["Subject"])): m.message for m in server.handler.received}
        assert len(mails) == 8
        invoice_en = next(
            pdfs(m) for (to, s), m in mails.items() if to == "admin@acme.example" and "000003" in s
        )
        invoice_zh = next(
            pdfs(m) for (to, s), m in mails.items() if to == "li@acme.example" and "000003" in s
        )
        assert list(invoice_en) == ["invoice-000003.pdf"] and invoice_en["invoice-000003.pdf"][:5] == b"%PDF-"
        may_zh = next(m for (to, s), m in mails.items() if to == "li@acme.example" and "2026-05" in s)
        assert "对账单" in str(may_zh["Subject"])
        statement = pdfs(may_zh)
        assert (
            list(statement) == ["statement-2026-05.pdf"]
            and statement["statement-2026-05.pdf"][:5] == b"%PDF-"
        )
        # Each admin's documents are in that admin's language: the two invoice PDFs differ.
        assert invoice_zh["invoice-000003.pdf"] != invoice_en["invoice-000003.pdf"]
