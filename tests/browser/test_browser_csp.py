"""The Content-Security-Policy in real Chromium: the home page, the admin UI and the meeting's pre-join page
run with no violation (an inline script or style the policy blocks would break them silently)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, AdminApi
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


async def _violations(page: Page, console: list[str]) -> list[str]:
    found: list[str] = await page.evaluate("window.__violations")
    return found + [line for line in console if "Content Security Policy" in line]


def _watch(page: Page) -> list[str]:
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    return console


async def test_pages_send_the_security_headers(site: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/admin", "/m/123456789", "/healthz", "/api/v1/openapi.json"):
            async with http.get(site.url + path) as response:
                csp = response.headers["Content-Security-Policy"]
                assert "frame-ancestors 'none'" in csp and "script-src 'self' 'sha256-" in csp
                assert "unsafe-inline" not in csp
                assert response.headers["X-Frame-Options"] == "DENY"
                assert response.headers["Referrer-Policy"] == "same-origin"


async def test_home_admin_and_prejoin_run_without_csp_violations(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room()
    context = await new_context(bypass_csp=False)
    await context.add_init_script(RECORD_VIOLATIONS)
    page = await context.new_page()
    console = _watch(page)
    await page.goto(site.url + "/")
    # The stylesheet applied (it was an inline <style> before the policy).
    assert await page.evaluate("getComputedStyle(document.querySelector('button')).borderRadius") == "8px"
    await page.goto(f"{site.url}/m/{room['meeting_number']}")
    await page.wait_for_selector("#join:enabled")
    assert await _violations(page, console) == []

    # The admin UI under the real policy: sign in, then the rooms list.
    await page.goto(site.url + "/admin")
    await page.fill("#login-email", ADMIN_EMAIL)
    await page.fill("#login-password", ADMIN_PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector(".topbar")
    await page.reload()
    await page.wait_for_selector(".topbar")
    assert await _violations(page, console) == []
