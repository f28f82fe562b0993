"""The billing pages in real Chromium: the platform admin offers the seed contract in the UI, changes its
terms before acceptance, enters the customer's billing details, runs billing for chosen months, sees the
invoice, records a payment 45 days after issue and sees the late fee, reads the month's statement of account;
the account admin reads the same documents without any write control. Bad input (a negative fee, an unknown
currency, a payment beyond the amount due, paying twice) shows the API's message beside the field and writes
nothing. Screenshots go to test-artifacts/ and docs/screenshots/billing/ for the manual (docs/billing.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Page

from rooms import users
from tests.api.conftest import Clock
from tests.browser.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    UNNAMED_CONTROLS,
    artifact,
    docs_screenshot_dir,
)
from tests.conftest import SECRET_KEY, RunningServer
from web.keys import DATABASE
from yunhui.app import create_app
from yunhui.settings import Settings, load_settings

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

START = datetime(2026, 3, 16, 4, tzinfo=UTC)
MANUAL = docs_screenshot_dir("billing")
OWNER_EMAIL = "owner@county.example"
CLOCK = Clock(START)


@pytest.fixture
def browser_settings(tmp_path: Path) -> Settings:
    # Tokens are checked against the test's clock, which jumps months: keep them valid across the jumps.
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "rooms": {
                "access_token_ttl_seconds": 400 * 86400,
                "supplier": {"legal_name": "云会科技有限公司", "tax_id": "91110108MA01ABCD2X"},
            },
        }
    )


@pytest_asyncio.fixture(loop_scope="module")
async def site(browser_settings: Settings) -> AsyncIterator[RunningServer]:
    CLOCK.now = START
    app = await create_app(browser_settings, secret_key=SECRET_KEY, clock=CLOCK)
    await app[DATABASE].upgrade()
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    host, port = runner.addresses[0][:2]
    try:
        yield RunningServer(url=f"http://{host}:{port}", app=app, settings=browser_settings)
    finally:
        await runner.cleanup()


async def call(
    http: aiohttp.ClientSession, url: str, token: str, method: str, path: str, *, body: object = None
) -> Any:
    async with http.request(
        method, f"{url}/api/v1{path}", json=body, headers={"Authorization": f"Bearer {token}"}
    ) as r:
        assert r.status < 300, f"{method} {path}: {r.status} {await r.text()}"
        return await r.json() if r.status != 204 else None


async def sign_in(new_context: Callable[..., Any], site: RunningServer, locale: str, email: str) -> Page:
    context = await new_context(
        locale=locale, viewport={"width": 1280, "height": 1000}, accept_downloads=True
    )
    page: Page = await context.new_page()
    await page.goto(site.url + "/admin/billing")
    await page.fill("#login-email", email)
    await page.fill("#login-password", ADMIN_PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector(".billing")
    return page


async def shot(page: Page, name: str, language: str) -> None:
    """A screenshot for the test's artefacts and the manual's figure of the same name."""
    # Every control on the page has a name a screen reader can announce (its label).
    assert await page.evaluate(UNNAMED_CONTROLS) == [], name
    MANUAL.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=artifact(f"billing-{name}-{language}.png"), full_page=True)
    await page.screenshot(path=str(MANUAL / f"{name}-{language}.png"), full_page=True)


@pytest.mark.parametrize(("locale", "language"), [("zh-CN", "zh-CN"), ("en-US", "en")])
async def test_seed_contract_run_invoice_late_payment(
    *, new_context: Callable[..., Any], site: RunningServer, locale: str, language: str
) -> None:
    db = site.app[DATABASE]
    await users.create_user(
        db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, role="admin", account_id=None, now=START
    )
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{site.url}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        ) as r:
            token = (await r.json())["token"]
        account = (await call(http, site.url, token, "POST", "/accounts", body={"name": "某县教育局"}))["id"]
        for name in ("县一中会场", "County B venue"):
            s = await call(
                http, site.url, token, "POST", "/sites", body={"name": name, "account_id": account}
            )
            await call(
                http, site.url, token, "POST", "/endpoints", body={"site_id": s["id"], "display_name": "t"}
            )
        await users.create_user(
            db, email=OWNER_EMAIL, password=ADMIN_PASSWORD, role="admin", account_id=account, now=START
        )
        # An account in use (it has a room), so its admin is not sent to the first-use guide.
        await call(http, site.url, token, "POST", "/rooms", body={"name": "会议室", "account_id": account})

        page = await sign_in(new_context, site, locale, ADMIN_EMAIL)
        await page.click("#billing-tab-contracts")
        await page.wait_for_selector("#contract-form")
        assert await page.input_value("#term-fee_per_endpoint_year") == "12850"
        assert await page.input_value("#term-payment_due_days") == "40"
        # A negative fee and an unknown currency: the API's message beside the field, and no contract written.
        await page.fill("#term-fee_per_endpoint_year", "-1")
        await page.fill("#term-start", "2026-03-20")
        await page.click("#contract-submit")
        assert "at least 0" in await page.inner_text('[data-field="fee_per_endpoint_year"]')
        await page.fill("#term-fee_per_endpoint_year", "12850")
        await page.fill("#term-currency", "XYZ")
        await page.click("#contract-submit")
        assert "unknown currency" in await page.inner_text('[data-field="currency"]')
        assert await page.locator('[data-field="fee_per_endpoint_year"]').count() == 0
        assert await call(http, site.url, token, "GET", f"/accounts/{account}/contracts") == []
        await page.fill("#term-currency", "CNY")
        await page.click("#contract-submit")
        # Offered from the 20th: its terms change until then. Accepted today instead.
        await page.click('#contracts-table [data-accepted="false"] .contract-edit')
        await page.wait_for_selector("#contract-edit-form")
        await shot(page, "contract-edit", language)
        await page.fill("#contract-edit-form #term-start", "2026-03-16")
        await page.click("#contract-save")
        await page.wait_for_selector('#contracts-table [data-accepted="true"]')
        renewal = await page.inner_text("#contracts-table .contract-renewal")
        assert "2027-03-16" in renewal and "2027-02-14" in renewal, renewal
        assert await page.locator(".contract-edit").count() == 0
        await shot(page, "contracts", language)

        await page.click("#billing-tab-customer")
        for key, value in (
            ("name", "某县教育局"),
            ("tax_id", "12330000MB0000000Y"),
            ("contact", "王老师 0571-1234567"),
        ):
            await page.fill(f"#customer-{key}", value)
        await page.click("#customer-save")
        await page.wait_for_selector("#customer-saved")
        await shot(page, "customer", language)
        assert (await call(http, site.url, token, "GET", f"/accounts/{account}"))["billing"]["tax_id"] == (
            "12330000MB0000000Y"
        )

        CLOCK.now = datetime(2026, 6, 1, 4, tzinfo=UTC)
        await page.click("#billing-tab-run")
        await page.fill("#run-through", "2026-06")
        await page.click("#run-billing")
        assert "2026-06" in await page.inner_text('[data-field="through"]')
        await page.fill("#run-through", "2026-04")
        await page.click("#run-billing")
        await page.wait_for_selector("#run-report")
        assert (await page.inner_text("#run-issued")).strip() == "000001, 000002"
        await page.fill("#run-through", "2026-05")
        await page.click("#run-billing")
        await page.wait_for_selector('#run-invoices [data-invoice="000003"]')
        assert "2141.66" in await page.inner_text('#run-invoices [data-invoice="000003"]')
        await shot(page, "run", language)
        # Usage per month shows every kind recorded, whoever metered it.
        await page.click("#billing-tab-usage")
        await page.fill("#usage-report-month", "2026-05")
        await page.wait_for_selector('#usage-kinds [data-kind="peak_endpoints"]')
        assert "1" in await page.inner_text("#usage-sites")
        await shot(page, "usage", language)

        CLOCK.now = datetime(2026, 7, 16, 4, tzinfo=UTC)  # 45 days after issue, 5 days past due
        await page.click("#billing-tab-invoices")
        await page.click('[data-invoice="000003"] a')
        await page.wait_for_selector("#invoice-detail")
        assert "2141.66" in await page.inner_text("#invoice-total")
        assert "321.25" in await page.inner_text("#invoice-late-fee")
        # Unpaid: the dates dunning will follow.
        assert (await page.inner_text("#invoice-overdue-from")).strip() == "2026-07-12"
        assert (await page.inner_text("#invoice-suspends-on")).strip() == "2026-08-01"
        # A second admin's page has the same invoice open: after the payment, its payment is refused.
        other = await sign_in(new_context, site, locale, ADMIN_EMAIL)
        await other.click('[data-invoice="000003"] a')
        await other.wait_for_selector("#payment-form")
        # A payment that is not the amount due is refused beside the amount and writes nothing.
        await page.fill("#pay-amount", "100.00")
        await page.fill("#pay-date", "2026-07-16")
        await page.click("#pay-submit")
        assert "2141.66" in await page.inner_text('[data-field="amount"]')
        await page.fill("#pay-amount", "2200.00")
        await page.click("#pay-submit")
        await page.wait_for_selector('[data-field="amount"]:has-text("2200")')
        assert "2141.66" in await page.inner_text('[data-field="amount"]')
        await page.fill("#pay-amount", "2141.66")
        await page.fill("#pay-reference", "BANK-0716")
        await page.click("#pay-submit")
        await page.wait_for_selector('#invoice-detail[data-state="paid"]')
        assert (await page.inner_text("#invoice-paid-on")).strip() == "2026-07-16"
        assert "2141.66" in await page.inner_text("#invoice-paid")
        assert "0.00" in await page.inner_text("#invoice-balance")
        assert "321.25" in await page.inner_text("#invoice-late-fee")
        await shot(page, "invoice-paid", language)
        async with page.expect_download() as info:
            await page.click("#pdf-zh")
        assert (await (await info.value).path()).read_bytes().startswith(b"%PDF")
        await other.fill("#pay-date", "2026-07-16")
        await other.click("#pay-submit")
        assert "already paid" in await other.inner_text('[data-field="amount"]')
        invoices = await call(http, site.url, token, "GET", f"/accounts/{account}/invoices")
        assert [(i["number"], i["state"], i["paid_on"]) for i in invoices][2] == (
            "000003",
            "paid",
            "2026-07-16",
        )
        # A credit note on the paid invoice: credited on the next invoice, with a PDF of its own.
        await page.fill("#credit-amount", "100")
        await page.fill("#credit-reason", "宕机补偿 outage credit")
        await page.click("#credit-submit")
        await page.wait_for_selector('[data-credit-note="000004"]')
        async with page.expect_download() as info:
            await page.click('[data-credit-note="000004"] button')
        assert (await (await info.value).path()).read_bytes().startswith(b"%PDF")

        await page.click("#billing-tab-statements")
        await page.fill("#statement-month", "2026-07")
        await page.wait_for_selector('#statement-lines [data-kind="credit_held"]')
        assert "0.00" in await page.inner_text("#statement-closing")
        assert "100.00" in await page.inner_text("#statement-credit-held")
        async with page.expect_download() as info:
            await page.click("#statement-pdf-zh")
        assert (await (await info.value).path()).read_bytes().startswith(b"%PDF")
        await shot(page, "statement", language)

        owner = await sign_in(new_context, site, locale, OWNER_EMAIL)
        await owner.wait_for_selector("#billing-readonly")
        assert await owner.locator("#billing-tab-run").count() == 0
        await owner.click('[data-invoice="000003"] a')
        await owner.wait_for_selector('#invoice-detail[data-state="paid"]')
        assert await owner.locator("#payment-form, #credit-form").count() == 0
        assert "321.25" in await owner.inner_text("#invoice-late-fee")
        await shot(owner, "owner-readonly", language)
        await owner.click("#billing-tab-customer")
        await owner.wait_for_selector("#customer-details")
        assert await owner.locator("#customer-form").count() == 0
        assert "12330000MB0000000Y" in await owner.inner_text("#customer-details")
        await owner.click("#billing-tab-contracts")
        await owner.wait_for_selector('#contracts-table [data-accepted="true"]')
        assert await owner.locator("#contract-form, .contract-edit").count() == 0
        await owner.click("#billing-tab-outages")
        await owner.wait_for_selector("#outage-credits-card")
        assert await owner.locator("#outage-form").count() == 0
        await owner.click("#billing-tab-statements")
        await owner.fill("#statement-month", "2026-07")
        await owner.wait_for_selector('#statement-lines [data-kind="payment"]')
