"""The billing routes on a real aiohttp server on 127.0.0.1: roles, account isolation, 4xx that write
nothing, exports."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from rooms.database import Database
from rooms.models import Account, Endpoint, Site
from rooms.users import create_user
from tests.api.conftest import PASSWORD, SECRET, Api, Clock
from web.api import create_api

START = datetime(2026, 3, 16, 4, tzinfo=UTC)
TERMS: dict[str, Any] = {"currency": "CNY", "fee_per_endpoint_year": "12850", "start": "2026-03-16"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'api.db'}")
    await db.upgrade()
    clock = Clock(START)
    await create_user(
        db, email="root@example.com", password=PASSWORD, role="admin", account_id=None, now=START
    )
    accounts = {}
    for name in ("a", "b"):
        async with db.session() as session:
            account = Account(name=f"Account {name}", created_at=START)
            session.add(account)
            await session.commit()
        accounts[name] = account.id
        await create_user(
            db,
            email=f"admin@{name}.example",
            password=PASSWORD,
            role="admin",
            account_id=account.id,
            now=START,
        )
    root = web.Application()
    root.add_subapp("/api/v1", create_api(db, secret_key=SECRET, clock=clock))
    server = TestServer(root, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Api(str(server.make_url("/api/v1")), db, clock, http, accounts)
    finally:
        await server.close()
        await db.close()


async def add_sites(api: Api, account: str) -> list[int]:
    async with api.db.session() as session:
        sites = [
            Site(account_id=api.accounts[account], name=name, suspended_at=None, created_at=START)
            for name in ("县一中会场", "County B venue")
        ]
        session.add_all(sites)
        await session.flush()
        for i, site in enumerate(sites):
            session.add(
                Endpoint(
                    account_id=site.account_id,
                    site_id=site.id,
                    sip_username=f"t{site.id}-{i}",
                    sip_secret="s",
                    display_name="t",
                    enabled=True,
                    created_at=START,
                )
            )
        await session.commit()
        return [s.id for s in sites]


async def test_seed_contract_through_the_api(api: Api) -> None:
    root = await api.login("root@example.com")
    owner = await api.login("admin@a.example")
    stranger = await api.login("admin@b.example")
    account = api.accounts["a"]
    sites = await add_sites(api, "a")
    body = {"terms": TERMS, "sites": [{"site_id": s} for s in sites]}
    status, contract = await root.call("POST", f"/accounts/{account}/contracts", body)
    assert status == 201, contract
    assert contract["terms"]["payment_due_days"] == 40
    # Account admins read, only the platform admin writes.
    assert (await owner.call("POST", f"/accounts/{account}/contracts", body))[0] == 403
    assert (await owner.call("POST", "/billing/run"))[0] == 403

    api.clock.now = datetime(2026, 6, 1, 4, tzinfo=UTC)
    root, owner, stranger = [
        await api.login(f"{u}") for u in ("root@example.com", "admin@a.example", "admin@b.example")
    ]
    status, report = await root.call("POST", "/billing/run")
    assert (status, report["issued"]) == (200, ["000001", "000002", "000003"])
    status, invoices = await owner.call("GET", f"/accounts/{account}/invoices")
    assert [(i["number"], i["total"], i["state"]) for i in invoices] == [
        ("000001", "0.00", "paid"),
        ("000002", "0.00", "paid"),
        ("000003", "2141.66", "issued"),
    ]
    may = invoices[2]["id"]
    status, detail = await owner.call("GET", f"/invoices/{may}?lang=zh-CN")
    assert status == 200
    assert detail["lines"][0]["description"] == "会场终端服务费：县一中会场"
    assert (await stranger.call("GET", f"/invoices/{may}"))[0] == 404

    status, text = await owner.call("GET", f"/invoices/{may}/csv?lang=en")
    assert status == 200 and "2141.66" in text and text.count("\r\n") == 4
    async with api.http.get(
        f"{api.url}/invoices/{may}/pdf?lang=zh-CN", headers={"Authorization": f"Bearer {owner.token}"}
    ) as resp:
        assert resp.status == 200 and resp.content_type == "application/pdf"
        assert (await resp.read()).startswith(b"%PDF")
    status, listing = await owner.call("GET", f"/accounts/{account}/invoices/csv?lang=zh-CN")
    assert status == 200 and listing.startswith("\ufeff账单") and "已出账" in listing

    # Paid 45 days after issue; paying twice is a conflict that writes nothing.
    api.clock.now = datetime(2026, 7, 16, 4, tzinfo=UTC)
    root, owner = await api.login("root@example.com"), await api.login("admin@a.example")
    pay = {"amount": "2141.66", "paid_on": "2026-07-16"}
    assert (await owner.call("POST", f"/invoices/{may}/payments", pay))[0] == 403
    status, paid = await root.call("POST", f"/invoices/{may}/payments", pay)
    assert (status, paid["state"]) == (201, "paid")
    status, error = await root.call("POST", f"/invoices/{may}/payments", pay)
    assert status == 409 and error["error"]["code"] == "already_paid"
    status, detail = await owner.call("GET", f"/invoices/{may}")
    assert detail["accrued_late_fee"] == "321.25"

    status, standing = await owner.call("GET", f"/accounts/{account}/standing")
    assert standing == {"account_id": account, "suspended": False, "reason": ""}

    # Corrections are credit notes, numbered in the invoices' sequence; the invoice itself never changes.
    note = {"amount": "100", "reason": "goodwill"}
    assert (await owner.call("POST", f"/invoices/{may}/credit-notes", note))[0] == 403
    status, created = await root.call("POST", f"/invoices/{may}/credit-notes", note)
    assert (status, created["number"], created["settles"]) == (201, "000004", False)
    status, error = await root.call("POST", f"/invoices/{may}/credit-notes", {**note, "amount": "5000"})
    assert (status, error["error"]["field"]) == (422, "amount")
    status, notes = await owner.call("GET", f"/accounts/{account}/credit-notes")
    assert [n["amount"] for n in notes] == ["100"]
    assert (await owner.call("GET", f"/invoices/{may}"))[1]["total"] == "2141.66"


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"terms": {**TERMS, "fee_per_endpoint_year": "-1"}}, 422, "terms.fee_per_endpoint_year"),
        ({"terms": {**TERMS, "currency": "XXX"}}, 422, "terms.currency"),
        ({"terms": {**TERMS, "fee_per_endpoint_year": 12850.5}}, 422, "terms.fee_per_endpoint_year"),
        ({"terms": {**TERMS, "trial_months": 10**30}}, 422, "terms.trial_months"),
        ({"sites": []}, 422, "sites"),
    ],
)
async def test_bad_contract_is_a_clear_4xx_and_writes_nothing(
    api: Api, change: dict[str, Any], status: int, field: str
) -> None:
    root = await api.login("root@example.com")
    account = api.accounts["a"]
    sites = await add_sites(api, "a")
    body = {"terms": TERMS, "sites": [{"site_id": s} for s in sites], **change}
    got, error = await root.call("POST", f"/accounts/{account}/contracts", body)
    assert (got, error["error"]["field"]) == (status, field), error
    assert field in error["error"]["message"]
    assert (await root.call("GET", f"/accounts/{account}/contracts"))[1] == []


async def test_overlapping_contract_is_409_and_writes_nothing(api: Api) -> None:
    root = await api.login("root@example.com")
    account = api.accounts["a"]
    sites = await add_sites(api, "a")
    body = {"terms": TERMS, "sites": [{"site_id": sites[0]}]}
    assert (await root.call("POST", f"/accounts/{account}/contracts", body))[0] == 201
    status, error = await root.call(
        "POST", f"/accounts/{account}/contracts", {**body, "terms": {**TERMS, "start": "2026-09-01"}}
    )
    assert status == 409 and error["error"]["code"] == "contract_overlap"
    assert len((await root.call("GET", f"/accounts/{account}/contracts"))[1]) == 1
    # Another account's site cannot be put under this account's contract.
    other = await add_sites(api, "b")
    status, error = await root.call(
        "POST", f"/accounts/{api.accounts['b']}/contracts", {"terms": TERMS, "sites": [{"site_id": sites[0]}]}
    )
    assert (status, error["error"]["field"]) == (422, "sites[0].site_id")
    assert other


async def test_outages_and_usage_entry(api: Api) -> None:
    api.clock.now = datetime(2026, 6, 20, tzinfo=UTC)
    root = await api.login("root@example.com")
    owner = await api.login("admin@a.example")
    account = api.accounts["a"]
    outage = {"start": "2026-06-10T02:00:00Z", "end": "2026-06-10T02:01:00Z", "source": "monitor"}
    status, created = await root.call("POST", "/outages", outage)
    assert status == 201 and created["account_id"] is None
    status, error = await root.call("POST", "/outages", {**outage, "end": "2026-06-10T01:00:00Z"})
    assert (status, error["error"]["field"]) == (422, "end")
    assert (await owner.call("POST", "/outages", outage))[0] == 403
    assert len((await owner.call("GET", "/outages"))[1]) == 1
    status, usage = await root.call(
        "PUT", f"/accounts/{account}/usage", {"kind": "sms", "month": "2026-06-01", "quantity": "250000"}
    )
    assert (status, usage["quantity"]) == (200, "250000")
    status, error = await root.call(
        "PUT", f"/accounts/{account}/usage", {"kind": "pizza", "month": "2026-06-01", "quantity": "1"}
    )
    assert (status, error["error"]["field"]) == (422, "kind")


async def test_every_billing_route_hides_foreign_objects(api: Api) -> None:
    root = await api.login("root@example.com")
    account = api.accounts["a"]
    sites = await add_sites(api, "a")
    _, contract = await root.call(
        "POST", f"/accounts/{account}/contracts", {"terms": TERMS, "sites": [{"site_id": s} for s in sites]}
    )
    api.clock.now = datetime(2026, 6, 1, 4, tzinfo=UTC)
    root = await api.login("root@example.com")
    await root.call("POST", "/billing/run")
    _, invoices = await root.call("GET", f"/accounts/{account}/invoices")
    _, note = await root.call(
        "POST", f"/invoices/{invoices[2]['id']}/credit-notes", {"amount": "1", "reason": "r"}
    )
    ids = {
        "account_id": account,
        "contract_id": contract["id"],
        "site_id": sites[0],
        "invoice_id": invoices[0]["id"],
        "credit_note_id": note["id"],
        "month": "2026-05",
    }
    stranger = await api.login("admin@b.example")
    _, document = await root.call("GET", "/openapi.json")
    checked = 0
    for path, operations in document["paths"].items():
        if "{" not in path or not any(op.get("tags") == ["billing"] for op in operations.values()):
            continue
        concrete = re.sub(r"\{([a-z_]+)\}", lambda m: str(ids[m.group(1)]), path)
        for method, op in operations.items():
            if op.get("tags") != ["billing"]:
                continue
            status, body = await stranger.call(method.upper(), concrete, {})
            assert status == 404, (method, path, status, body)
            checked += 1
    assert checked >= 17


async def test_preview_is_an_unnumbered_draft_of_the_current_period(api: Api) -> None:
    root = await api.login("root@example.com")
    account = api.accounts["a"]
    sites = await add_sites(api, "a")
    terms = {**TERMS, "usage_prices": [{"kind": "sms", "unit_price": "0.038", "included_per_year": "300000"}]}
    await root.call(
        "POST", f"/accounts/{account}/contracts", {"terms": terms, "sites": [{"site_id": s} for s in sites]}
    )
    api.clock.now = datetime(2026, 6, 20, 4, tzinfo=UTC)
    root, owner = await api.login("root@example.com"), await api.login("admin@a.example")
    await root.call(
        "PUT", f"/accounts/{account}/usage", {"kind": "sms", "month": "2026-06-01", "quantity": "300100"}
    )
    status, draft = await owner.call("GET", f"/accounts/{account}/invoices/preview?lang=en")
    assert status == 200, draft
    assert (draft["state"], draft["period_start"], draft["due_date"]) == ("draft", "2026-06-01", "2026-08-10")
    assert [(line["kind"], line["amount"]) for line in draft["lines"]] == [
        ("site_fee", "1070.83"),
        ("site_fee", "1070.83"),
        ("usage", "3.80"),
    ]
    assert draft["total"] == "2145.46"
    # Nothing was stored or numbered.
    assert (await owner.call("GET", f"/accounts/{account}/invoices"))[1] == []
    status, _ = await root.call("GET", f"/accounts/{api.accounts['b']}/invoices/preview")
    assert status == 404
