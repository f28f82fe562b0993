"""The admin UI in real Chromium against a real server: rooms, recurring bookings with conflicts and .ics,
endpoints with their one-time secret, live meetings and reports."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, UNNAMED_CONTROLS, AdminApi, artifact
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def sign_in(
    new_context: Callable[..., Any], site: RunningServer, locale: str, path: str = "/admin"
) -> Page:
    context = await new_context(locale=locale, viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page: Page = await context.new_page()
    await page.goto(site.url + path)
    await page.fill("#login-email", ADMIN_EMAIL)
    await page.fill("#login-password", ADMIN_PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector(".topbar")
    return page


def next_wednesday() -> date:
    today = date.today()
    return today + timedelta(days=7 - today.weekday() + 2)


@pytest.mark.parametrize(("locale", "language"), [("zh-CN", "zh-CN"), ("en-US", "en")])
async def test_room_recurring_booking_conflict_and_ics(
    *,
    new_context: Callable[..., Any],
    site: RunningServer,
    admin: AdminApi,
    locale: str,
    language: str,
    tmp_path: Path,
) -> None:
    page = await sign_in(new_context, site, locale)
    # A room, with its meeting number assigned by the server.
    await page.click("#room-new")
    await page.fill("#room-name", "董事会议室" if language == "zh-CN" else "Board room")
    await page.fill("#room-passcode", "135790")
    await page.fill("#room-capacity", "12")
    await page.fill("#room-max", "90")
    await page.click("#room-save")
    number = (await page.inner_text("#rooms-table .meeting-number")).strip()
    assert number.isdigit() and 9 <= len(number) <= 10
    rooms = await admin.call("GET", f"/rooms?account_id={admin.account_id}")
    assert [(r["capacity"], r["max_session_minutes"], r["passcode"]) for r in rooms] == [(12, 90, "135790")]

    # A weekly booking on Monday and Wednesday, six times, starting next Wednesday.
    wednesday = next_wednesday()
    await page.click("#nav-bookings")
    await page.click("#booking-new")
    await page.fill("#booking-title", "周例会" if language == "zh-CN" else "Weekly sync")
    await page.fill("#booking-date", wednesday.isoformat())
    await page.fill("#booking-start", "10:00")
    await page.fill("#booking-end", "11:00")
    await page.fill("#booking-zone", "Asia/Shanghai")
    await page.select_option("#booking-repeat", "weekly")
    await page.check('[data-day="MO"]')
    await page.fill("#booking-count", "6")
    await page.click("#booking-save")
    invitation = await page.input_value("#invitation-text")
    assert f"/m/{number}?pwd=135790" in invitation
    assert f"{number}.135790@127.0.0.1" in invitation  # the SIP dial string for room terminals
    [booking] = await admin.call("GET", "/bookings")
    assert booking["rrule"] == "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6"
    assert booking["time_zone"] == "Asia/Shanghai"

    # A second booking overlapping an occurrence (the Monday after) shows the conflict inline.
    await page.click("#booking-new")
    await page.fill("#booking-title", "Clash")
    await page.fill("#booking-date", (wednesday + timedelta(days=5)).isoformat())
    await page.fill("#booking-start", "10:30")
    await page.fill("#booking-end", "11:30")
    await page.fill("#booking-zone", "Asia/Shanghai")
    await page.click("#booking-save")
    conflict = await page.inner_text("#booking-conflict")
    assert booking["title"] in conflict and f"#{booking['id']}" in conflict
    assert len(await admin.call("GET", "/bookings")) == 1

    # The week calendar shows the occurrences of next week (Monday is before the first Wednesday: only one).
    await page.click('button[aria-label="Next week"], button[aria-label="下一周"]')
    await page.wait_for_selector(f'#week-calendar .event[data-booking="{booking["id"]}"]')
    assert await page.locator("#week-calendar .event").count() == 1
    assert await page.evaluate(UNNAMED_CONTROLS) == []
    await page.screenshot(path=artifact(f"admin-bookings-{language}.png"), full_page=True)

    # The list offers the .ics invitation for download.
    await page.click("#view-list")
    async with page.expect_download() as download_info:
        await page.click(f'#bookings-table tr[data-booking="{booking["id"]}"] .ics')
    download = await download_info.value
    assert download.suggested_filename == f"booking-{booking['id']}.ics"
    target = tmp_path / "invite.ics"
    await download.save_as(target)
    ics = target.read_text("utf-8")
    [rrule] = [line for line in ics.splitlines() if line.startswith("RRULE:")]
    assert "BEGIN:VCALENDAR" in ics
    assert set(rrule.removeprefix("RRULE:").split(";")) == {"FREQ=WEEKLY", "BYDAY=MO,WE", "COUNT=6"}


async def test_endpoint_secret_is_shown_once(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    page = await sign_in(new_context, site, "en-US", "/admin/sites")
    await page.fill("#site-name", "Shanghai HQ")
    await page.fill("#site-address", "1 Century Avenue")
    await page.click('form[aria-label="Add site"] button[type=submit]')
    await page.wait_for_selector(".site >> text=Shanghai HQ")
    await page.fill(".site input", "Board room terminal")
    await page.click(".site form button[type=submit]")
    secret = (await page.inner_text("#sip-secret")).strip()
    assert len(secret) >= 16
    await page.click("#endpoint-secret >> text=I have saved it")
    await page.wait_for_selector(".site li >> text=Board room terminal")
    assert secret not in await page.inner_text("body")
    await page.reload()
    await page.wait_for_selector(".site li >> text=Board room terminal")
    assert secret not in await page.content()


async def test_live_meeting_shows_participants_and_can_be_ended_then_reported(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi, tmp_path: Path
) -> None:
    room = await admin.room(name="Live room", passcode="246800")
    guest_context = await new_context()
    guest = await guest_context.new_page()
    await guest.goto(f"{site.url}/m/{room['meeting_number']}?pwd=246800&simulcast=0")
    await guest.fill("#display-name", "Zhang")
    await guest.click("#join:enabled")
    await guest.wait_for_selector(".meeting")

    page = await sign_in(new_context, site, "en-US", "/admin/live")
    card = page.locator(".card", has_text="Live room")
    await card.locator("tr", has_text="Zhang").wait_for()
    row = await card.locator("tr", has_text="Zhang").inner_text()
    assert "Browser" in row and "Desktop" in row
    # Holding the microphone goes through the meeting's worker (this process here): the row shows the hold.
    await card.get_by_role("button", name="Mute Zhang").click()
    await card.locator("tr", has_text="Zhang").get_by_text("Microphone held").wait_for()
    page.on("dialog", lambda dialog: dialog.accept())
    await card.get_by_role("button", name="End the meeting in Live room").click()
    await guest.wait_for_selector('#ended-reason[data-reason="host_ended"]')
    await page.wait_for_selector("#live-none", timeout=15000)

    await page.click("#nav-reports")
    await page.click("#report-run")
    await page.wait_for_selector("#report-table tbody tr >> text=Live room")
    assert int(await page.inner_text("#stat-meetings")) == 1
    assert int(await page.inner_text("#stat-peak")) >= 1
    async with page.expect_download() as download_info:
        await page.click("#report-csv")
    download = await download_info.value
    target = tmp_path / "report.csv"
    await download.save_as(target)
    rows = list(csv.reader(io.StringIO(target.read_text("utf-8-sig"))))
    assert rows[0][1] == "Room" and rows[1][1] == "Live room"
    assert rows[1][4] == "host_ended"


async def test_edit_and_delete_a_room_and_cancel_a_booking(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(name="Old name", capacity=5)
    await admin.call(
        "POST",
        "/bookings",
        {
            "room_id": room["id"],
            "title": "Standup",
            "start": f"{next_wednesday().isoformat()}T09:00:00",
            "end": f"{next_wednesday().isoformat()}T09:15:00",
            "time_zone": "UTC",
        },
    )
    page = await sign_in(new_context, site, "en-US")
    page.on("dialog", lambda dialog: dialog.accept())
    await page.click('button[aria-label="Edit Old name"]')
    await page.fill("#room-name", "New name")
    await page.fill("#room-capacity", "25")
    await page.click("#room-save")
    await page.wait_for_selector("#rooms-table >> text=New name")
    [saved] = await admin.call("GET", f"/rooms?account_id={admin.account_id}")
    assert (saved["name"], saved["capacity"], saved["meeting_number"]) == (
        "New name",
        25,
        room["meeting_number"],
    )

    await page.click("#nav-bookings")
    await page.click("#view-list")
    await page.click("#bookings-table >> text=Cancel booking")
    await page.wait_for_selector("#bookings-table >> text=No bookings.")

    await page.click("#nav-rooms")
    await page.click('button[aria-label="Delete New name"]')
    await page.wait_for_selector("#rooms-table >> text=No rooms yet.")
    assert await admin.call("GET", f"/rooms?account_id={admin.account_id}") == []


async def test_first_admin_replaces_the_one_time_password(
    *, new_context: Callable[..., Any], site: RunningServer
) -> None:
    from datetime import UTC, datetime

    from rooms import users
    from web.keys import DATABASE

    await users.create_user(
        site.app[DATABASE],
        email="first@example.org",
        password="one-time-pw",
        role="admin",
        account_id=None,
        now=datetime.now(UTC),
        must_change_password=True,
    )
    context = await new_context(locale="en-US")
    page: Page = await context.new_page()
    await page.goto(site.url + "/admin")
    await page.fill("#login-email", "first@example.org")
    await page.fill("#login-password", "one-time-pw")
    await page.click("form button[type=submit]")
    await page.wait_for_selector("#password-new")
    await page.fill("#password-current", "not-it")
    await page.fill("#password-new", "my-own-password")
    await page.click("form button[type=submit]")
    assert "wrong" in await page.inner_text("[role=alert]")
    await page.fill("#password-current", "one-time-pw")
    await page.click("form button[type=submit]")
    await page.wait_for_selector(".topbar")
