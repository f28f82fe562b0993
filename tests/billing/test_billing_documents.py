"""Invoice documents a finance office accepts: capital numerals, embedded fonts, the parties and what is due,
read back from the PDF with poppler's pdffonts and pdftotext."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from rooms.billing.capital import rmb_capital
from rooms.billing.documents import customer_party
from rooms.database import Database
from rooms.models import Account
from rooms.settings import RoomsSettings, SupplierSettings
from rooms.users import create_user
from tests.api.conftest import PASSWORD, SECRET, Api, Clock
from tests.billing.test_billing_api import START, TERMS, add_sites
from web.api import create_api

SUPPLIER = SupplierSettings(
    legal_name="云会科技有限公司 Yunhui Technology Co., Ltd.",
    tax_id="91110108MA01ABCD2X",
    address="北京市海淀区中关村大街 1 号",
    phone="010-12345678",
    bank="中国工商银行北京中关村支行",
    bank_account="0200 0011 0900 1234 567",
    payment_note="Wire transfers only.",
)


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("12345.67", "壹万贰仟叁佰肆拾伍元陆角柒分"),
        ("0", "零元整"),
        ("0.00", "零元整"),
        ("0.05", "伍分"),
        ("0.5", "伍角整"),
        ("0.56", "伍角陆分"),
        ("1", "壹元整"),
        ("1.05", "壹元零伍分"),
        ("10", "壹拾元整"),
        ("10.5", "壹拾元伍角整"),
        ("15", "壹拾伍元整"),
        ("100", "壹佰元整"),
        ("101", "壹佰零壹元整"),
        ("110", "壹佰壹拾元整"),
        ("1001", "壹仟零壹元整"),
        ("1010", "壹仟零壹拾元整"),
        ("1100", "壹仟壹佰元整"),
        ("10000", "壹万元整"),
        ("10005", "壹万零伍元整"),
        ("10050", "壹万零伍拾元整"),
        ("10500", "壹万零伍佰元整"),
        ("15000", "壹万伍仟元整"),
        ("100500", "壹拾万零伍佰元整"),
        ("105000", "壹拾万伍仟元整"),
        ("1000000", "壹佰万元整"),
        ("2141.66", "贰仟壹佰肆拾壹元陆角陆分"),
        ("321.25", "叁佰贰拾壹元贰角伍分"),
        ("25700", "贰万伍仟柒佰元整"),
        ("100000000", "壹亿元整"),
        ("100000001", "壹亿零壹元整"),
        ("100010000", "壹亿零壹万元整"),
        ("110000000", "壹亿壹仟万元整"),
        ("101000000", "壹亿零壹佰万元整"),
        ("1000000000000", "壹万亿元整"),
        ("-12.3", "负壹拾贰元叁角整"),
        ("0.005", "壹分"),  # rounded half up to the fen first
    ],
)
def test_capital_numerals(amount: str, text: str) -> None:
    assert rmb_capital(Decimal(amount)) == text


def test_capital_numerals_refuse_what_they_cannot_write() -> None:
    with pytest.raises(ValueError, match="too large"):
        rmb_capital(Decimal(10) ** 16)
    with pytest.raises(ValueError, match="finite"):
        rmb_capital(Decimal("NaN"))


def test_customer_falls_back_to_the_account_name() -> None:
    assert customer_party("County", {}).name == "County"
    party = customer_party("County", {"name": "县教育局", "tax_id": "X1", "other": "ignored"})
    assert (party.name, party.tax_id, party.address) == ("县教育局", "X1", "")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'docs.db'}")
    await db.upgrade()
    clock = Clock(START)
    await create_user(
        db, email="root@example.com", password=PASSWORD, role="admin", account_id=None, now=START
    )
    async with db.session() as session:
        account = Account(name="Account a", created_at=START)
        session.add(account)
        await session.commit()
    await create_user(
        db, email="admin@a.example", password=PASSWORD, role="admin", account_id=account.id, now=START
    )
    root = web.Application()
    settings = RoomsSettings(supplier=SUPPLIER)
    root.add_subapp("/api/v1", create_api(db, secret_key=SECRET, clock=clock, settings=settings))
    server = TestServer(root, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Api(str(server.make_url("/api/v1")), db, clock, http, {"a": account.id})
    finally:
        await server.close()
        await db.close()


def _poppler(tool: str, pdf: Path, *args: str) -> str:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is missing: apt-get install poppler-utils (./run test installs it)")
    return subprocess.run(
        [tool, *args, str(pdf), "-"] if tool == "pdftotext" else [tool, str(pdf)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def render_first_page(pdf: Path) -> None:
    """The first page renders: poppler rasterises it from the embedded font alone."""
    png = pdf.with_suffix("")
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", str(pdf), str(png)], check=True)
    assert next(png.parent.glob(f"{png.name}*.png")).stat().st_size > 1000


def assert_fonts_embedded(pdf: Path) -> None:
    rows = _poppler("pdffonts", pdf).splitlines()[2:]
    assert rows, "the PDF names no font"
    for row in rows:
        # columns: name type encoding emb sub uni object ID
        emb = row.split()[-5]
        assert emb == "yes", row


async def _pdf(api: Api, token: str | None, invoice_id: int, lang: str, path: Path) -> str:
    async with api.http.get(
        f"{api.url}/invoices/{invoice_id}/pdf?lang={lang}", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        assert resp.status == 200, await resp.text()
        await asyncio.to_thread(path.write_bytes, await resp.read())
    assert_fonts_embedded(path)
    await asyncio.to_thread(render_first_page, path)
    return _poppler("pdftotext", path, "-layout", "-enc", "UTF-8")


def _flat(text: str) -> str:
    return "".join(text.split())


async def test_invoice_pdf_reads_back_parties_amount_due_and_capital_numerals(
    api: Api, tmp_path: Path
) -> None:
    root = await api.login("root@example.com")
    owner = await api.login("admin@a.example")
    account = api.accounts["a"]
    billing: dict[str, Any] = {
        "name": "某县教育局",
        "tax_id": "12330000MB0000000Y",
        "address": "浙江省某县人民路 8 号",
        "contact": "王老师 0571-1234567",
    }
    # The account admin cannot change what is printed on the bill; the platform admin can.
    assert (await owner.call("PATCH", f"/accounts/{account}", {"billing": billing}))[0] == 403
    status, body = await root.call("PATCH", f"/accounts/{account}", {"billing": billing})
    assert status == 200 and body["billing"] == billing
    status, body = await root.call("PATCH", f"/accounts/{account}", {"billing": {"tax_id": "x" * 41}})
    assert status == 422
    assert (await root.call("GET", f"/accounts/{account}"))[1]["billing"] == billing

    sites = await add_sites(api, "a")
    body = {"terms": TERMS, "sites": [{"site_id": s} for s in sites]}
    assert (await root.call("POST", f"/accounts/{account}/contracts", body))[0] == 201
    api.clock.now = datetime(2026, 6, 1, 4, tzinfo=UTC)
    root, owner = await api.login("root@example.com"), await api.login("admin@a.example")
    assert (await root.call("POST", "/billing/run"))[1]["issued"] == ["000001", "000002", "000003"]
    invoices = (await owner.call("GET", f"/accounts/{account}/invoices"))[1]
    may = invoices[2]["id"]

    zh = _flat(await _pdf(api, owner.token, may, "zh-CN", tmp_path / "may-zh.pdf"))
    for expected in (
        SUPPLIER.tax_id,
        "云会科技有限公司",
        "YunhuiTechnologyCo.,Ltd.",  # Latin inside a Chinese line, in one font
        "中国工商银行北京中关村支行",
        "12330000MB0000000Y",
        "某县教育局",
        "应付金额",
        "贰仟壹佰肆拾壹元陆角陆分",
        "2026-07-11",  # due: issue 1 June + 40 days
        "每日3%",
    ):
        assert expected in zh, expected
    en = _flat(await _pdf(api, owner.token, may, "en", tmp_path / "may-en.pdf"))
    assert SUPPLIER.tax_id in en and "贰仟壹佰肆拾壹元陆角陆分" in en and "CNY2,141.66" in en

    # 45 days after issue: five days late, the accrued late fee is on the document until payment.
    api.clock.now = datetime(2026, 7, 16, 4, tzinfo=UTC)
    root = await api.login("root@example.com")
    late = _flat(await _pdf(api, root.token, may, "en", tmp_path / "may-late.pdf"))
    assert "Latefeeaccruedasof2026-07-16" in late and "CNY321.25" in late
    status, _ = await root.call(
        "POST", f"/invoices/{may}/payments", {"amount": "2141.66", "paid_on": "2026-07-16", "reference": "w1"}
    )
    assert status == 201
    paid = _flat(await _pdf(api, root.token, may, "zh-CN", tmp_path / "may-paid.pdf"))
    assert "已于2026-07-16付清" in paid and "贰仟壹佰肆拾壹元陆角陆分" in paid and "未付余额CNY0.00" in paid
    # What was paid, the balance 0 and the late fee the payment date fixed, as the invoice page shows them.
    assert "2026-07-16已付CNY2,141.66" in paid
    assert "2026-07-16付款产生的滞纳金（计入下一期账单）CNY321.25" in paid
    paid_en = _flat(await _pdf(api, root.token, may, "en", tmp_path / "may-paid-en.pdf"))
    assert "Paidon2026-07-16CNY2,141.66" in paid_en and "BalanceopenCNY0.00" in paid_en
    assert "Latefeeforpaymenton2026-07-16,chargedonthenextinvoiceCNY321.25" in paid_en
