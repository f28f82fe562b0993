"""The reports page in real Chromium draws the usage charts as SVG: concurrency over the day (one point per
quarter hour, peaking where the attendance does), participant-minutes per day, endpoints per site and device
classes; the CSV export stays. Screenshots in zh-CN and en go to docs/screenshots/reports/ for the manual."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page

from rooms.meetings import end_meeting, record_join, record_leave, start_meeting
from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, AdminApi, artifact, docs_screenshot_dir
from tests.conftest import RunningServer
from web.keys import DATABASE

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

MANUAL = docs_screenshot_dir("reports")
ZONE = ZoneInfo("Asia/Shanghai")
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile"


async def _seed(site: RunningServer, admin: AdminApi) -> None:
    """Today 09:00-10:30 Shanghai: three at once from 09:30 to 10:00 (two browsers and a room system)."""
    place = await admin.call("POST", "/sites", {"name": "一中会场", "account_id": admin.account_id})
    endpoints = [
        await admin.call("POST", "/endpoints", {"site_id": place["id"], "display_name": f"T{i}"})
        for i in range(2)
    ]
    await admin.call("POST", "/sites", {"name": "County B", "account_id": admin.account_id})
    room = await admin.room(name="周例会")
    db = site.app[DATABASE]
    nine = datetime.combine(datetime.now(ZONE).date(), time(9, 0), ZONE)
    meeting = await start_meeting(db, room_id=room["id"], now=nine)
    joins = [
        ("p1", "Ann", "browser", DESKTOP, None, 0, 90),
        ("p2", "Bo", "browser", PHONE, None, 15, 60),
        ("p3", "一中会场", "sip", "", endpoints[0]["id"], 30, 75),
    ]
    for pid, name, kind, agent, endpoint, joined, _ in joins:
        at = nine + timedelta(minutes=joined)
        await record_join(db, meeting_id=meeting.id, participant_id=pid, display_name=name, kind=kind, now=at,
                          user_agent=agent, endpoint_id=endpoint)  # fmt: skip
    for pid, *_, left in joins[1:]:
        await record_leave(db, meeting_id=meeting.id, participant_id=pid, reason="left",
                           now=nine + timedelta(minutes=left))  # fmt: skip
    await end_meeting(db, meeting.id, reason="host_ended", now=nine + timedelta(minutes=90))


async def _open_reports(new_context: Callable[..., Any], site: RunningServer, locale: str) -> Page:
    context = await new_context(
        locale=locale, timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 1000}
    )
    page: Page = await context.new_page()
    await page.goto(site.url + "/admin/reports")
    await page.fill("#login-email", ADMIN_EMAIL)
    await page.fill("#login-password", ADMIN_PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector("#report-run")
    return page


@pytest.mark.parametrize(("locale", "language"), [("zh-CN", "zh-CN"), ("en-US", "en")])
async def test_the_reports_page_draws_the_usage_charts(
    *, new_context: Callable[..., Any], site: RunningServer, admin: AdminApi, locale: str, language: str
) -> None:
    await _seed(site, admin)
    page = await _open_reports(new_context, site, locale)
    await page.click("#report-run")
    chart = page.locator("#chart-concurrency svg[role=img]")
    await chart.wait_for()
    assert await chart.get_attribute("data-points") == "96"  # a point per quarter hour
    values = [int(v) for v in (await chart.get_attribute("data-values") or "").split(",")]
    # Quarter hours 36..41 are 09:00..10:29: 1, 2, 3, 3, 2, 1 at once; nobody before or after.
    assert values[36:42] == [1, 2, 3, 3, 2, 1]
    assert values[:36] == [0] * 36 and values[42:] == [0] * 54
    path = await page.locator("#chart-concurrency path.series").get_attribute("d") or ""
    assert path.count("H") == 96  # one horizontal step per quarter hour
    assert "3" in await page.inner_text("#chart-concurrency-peak")
    assert await page.locator("#chart-minutes svg[role=img]").get_attribute("data-bars") == "31"
    assert await page.locator("#chart-sites svg[role=img]").get_attribute("data-bars") == "2"
    assert await page.locator("#chart-devices rect.bar").count() == 3  # desktop, mobile, room system
    assert await page.locator("#report-csv").is_enabled()
    figure = "设备类型" if language == "zh-CN" else "Device classes"
    assert figure in await page.inner_text("#chart-devices figcaption")

    MANUAL.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=artifact(f"reports-charts-{language}.png"), full_page=True)
    await page.screenshot(path=str(MANUAL / f"charts-{language}.png"), full_page=True)
