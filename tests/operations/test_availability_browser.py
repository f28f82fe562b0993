"""The availability report and the incidents page in real Chromium (zh-CN and en), with screenshots for the
manual under docs/screenshots/operations/.

A 45 s media outage measured by the monitor and a 99.4 %-class quarter are not what a browser can cause:
the monitor records them here through its own code path (check rounds on the app's database, injected clock);
the incidents are reported and answered through the pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
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
    artifact,
    chromium,
    docs_screenshot_dir,
    new_context,
)
from tests.conftest import SECRET_KEY, RunningServer
from web.keys import DATABASE
from yunhui.app import create_app
from yunhui.monitor import Monitor, database_check
from yunhui.settings import MonitorSettings, Settings, load_settings

__all__ = ["chromium", "new_context"]

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

NINE = datetime(2026, 5, 12, 9, 0, tzinfo=UTC)
MANUAL = docs_screenshot_dir("operations")
OWNER_EMAIL = "owner@county.example"
CLOCK = Clock(NINE)


@pytest.fixture
def browser_settings(tmp_path: Path) -> Settings:
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "rooms": {"access_token_ttl_seconds": 400 * 86400},
            # The app's own monitor stays off: this test drives one on the same database by the clock.
            "monitor": {"enabled": False},
        }
    )


@pytest_asyncio.fixture(loop_scope="module")
async def site(browser_settings: Settings) -> AsyncIterator[RunningServer]:
    CLOCK.now = NINE - timedelta(days=60)
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


class Media:
    down = False

    async def __call__(self) -> None:
        if self.down:
            raise ConnectionRefusedError("probe port closed")


async def call(
    http: aiohttp.ClientSession, url: str, token: str, method: str, path: str, *, body: object = None
) -> Any:
    async with http.request(
        method, f"{url}/api/v1{path}", json=body, headers={"Authorization": f"Bearer {token}"}
    ) as r:
        assert r.status < 300, f"{method} {path}: {r.status} {await r.text()}"
        return await r.json() if r.status != 204 else None


async def sign_in(
    new_context: Callable[..., Any], site: RunningServer, locale: str, email: str, path: str
) -> Page:
    context = await new_context(
        locale=locale, viewport={"width": 1280, "height": 1000}, accept_downloads=True
    )
    page: Page = await context.new_page()
    await page.goto(f"{site.url}/admin/{path}")
    await page.fill("#login-email", email)
    await page.fill("#login-password", ADMIN_PASSWORD)
    await page.click("form button[type=submit]")
    return page


async def shot(page: Page, name: str, language: str) -> None:
    MANUAL.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=artifact(f"operations-{name}-{language}.png"), full_page=True)
    await page.screenshot(path=str(MANUAL / f"{name}-{language}.png"), full_page=True)


@pytest.mark.parametrize(("locale", "language"), [("zh-CN", "zh-CN"), ("en-US", "en")])
async def test_incidents_page_and_availability_report(
    *, new_context: Callable[..., Any], site: RunningServer, locale: str, language: str
) -> None:
    db = site.app[DATABASE]
    CLOCK.now = NINE - timedelta(days=60)
    await users.create_user(
        db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, role="admin", account_id=None, now=CLOCK.now
    )
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{site.url}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        ) as r:
            token = (await r.json())["token"]
        account = (await call(http, site.url, token, "POST", "/accounts", body={"name": "某县教育局"}))["id"]
        s = await call(
            http, site.url, token, "POST", "/sites", body={"name": "县一中会场", "account_id": account}
        )
        await call(
            http, site.url, token, "POST", "/endpoints", body={"site_id": s["id"], "display_name": "t"}
        )
        await call(http, site.url, token, "POST", "/rooms", body={"name": "会议室", "account_id": account})
        terms = {"currency": "CNY", "fee_per_endpoint_year": "12850", "start": "2026-03-16"}
        await call(http, site.url, token, "POST", f"/accounts/{account}/contracts",
                   body={"terms": terms, "sites": [{"site_id": s["id"]}]})  # fmt: skip
        await users.create_user(
            db, email=OWNER_EMAIL, password=ADMIN_PASSWORD, role="admin", account_id=account, now=CLOCK.now
        )

        # The monitor measures a 45 s interruption of the media path on 12 May and 14 h on 20 May.
        media = Media()
        for start, seconds, step in (
            (NINE - timedelta(hours=2), 45, 5),
            (NINE + timedelta(days=8), 14 * 3600, 3600),
        ):
            monitor = Monitor(
                db, {"database": database_check(db), "media": media}, clock=CLOCK,
                settings=MonitorSettings(interval_seconds=step), timeouts={"media": 5},
            )  # fmt: skip
            CLOCK.now = start - timedelta(seconds=2 * step)
            while CLOCK.now <= start + timedelta(seconds=seconds + 2 * step):
                media.down = start <= CLOCK.now < start + timedelta(seconds=seconds)
                await monitor.check_once()
                CLOCK.now += timedelta(seconds=step)

        # The customer reports a fault at 09:00; the provider answers at 11:30 (late: 2 h).
        CLOCK.now = NINE
        owner = await sign_in(new_context, site, locale, OWNER_EMAIL, "incidents")
        await owner.wait_for_selector("#incident-form")
        await owner.fill("#incident-title", "3 号会议室没有图像")
        await owner.fill("#incident-description", "08:50 起终端黑屏")
        await owner.click("#incident-form button[type=submit]")
        row = owner.locator("#incident-table tr", has_text="3 号会议室没有图像")
        await row.wait_for()
        assert await row.locator('[data-clock="response"]').get_attribute("data-state") == "running"

        CLOCK.now = NINE + timedelta(hours=2, minutes=30)
        staff = await sign_in(new_context, site, locale, ADMIN_EMAIL, "incidents")
        await staff.locator("#incident-table button", has_text="3 号会议室没有图像").click()
        await staff.wait_for_selector("#incident-detail")
        await staff.fill("#incident-note", "正在检查终端 / checking the terminal")
        await staff.select_option("#incident-status", "in_progress")
        await staff.click("#incident-save")
        await staff.wait_for_selector("#incident-events li:nth-child(2)")
        # Answered 2 h 30 min after the report: the response clock is breached (done, late).
        assert (
            await staff.get_attribute('#incident-detail [data-clock="response"]', "data-state") == "breached"
        )
        assert "checking the terminal" in await staff.inner_text("#incident-events")

        # A second fault, answered at once and solved in 3 h: within the 4 h clock.
        CLOCK.now = NINE + timedelta(days=1)
        quick = await call(http, site.url, token, "POST", "/incidents",
                           body={"title": "Echo in the board room", "account_id": account})  # fmt: skip
        CLOCK.now += timedelta(minutes=20)
        await call(
            http, site.url, token, "PATCH", f"/incidents/{quick['id']}", body={"status": "in_progress"}
        )
        CLOCK.now = NINE + timedelta(days=1, hours=3)
        await call(http, site.url, token, "PATCH", f"/incidents/{quick['id']}", body={"status": "resolved"})

    CLOCK.now = datetime(2026, 7, 2, 4, tzinfo=UTC)
    await owner.reload()
    await owner.select_option("#incident-filter", "all")
    await owner.select_option("#incident-quarter", "2026-Q2")
    await owner.wait_for_selector("#incident-report-table [data-incident]")
    # Nobody answered the monitor's two incidents within 2 h either: three late responses, one in time.
    assert (await owner.inner_text("#report-response-breached")).strip() == "3"
    assert (await owner.inner_text("#report-response-met")).strip() == "1"
    assert (await owner.inner_text("#report-resolution-met")).strip() == "1"
    report_rows = owner.locator("#incident-report-table tbody tr")
    assert await report_rows.count() == 4
    await owner.locator("#incident-table button", has_text="3 号会议室没有图像").click()
    await owner.wait_for_selector("#incident-detail")
    await shot(owner, "incidents", language)

    await owner.click(
        'a[href="/admin/availability"], nav a:has-text("'
        + ("服务可用率" if language == "zh-CN" else "Availability")
        + '")'
    )
    await owner.select_option("#availability-quarter", "2026-Q2")
    await owner.wait_for_selector("#outage-table [data-outage]")
    assert await owner.locator("#outage-table [data-outage]").count() == 2
    meetings = await owner.inner_text("#uptime-meetings")
    assert meetings.replace(",", "").startswith("99.35"), meetings
    assert "100" in await owner.inner_text("#uptime-operations")
    assert await owner.locator("#credit-table tbody tr").count() == 1
    async with owner.expect_download() as pdf:
        await owner.click("#availability-pdf")
    assert (await (await pdf.value).path()).read_bytes().startswith(b"%PDF")
    await shot(owner, "availability", language)
