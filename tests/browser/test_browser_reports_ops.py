"""The webhooks and audit log sections in real Chromium: a webhook made in the UI shows its secret once, a
test ping appears in its delivery log, a refused URL shows the API's message; the audit log lists the changes
with who made them and filters by object."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, AdminApi, artifact
from tests.conftest import RunningServer
from yunhui.settings import Settings, load_settings

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture
def browser_settings(tmp_path: Path) -> Settings:
    # No dispatcher: the ping stays queued (the test machine has no network to send it to).
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "webhooks": {"enabled": False},
        }
    )


async def _sign_in(new_context: Callable[..., Any], site: RunningServer, path: str) -> Page:
    context = await new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page: Page = await context.new_page()
    await page.goto(site.url + path)
    await page.fill("#login-email", ADMIN_EMAIL)
    await page.fill("#login-password", ADMIN_PASSWORD)
    await page.click("form button[type=submit]")
    return page


async def test_webhooks_and_the_audit_log_in_the_admin_ui(
    *, new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    await admin.call("POST", "/sites", {"name": "一中会场", "account_id": admin.account_id})
    page = await _sign_in(new_context, site, "/admin/webhooks")
    await page.wait_for_selector("#webhook-form")
    await page.fill("#webhook-url", "http://10.0.0.5/hook")
    await page.click("#webhook-create")
    assert "private, loopback or reserved" in await page.inner_text("[role=alert]")
    await page.fill("#webhook-url", "https://hooks.example.com/yunhui")
    await page.click("#webhook-create")
    secret = await page.inner_text("#webhook-secret-value")
    assert secret.startswith("whsec_")
    hooks = await admin.call("GET", f"/webhooks?account_id={admin.account_id}")
    assert [h["url"] for h in hooks] == ["https://hooks.example.com/yunhui"]
    card = page.locator(f"[data-webhook='{hooks[0]['id']}']")
    await card.get_by_role("button", name="Send test ping").click()
    await card.get_by_role("button", name="Delivery log").click()
    row = card.locator("[data-delivery]")
    await row.first.wait_for()
    assert "ping" in await row.first.inner_text() and "Pending" in await row.first.inner_text()
    await page.screenshot(path=artifact("webhooks-en.png"), full_page=True)

    await page.click("a[href$='/admin/audit']")
    await page.wait_for_selector("#audit-table")
    text = await page.inner_text("#audit-table")
    assert "admin@example.com" in text and "127.0.0.1" in text
    assert "Created" in text and "Webhook" in text and "Site" in text
    assert "whsec_" not in text  # the secret is masked in the log
    await page.select_option("#audit-type", "site")
    await page.click("#audit-run")
    await page.wait_for_function(
        "() => document.querySelectorAll('#audit-table [data-audit]').length === 1", polling=100
    )
    assert "一中会场" in await page.inner_text("#audit-table")
    await page.screenshot(path=artifact("audit-en.png"), full_page=True)
