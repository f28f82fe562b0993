"""The SMS section in real Chromium (issue #19) against a real SMSC (smpp34 on 127.0.0.1): the part count
shows while the admin types and the SMSC receives the parts; a template with an undeclared variable is refused
with the field named, a fixed one saves with its preview; a CSV batch shows its skipped lines and its progress
to the end; the statistics draw their chart. Screenshots go to docs/screenshots/sms/ for the manual
(docs/notifications.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

from tests.browser.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    UNNAMED_CONTROLS,
    AdminApi,
    docs_screenshot_dir,
)
from tests.conftest import RunningServer
from tests.notify.smpp_smsc import TestSmsc
from yunhui.settings import Settings, load_settings

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]
SCREENSHOTS = docs_screenshot_dir("sms")


@pytest_asyncio.fixture(loop_scope="module")
async def smsc() -> AsyncIterator[TestSmsc]:
    server = TestSmsc(receipts="DELIVRD")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def browser_settings(tmp_path: Path, smsc: TestSmsc) -> Settings:
    smpp = {"host": "127.0.0.1", "port": smsc.port, "system_id": "yunhui", "password": "secret"}
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "notify": {"smpp": {**smpp, "source_addr": "10690000", "tps": 50.0}},
        }
    )


async def sign_in(new_context: Callable[..., Any], site: RunningServer, locale: str) -> Page:
    context = await new_context(
        locale=locale, timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 900}
    )
    page: Page = await context.new_page()
    await page.goto(site.url + "/admin")
    await page.fill("#login-email", ADMIN_EMAIL)
    await page.fill("#login-password", ADMIN_PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector(".topbar")
    return page


async def test_send_templates_batches_and_statistics(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi, smsc: TestSmsc
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = await sign_in(new_context, site, "zh-CN")
    await page.click("#nav-sms")

    # Send now: the preview counts the signature; 66 characters + 【云会】 = 70 is one part, 67 makes two.
    await page.fill("#sms-to", "13800138000")
    await page.fill("#sms-text", "会" * 66)
    await page.wait_for_selector("#sms-text-preview[data-parts='1']")
    await page.fill("#sms-text", "会" * 67)
    preview = await page.wait_for_selector("#sms-text-preview[data-parts='2']")
    assert "71" in await preview.inner_text()
    await page.screenshot(path=str(SCREENSHOTS / "send.png"))
    await page.click("#sms-send-button")
    await page.wait_for_selector("#sms-sent")
    await smsc.wait_for(lambda: len(smsc.accepted) == 2)
    assert [s.part.seq for s in smsc.submits] == [1, 2]

    # Templates: an undeclared variable is refused and named; declared, the template saves with its preview.
    await page.click("#sms-tab-templates")
    await page.fill("#sms-template-key", "notice")
    await page.fill("#sms-template-zh-CN", "${name}您好，会议改到${room}。")
    await page.fill("#sms-template-en", "Hello ${name}, the meeting moved to ${room}.")
    await page.click("#sms-variable-add")
    await page.fill("#sms-variable-0", "name")
    await page.click("#sms-template-save")
    refusal = await page.wait_for_selector("#sms-template-form .error")
    assert "texts.zh-CN" in await refusal.inner_text() and "${room}" in await refusal.inner_text()
    await page.click("#sms-variable-add")
    await page.fill("#sms-variable-1", "room")
    await page.click("#sms-template-save")
    await page.wait_for_selector("#sms-templates tr[data-template='notice']")

    # A batch from CSV: the bad line is listed, the progress runs to the end.
    await page.click("#sms-tab-batches")
    await page.fill("#sms-batch-name", "周会改期")
    await page.fill(
        "#sms-batch-csv", "phone,name,room\n13800138001,李雷,三楼\nbad,x,y\n13800138002,韩梅梅,五楼\n"
    )
    await page.select_option("#sms-batch-template", "notice")
    await page.click("#sms-batch-send")
    result = await page.wait_for_selector("#sms-batch-result")
    assert "2" in await result.inner_text() and "bad（不是电话号码）" in await result.inner_text()
    await smsc.wait_for(lambda: len(smsc.accepted) == 4)
    await page.wait_for_selector("tr[data-batch] .batch-done:text('2 / 2')", timeout=30_000)
    texts = sorted(s.part.text for s in smsc.submits[2:])
    assert texts == ["【云会】李雷您好，会议改到三楼。", "【云会】韩梅梅您好，会议改到五楼。"]
    await page.screenshot(path=str(SCREENSHOTS / "batches.png"))

    # Statistics: today's bars (3 messages sent, 4 parts).
    await smsc.drain()
    await page.click("#sms-tab-stats")
    chart = await page.wait_for_selector("#sms-chart svg[data-bars='30']")
    assert await chart.is_visible()
    await page.wait_for_selector("#sms-stats-templates tr td:text('notice')")
    await page.screenshot(path=str(SCREENSHOTS / "stats.png"), full_page=True)
    await page.click("#sms-tab-history")
    await page.wait_for_selector("#sms-history tr[data-message]")
    assert await page.locator("#sms-history tr[data-message]").count() == 3
    # Every control of every tab has a name a screen reader can announce.
    for tab in ("send", "batches", "templates", "stats", "history"):
        await page.click(f"#sms-tab-{tab}")
        await page.wait_for_selector(f"#sms-tab-{tab}[aria-selected='true']")
        assert await page.evaluate(UNNAMED_CONTROLS) == [], tab
