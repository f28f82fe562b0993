"""Statements of account, credit note documents, the billing run through a chosen month, contract terms edited
before acceptance, the invoice detail of a paid invoice, usage of any kind, and bad input that writes nothing:
through the REST API on a real server, with the PDFs read back by poppler."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from notify.templating import Templates
from rooms.billing import store
from rooms.billing.documents import statement_sheet
from rooms.billing.errors import BillingConflict
from rooms.billing.models import Contract, CreditNote, Invoice, Payment, SiteServiceChange, UsageRecord
from rooms.billing.periods import month_period
from rooms.billing.run import run_billing
from rooms.billing.statement import EntryKind, LedgerEntry, build_statement
from rooms.database import Database
from rooms.outbox.models import Notification
from rooms.outbox.store import enqueue
from tests.api.conftest import Api
from tests.billing.conftest import Seed
from tests.billing.test_billing_api import TERMS, add_sites
from tests.billing.test_billing_documents import (
    SUPPLIER,
    _flat,
    _poppler,
    api,
    assert_fonts_embedded,
    render_first_page,
)

__all__ = ["api"]

BILLING_TABLES = (Contract, SiteServiceChange, Invoice, Payment, CreditNote, UsageRecord)


async def snapshot(api: Api) -> list[tuple[Any, ...]]:
    """Every billing row, as plain values: equal snapshots mean nothing was written."""
    rows: list[tuple[Any, ...]] = []
    async with api.db.session() as session:
        for model in BILLING_TABLES:
            for row in (await session.scalars(select(model))).all():
                columns = model.__table__.columns.keys()
                rows.append((model.__tablename__, *(getattr(row, c) for c in columns)))
    return rows


async def fetch(api: Api, token: str | None, path: str, target: Path | None = None) -> tuple[int, bytes]:
    async with api.http.get(f"{api.url}{path}", headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.read()
    if target is not None and resp.status == 200:
        await asyncio.to_thread(target.write_bytes, body)
    return resp.status, body


def read_pdf(pdf: Path) -> str:
    """Fonts embedded, the first page renders, and its text."""
    assert_fonts_embedded(pdf)
    render_first_page(pdf)
    return _flat(_poppler("pdftotext", pdf, "-layout", "-enc", "UTF-8"))


def test_statement_balance_counts_memo_credit_once() -> None:
    june = month_period(date(2026, 6, 1))
    entries = [
        LedgerEntry(
            date(2026, 5, 1), EntryKind.INVOICE, "000002", "000002", Decimal(50), due=date(2026, 6, 10)
        ),
        LedgerEntry(date(2026, 5, 20), EntryKind.PAYMENT, "w", "000002", Decimal(50)),
        LedgerEntry(
            date(2026, 6, 1), EntryKind.INVOICE, "000003", "000003", Decimal(200), due=date(2026, 7, 11)
        ),
        LedgerEntry(date(2026, 6, 3), EntryKind.CREDIT_NOTE, "000004", "000003", Decimal(20)),
        LedgerEntry(
            date(2026, 6, 5),
            EntryKind.CREDIT_HELD,
            "000005",
            "000002",
            Decimal(7),
            applied_on=date(2026, 7, 1),
        ),
        LedgerEntry(
            date(2026, 7, 1), EntryKind.INVOICE, "000006", "000006", Decimal(93), due=date(2026, 8, 10)
        ),
    ]
    s = build_statement(entries, june, currency="CNY", as_of=date(2026, 9, 1))
    assert s.opening_balance == 0 and s.as_of == date(2026, 6, 30)
    assert [(line.entry.reference, line.balance) for line in s.lines] == [
        ("000003", Decimal(200)),
        ("000004", Decimal(180)),
        ("000005", Decimal(180)),  # the memo leaves the balance alone
    ]
    totals = (s.total_debit, s.total_credit, s.closing_balance, s.credit_held)
    assert totals == tuple(map(Decimal, (200, 20, 180, 7)))
    assert [(i.number, i.open_amount) for i in s.open_invoices] == [("000003", Decimal(180))]
    july = build_statement(entries, month_period(date(2026, 7, 1)), currency="CNY", as_of=date(2026, 7, 15))
    assert (july.opening_balance, july.closing_balance, july.credit_held) == tuple(
        map(Decimal, (180, 273, 0))
    )


async def test_statements_credit_notes_and_the_run_through_a_month(api: Api, tmp_path: Path) -> None:
    root = await api.login("root@example.com")
    owner = await api.login("admin@a.example")
    account = api.accounts["a"]
    billing = {"name": "某县教育局", "tax_id": "12330000MB0000000Y", "address": "", "contact": "王老师"}
    assert (await root.call("PATCH", f"/accounts/{account}", {"billing": billing}))[0] == 200
    sites = await add_sites(api, "a")
    body = {"terms": TERMS, "sites": [{"site_id": s} for s in sites]}
    assert (await root.call("POST", f"/accounts/{account}/contracts", body))[0] == 201
    # No invoice yet: an empty statement of the current month.
    status, march = await owner.call("GET", f"/accounts/{account}/statements/2026-03")
    assert status == 200 and (march["lines"], march["closing_balance"]) == ([], "0.00")

    api.clock.now = datetime(2026, 6, 1, 4, tzinfo=UTC)
    root, owner = await api.login("root@example.com"), await api.login("admin@a.example")
    before = await snapshot(api)
    status, error = await root.call("POST", "/billing/run", {"through": "2026-06"})
    assert (
        status == 422
        and error["error"]["field"] == "through"
        and "has not ended" in error["error"]["message"]
    )
    for through in ("2026-13", "0000-01", "0001-01"):
        assert (await root.call("POST", "/billing/run", {"through": through}))[0] == 422
    assert await snapshot(api) == before
    status, report = await root.call("POST", "/billing/run", {"through": "2026-04"})
    assert (status, report["issued"], report["through"]) == (200, ["000001", "000002"], "2026-04")
    assert report["invoices"][1] == {
        "number": "000002",
        "account_id": account,
        "account_name": "Account a",
        "period_start": "2026-04-01",
        "period_end": "2026-05-01",
        "currency": "CNY",
        "total": "0.00",
    }
    status, report = await root.call("POST", "/billing/run", {"through": "2026-05"})
    assert report["issued"] == ["000003"] and report["invoices"][0]["total"] == "2141.66"
    invoices = (await owner.call("GET", f"/accounts/{account}/invoices"))[1]
    may = invoices[2]["id"]

    # Paid 45 days after issue, then corrected by a credit note: the paid invoice's detail tells it all.
    api.clock.now = datetime(2026, 7, 16, 4, tzinfo=UTC)
    root, owner = await api.login("root@example.com"), await api.login("admin@a.example")
    assert (await root.call("POST", "/billing/run"))[1]["issued"] == ["000004"]  # June
    status, detail = await owner.call("GET", f"/invoices/{may}")
    assert (detail["balance"], detail["paid_amount"], detail["accrued_late_fee"]) == (
        "2141.66",
        None,
        "321.25",
    )
    # Overdue since the day after the due date; suspended 20 days after the notice if still unpaid.
    assert (detail["state"], detail["notice_on"], detail["suspends_on"]) == (
        "overdue",
        "2026-07-12",
        "2026-08-01",
    )
    assert detail["overdue_from"] == "2026-07-12"
    pay = {"amount": "2141.66", "paid_on": "2026-07-16", "reference": "BANK-0716"}
    assert (await root.call("POST", f"/invoices/{may}/payments", pay))[0] == 201
    status, note = await root.call(
        "POST", f"/invoices/{may}/credit-notes", {"amount": "100", "reason": "宕机补偿"}
    )
    assert status == 201 and note["settles"] is False
    status, detail = await owner.call("GET", f"/invoices/{may}")
    assert (detail["amount_due"], detail["paid_amount"], detail["balance"]) == ("2141.66", "2141.66", "0.00")
    assert (detail["accrued_late_fee"], detail["late_fee_billed_in"]) == ("321.25", None)
    assert (detail["overdue_from"], detail["suspends_on"]) == (None, None)
    assert [n["number"] for n in detail["credit_notes"]] == ["000005"]

    status, _ = await fetch(
        api, owner.token, f"/credit-notes/{note['id']}/pdf?lang=zh-CN", tmp_path / "cn.pdf"
    )
    assert status == 200
    cn = read_pdf(tmp_path / "cn.pdf")
    for expected in (
        SUPPLIER.tax_id,
        "12330000MB0000000Y",
        "红字冲减通知单000005",
        "壹佰元整",
        "宕机补偿",
        "000003",
    ):
        assert expected in cn, expected
    assert (await fetch(api, owner.token, f"/credit-notes/{note['id']}/pdf?lang=en", tmp_path / "cn-en.pdf"))[
        0
    ] == 200
    assert "Creditnote000005" in read_pdf(tmp_path / "cn-en.pdf")
    stranger = await api.login("root@example.com")
    assert (await fetch(api, stranger.token, "/credit-notes/999999/pdf"))[0] == 404

    api.clock.now = datetime(2026, 8, 1, 4, tzinfo=UTC)
    root, owner = await api.login("root@example.com"), await api.login("admin@a.example")
    status, report = await root.call("POST", "/billing/run")
    assert report["issued"] == ["000006"] and report["invoices"][0]["total"] == "2362.91"  # + 321.25 - 100
    status, detail = await owner.call("GET", f"/invoices/{may}")
    assert detail["late_fee_billed_in"] == "000006"

    status, june = await owner.call("GET", f"/accounts/{account}/statements/2026-06")
    assert status == 200
    assert (june["opening_balance"], june["closing_balance"], june["as_of"]) == (
        "0.00",
        "2141.66",
        "2026-06-30",
    )
    assert [(x["kind"], x["reference"], x["debit"]) for x in june["lines"]] == [
        ("invoice", "000003", "2141.66")
    ]
    assert june["open_invoices"] == [{"number": "000003", "due": "2026-07-11", "open_amount": "2141.66"}]
    status, july = await owner.call("GET", f"/accounts/{account}/statements/2026-07?lang=zh-CN")
    assert (july["opening_balance"], july["closing_balance"], july["credit_held"]) == (
        "2141.66",
        "2141.66",
        "100.00",
    )
    assert [(x["kind"], x["debit"], x["credit"], x["memo"], x["balance"]) for x in july["lines"]] == [
        ("invoice", "2141.66", "0.00", None, "4283.32"),
        ("payment", "0.00", "2141.66", None, "2141.66"),
        ("credit_held", "0.00", "0.00", "100.00", "2141.66"),
    ]
    assert july["lines"][1]["description"] == "收款：账单 000003（BANK-0716）"
    assert july["open_invoices"] == [{"number": "000004", "due": "2026-08-10", "open_amount": "2141.66"}]
    status, august = await owner.call("GET", f"/accounts/{account}/statements/2026-08")
    assert (august["closing_balance"], august["credit_held"], august["as_of"]) == (
        "4504.57",
        "0.00",
        "2026-08-01",
    )

    status, csv_text = await owner.call("GET", f"/accounts/{account}/statements/2026-07/csv?lang=zh-CN")
    assert status == 200 and csv_text.startswith("\ufeff日期")
    rows = csv_text.strip().split("\r\n")
    assert (
        rows[1].endswith(",opening,期初余额,,,2141.66,") and "2026-07-31,closing,期末余额,,,2141.66," in rows
    )
    assert rows[-1] == "2026-07-31,held,待下期抵扣金额,,,,100.00"

    for month, lang, capital, balance in (
        ("2026-06", "zh-CN", "贰仟壹佰肆拾壹元陆角陆分", "期末余额CNY2,141.66"),
        ("2026-07", "en", "贰仟壹佰肆拾壹元陆角陆分", "ClosingbalanceCNY2,141.66"),
        ("2026-08", "zh-CN", "肆仟伍佰零肆元伍角柒分", "期末余额CNY4,504.57"),
    ):
        target = tmp_path / f"statement-{month}-{lang}.pdf"
        status, _ = await fetch(
            api, owner.token, f"/accounts/{account}/statements/{month}/pdf?lang={lang}", target
        )
        assert status == 200
        flat = read_pdf(target)
        for expected in (SUPPLIER.tax_id, "某县教育局", "12330000MB0000000Y", capital, balance):
            assert expected in flat, (month, expected)

    # Bad months are 422 naming the field; another account's statement is a 404 for its admins.
    for month, message in (
        ("2026-13", "not a month"),
        ("0000-01", "not a month"),
        ("2026-09", "has not begun"),
        ("2025-01", "purged"),
        ("0001-01", "purged"),
    ):
        status, error = await owner.call("GET", f"/accounts/{account}/statements/{month}")
        assert (status, error["error"]["field"]) == (422, "month") and message in error["error"]["message"]
    other = await api.login("admin@a.example")
    status, _ = await other.call("GET", f"/accounts/{account + 1}/statements/2026-07")
    assert status == 404


async def test_contract_terms_change_until_acceptance(api: Api) -> None:
    root = await api.login("root@example.com")
    owner = await api.login("admin@a.example")
    account = api.accounts["a"]
    sites = await add_sites(api, "a")
    later = {**TERMS, "start": "2026-03-20"}
    status, contract = await root.call(
        "POST", f"/accounts/{account}/contracts", {"terms": later, "sites": [{"site_id": s} for s in sites]}
    )
    assert status == 201 and contract["accepted"] is False
    assert (contract["renews_on"], contract["notice_deadline"]) == ("2027-03-20", "2027-02-18")
    path = f"/contracts/{contract['id']}"
    before = await snapshot(api)
    for terms, field, message in (
        ({**later, "fee_per_endpoint_year": "-1"}, "terms.fee_per_endpoint_year", "at least 0"),
        ({**later, "currency": "XYZ"}, "terms.currency", "unknown currency"),
        ({**later, "start": "2026-03-01"}, "terms.start", "past"),
    ):
        status, error = await root.call("PATCH", path, {"terms": terms})
        assert (status, error["error"]["field"]) == (422, field) and message in error["error"]["message"]
    assert (await owner.call("PATCH", path, {"terms": later}))[0] == 403
    assert await snapshot(api) == before

    status, changed = await root.call(
        "PATCH", path, {"terms": {**later, "start": "2026-03-18", "fee_per_endpoint_year": "10000"}}
    )
    assert status == 200, changed
    assert (changed["start"], changed["terms"]["fee_per_endpoint_year"]) == ("2026-03-18", "10000")
    async with api.db.session() as session:
        opened = (await session.scalars(select(SiteServiceChange.on))).all()
    assert opened == [date(2026, 3, 18)] * 2

    api.clock.now = datetime(2026, 3, 18, 4, tzinfo=UTC)
    root = await api.login("root@example.com")
    before = await snapshot(api)
    status, error = await root.call("PATCH", path, {"terms": later})
    assert status == 409 and error["error"]["code"] == "contract_accepted"
    assert "accepted on 2026-03-18" in error["error"]["message"]
    assert await snapshot(api) == before
    status, listed = await root.call("GET", f"/accounts/{account}/contracts")
    assert listed[0]["accepted"] is True and listed[0]["term_months"] == 12


async def test_bad_input_writes_nothing(api: Api) -> None:
    root = await api.login("root@example.com")
    account = api.accounts["a"]
    sites = await add_sites(api, "a")
    all_sites = [{"site_id": s} for s in sites]
    before = await snapshot(api)
    for terms, field in (
        ({**TERMS, "fee_per_endpoint_year": "-12850"}, "terms.fee_per_endpoint_year"),
        ({**TERMS, "currency": "RMB"}, "terms.currency"),
    ):
        status, error = await root.call(
            "POST", f"/accounts/{account}/contracts", {"terms": terms, "sites": all_sites}
        )
        assert (status, error["error"]["field"]) == (422, field)
    assert await snapshot(api) == before

    assert (await root.call("POST", f"/accounts/{account}/contracts", {"terms": TERMS, "sites": all_sites}))[
        0
    ] == 201
    api.clock.now = datetime(2026, 6, 1, 4, tzinfo=UTC)
    root = await api.login("root@example.com")
    await root.call("POST", "/billing/run")
    may = (await root.call("GET", f"/accounts/{account}/invoices"))[1][2]["id"]
    before = await snapshot(api)
    status, error = await root.call(
        "POST", f"/invoices/{may}/payments", {"amount": "2141.67", "paid_on": "2026-06-01"}
    )
    assert (status, error["error"]["field"]) == (422, "amount") and "more than the amount due 2141.66" in str(
        error
    )
    assert await snapshot(api) == before
    pay = {"amount": "2141.66", "paid_on": "2026-06-01"}
    assert (await root.call("POST", f"/invoices/{may}/payments", pay))[0] == 201
    before = await snapshot(api)
    status, error = await root.call("POST", f"/invoices/{may}/payments", pay)
    assert (status, error["error"]["code"], error["error"]["field"]) == (409, "already_paid", "amount")
    assert await snapshot(api) == before


async def test_usage_shows_every_recorded_kind(api: Api) -> None:
    root = await api.login("root@example.com")
    owner = await api.login("admin@a.example")
    account = api.accounts["a"]
    sites = await add_sites(api, "a")
    body = {"terms": TERMS, "sites": [{"site_id": s} for s in sites]}
    assert (await root.call("POST", f"/accounts/{account}/contracts", body))[0] == 201
    # A kind this code has never heard of, as another package's meter would write it.
    async with api.db.writer() as session:
        session.add(
            UsageRecord(
                account_id=account,
                kind="sms_parts",
                month=date(2026, 3, 1),
                quantity=Decimal(42),
                source="metered",
                created_at=api.clock.now,
            )
        )
        await session.commit()
    status, usage = await owner.call("GET", f"/accounts/{account}/usage?month=2026-03")
    assert status == 200, usage
    assert usage["usage"] == [{"kind": "sms_parts", "quantity": "42", "source": "metered"}]
    assert [(s["name"], s["endpoints"], s["in_service"]) for s in usage["sites"]] == [
        ("县一中会场", 1, True),
        ("County B venue", 1, True),
    ]
    # The current month is metered live: SMS parts the SMSC took (rooms/sms) show as they are sent.
    async with api.db.writer() as session:
        sms = await enqueue(
            session,
            channel="sms",
            kind="reminder",
            recipient="+8613800000000",
            idempotency_key="sms-1",
            now=api.clock.now,
            account_id=account,
            billable=True,
        )
        row = await session.get(Notification, sms)
        assert row is not None
        row.parts, row.sent_at, row.status = 3, api.clock.now - timedelta(minutes=1), "sent"
        await session.commit()
    status, usage = await owner.call("GET", f"/accounts/{account}/usage")
    assert (status, usage["month"]) == (200, "2026-03")
    assert {"kind": "sms", "quantity": "3", "source": "so_far"} in usage["usage"]
    status, error = await owner.call("GET", f"/accounts/{account}/usage?month=2026-04")
    assert status == 422 and error["error"]["field"] == "month"
    assert (await owner.call("GET", f"/accounts/{account}/usage?month=March"))[0] == 422
    for month in ("0000-01", "0001-01", "9999-12"):
        status, error = await owner.call("GET", f"/accounts/{account}/usage?month={month}")
        assert (status, error["error"]["field"]) == (422, "month"), month


async def test_an_issued_invoice_is_emailed_to_the_account_admins(api: Api) -> None:
    root = await api.login("root@example.com")
    account = api.accounts["a"]
    sites = await add_sites(api, "a")
    body = {"terms": TERMS, "sites": [{"site_id": s} for s in sites]}
    assert (await root.call("POST", f"/accounts/{account}/contracts", body))[0] == 201
    api.clock.now = datetime(2026, 6, 1, 4, tzinfo=UTC)
    root = await api.login("root@example.com")
    assert (await root.call("POST", "/billing/run"))[1]["issued"] == ["000001", "000002", "000003"]
    assert (await root.call("POST", "/billing/run"))[1]["issued"] == []
    async with api.db.session() as session:
        queued = (
            await session.scalars(select(Notification).where(Notification.kind == "invoice_issued"))
        ).all()
    # The trial months' 0.00 invoices ask for nothing; May's goes to the account's one admin, once.
    assert [(n.recipient, n.variables["number"], n.status) for n in queued] == [
        ("admin@a.example", "000003", "queued")
    ]
    templates = Templates()
    zh = templates.render("invoice_issued", "zh-CN", queued[0].variables)
    assert zh.subject == "账单 000003：应付 CNY 2,141.66，请于 2026-07-11 前付款"
    assert "贰仟壹佰肆拾壹元陆角陆分" in zh.text and "Account a" in zh.text
    assert "全部未付账单合计（含本期）：CNY 2,141.66" in zh.text
    en = templates.render("invoice_issued", "en", queued[0].variables)
    assert "invoice <b>000003</b>" in en.html and "2026-05" in en.text


@st.composite
def ledgers(draw: st.DrawFn) -> list[LedgerEntry]:
    """Invoices over a year, each maybe partly credited and then paid in full, and memo credits."""
    entries: list[LedgerEntry] = []
    for n in range(draw(st.integers(0, 8))):
        issued = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 330)))
        total = Decimal(draw(st.integers(0, 500_000))) / 100
        number = f"{n + 1:06d}"
        entries.append(
            LedgerEntry(issued, EntryKind.INVOICE, number, number, total, due=issued + timedelta(40))
        )
        credited = (
            Decimal(draw(st.integers(0, int(total * 100)))) / 100 if draw(st.booleans()) else Decimal(0)
        )
        later = issued + timedelta(days=draw(st.integers(0, 60)))
        if credited:
            entries.append(LedgerEntry(later, EntryKind.CREDIT_NOTE, f"c{n}", number, credited))
        if draw(st.booleans()) and total - credited > 0:
            paid = later + timedelta(days=draw(st.integers(0, 60)))
            entries.append(LedgerEntry(paid, EntryKind.PAYMENT, f"p{n}", number, total - credited))
            if draw(st.booleans()):
                entries.append(
                    LedgerEntry(paid, EntryKind.CREDIT_HELD, f"h{n}", number, Decimal(7), applied_on=None)
                )
    return entries


@given(ledgers(), st.integers(1, 12))
@settings(max_examples=150, deadline=None)
def test_statement_balances_chain_and_match_the_open_invoices(entries: list[LedgerEntry], month: int) -> None:
    this = build_statement(
        entries, month_period(date(2026, month, 1)), currency="CNY", as_of=date(2027, 6, 1)
    )
    # The running balance ends where the open invoices say, and memo credits never move it.
    assert this.closing_balance == sum((i.open_amount for i in this.open_invoices), Decimal(0))
    assert this.closing_balance == this.opening_balance + this.total_debit - this.total_credit
    if month < 12:
        following = month_period(date(2026, month + 1, 1))
        assert build_statement(
            entries, following, currency="CNY", as_of=date(2027, 6, 1)
        ).opening_balance == (this.closing_balance)
    assert this.closing_balance >= 0


async def test_amendment_run_through_and_statement_on_each_backend(db: Database, seed: Seed) -> None:
    now = datetime(2026, 3, 10, 4, tzinfo=UTC)
    sites = [{"site_id": s} for s in seed.site_ids]
    contract = await store.create_contract(db, account_id=seed.account_id, terms=TERMS, sites=sites, now=now)
    amended = await store.amend_terms(db, contract.id, terms={**TERMS, "start": "2026-03-12"}, now=now)
    assert amended.start == date(2026, 3, 12)
    with pytest.raises(BillingConflict, match="accepted on 2026-03-12"):
        await store.amend_terms(db, contract.id, terms=TERMS, now=datetime(2026, 3, 12, 4, tzinfo=UTC))
    june = datetime(2026, 6, 1, 4, tzinfo=UTC)
    assert (await run_billing(db, now=june, through=date(2026, 4, 1))).issued == ["000001", "000002"]
    assert (await run_billing(db, now=june)).issued == ["000003"]
    sheet = await statement_sheet(db, seed.account_id, "2026-06", supplier=SUPPLIER, now=june)
    assert (sheet.statement.opening_balance, sheet.statement.closing_balance) == (
        Decimal(0),
        Decimal("2141.66"),
    )
    assert sheet.supplier.tax_id == SUPPLIER.tax_id and sheet.customer.name == "County Education Bureau"


async def test_outage_credits_are_listed_with_their_invoice(api: Api) -> None:
    root = await api.login("root@example.com")
    owner = await api.login("admin@a.example")
    account = api.accounts["a"]
    sites = await add_sites(api, "a")
    body = {"terms": TERMS, "sites": [{"site_id": s} for s in sites]}
    assert (await root.call("POST", f"/accounts/{account}/contracts", body))[0] == 201
    api.clock.now = datetime(2026, 7, 1, 4, tzinfo=UTC)
    root, owner = await api.login("root@example.com"), await api.login("admin@a.example")
    assert (await owner.call("GET", f"/accounts/{account}/outage-credits"))[1] == []
    # A day down in the second quarter: availability 98.90 % against the 99.5 % target.
    outage = {"start": "2026-05-10T00:00:00Z", "end": "2026-05-11T00:00:00Z", "account_id": account}
    assert (await root.call("POST", "/outages", outage))[0] == 201
    await root.call("POST", "/billing/run")
    status, credits = await owner.call("GET", f"/accounts/{account}/outage-credits?lang=zh-CN")
    assert status == 200 and [(c["number"], c["kind"], c["period_start"]) for c in credits] == [
        ("000004", "availability_credit", "2026-06-01")
    ]
    assert Decimal(credits[0]["amount"]) < 0 and "可用性" in credits[0]["description"]
    assert (await owner.call("GET", f"/accounts/{account + 1}/outage-credits"))[0] == 404
