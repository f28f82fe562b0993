"""Notifications in real Chromium (issue #19): an admin books a room for two invitees in the admin UI and the
test SMTP server (aiosmtpd on 127.0.0.1, STARTTLS and AUTH) receives two invitations whose .ics imports with
icalendar and carries the join link; a platform admin schedules maintenance (refused under 48 h with the field
named), and the banner shows in a live meeting — also when the server pushes the announcement to it; a user
who forgot their password gets a one-time password by mail and signs in with it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from icalendar import Calendar
from playwright.async_api import Page

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, AdminApi, docs_screenshot_dir
from tests.conftest import RunningServer
from tests.notify.email_server import SmtpServer, smtp_server
from yunhui.settings import Settings, load_settings

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]
PUBLIC_URL = "https://meet.example.com"
SCREENSHOTS = docs_screenshot_dir("notifications")


@pytest_asyncio.fixture(loop_scope="module")
async def smtp(tmp_path: Path) -> AsyncIterator[SmtpServer]:
    async with smtp_server(tmp_path) as server:
        yield server


@pytest.fixture
def browser_settings(tmp_path: Path, smtp: SmtpServer) -> Settings:
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None, "public_url": PUBLIC_URL},
            "sfu": {"allow_loopback_candidates": True},
            "signaling": {"files_dir": str(tmp_path / "files")},
            "notify": {
                "sender": "Yunhui <noreply@meet.example.com>",
                "domain": "meet.example.com",
                "smtp": smtp.settings(),
            },
        }
    )


async def sign_in(new_context: Callable[..., Any], site: RunningServer, locale: str) -> Page:
    context = await new_context(locale=locale, timezone_id="UTC", viewport={"width": 1280, "height": 900})
    page: Page = await context.new_page()
    await page.goto(site.url + "/admin")
    await page.fill("#login-email", ADMIN_EMAIL)
    await page.fill("#login-password", ADMIN_PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector(".topbar")
    return page


async def _account_admin(site: RunningServer, account_id: int) -> None:
    """The account's own admin, who reads Chinese: the maintenance notice goes to them."""
    from rooms.models import User
    from rooms.users import create_user
    from web.keys import DATABASE

    db = site.app[DATABASE]
    user = await create_user(
        db,
        email="li@acme.example",
        password=ADMIN_PASSWORD,
        role="admin",
        account_id=account_id,
        now=datetime.now(UTC),
    )
    async with db.session() as session:
        row = await session.get(User, user.id)
        assert row is not None
        row.locale, row.display_name = "zh-CN", "李雷"
        await session.commit()


def _local(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


async def test_booking_invitations_and_the_maintenance_banner(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi, smtp: SmtpServer
) -> None:
    room = await admin.room(name="Board room", passcode="246810")
    await _account_admin(site, admin.account_id)
    page = await sign_in(new_context, site, "en-US")
    await page.click("#nav-bookings")
    await page.click("#booking-new")
    await page.fill("#booking-title", "Quarterly review")
    day = (datetime.now(UTC) + timedelta(days=7)).date()
    await page.fill("#booking-date", day.isoformat())
    await page.fill("#booking-start", "10:00")
    await page.fill("#booking-end", "11:00")
    await page.fill("#booking-zone", "Asia/Shanghai")
    await page.fill("#booking-invitees", "ann@example.com, wang@example.cn")
    await page.click("#booking-save")
    await smtp.handler.wait_for(2)
    assert sorted(r.recipients[0] for r in smtp.handler.received) == ["ann@example.com", "wang@example.cn"]
    join = f"{PUBLIC_URL}/m/{room['meeting_number']}?pwd=246810"
    for received in smtp.handler.received:
        [attachment] = [p for p in received.message.walk() if p.get_filename() == "invite.ics"]
        calendar = Calendar.from_ical(attachment.get_payload(decode=True))
        [event] = calendar.walk("VEVENT")
        assert calendar["method"] == "REQUEST"
        assert str(event["url"]) == join
        assert join in str(event["description"])
        assert str(event["summary"]) == "Quarterly review"

    # Maintenance: under 48 hours is refused with the start field named; 49 hours ahead is scheduled.
    await page.click("#nav-maintenance")
    now = datetime.now(UTC)
    await page.fill("#maintenance-starts", _local(now + timedelta(hours=47)))
    await page.fill("#maintenance-ends", _local(now + timedelta(hours=48)))
    await page.fill("#maintenance-title-zh", "数据库升级")
    await page.fill("#maintenance-title-en", "Database upgrade")
    await page.fill("#maintenance-text-zh", "会议服务将中断约 30 分钟。")
    await page.fill("#maintenance-text-en", "Meetings will be interrupted for about 30 minutes.")
    await page.click("#maintenance-submit")
    refusal = await page.wait_for_selector("#maintenance-starts-error")
    assert "48" in await refusal.inner_text()
    await page.fill("#maintenance-starts", _local(now + timedelta(hours=49)))
    await page.fill("#maintenance-ends", _local(now + timedelta(hours=50)))
    await page.click("#maintenance-submit")
    await page.wait_for_selector("#maintenance-detail #maintenance-notices")
    await page.wait_for_selector("#maintenance-list tr[data-window]")
    await page.reload()
    await page.wait_for_selector(".admin-banners .announcement")
    await page.click("#nav-maintenance")
    await page.click("#maintenance-list tr[data-window] button")
    await page.wait_for_selector("#maintenance-notices tr[data-notice]")
    await smtp.handler.wait_for(3)
    notice = smtp.handler.received[2].message
    assert notice["To"] == "li@acme.example" and notice["Subject"].strip().startswith("维护通知：数据库升级")
    await page.click("#maintenance-list tr[data-window] button")  # reload the proof: the e-mail has gone out
    await page.wait_for_selector(
        '#maintenance-notices tr[data-notice="maintenance"] td:nth-child(6):has-text("sent")'
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "admin-maintenance-en.png"), full_page=True)

    # A guest in the meeting sees the planned window, in their language.
    context = await new_context(locale="zh-CN")
    guest: Page = await context.new_page()
    await guest.goto(f"{site.url}/m/{room['meeting_number']}?pwd=246810")
    await guest.fill("#display-name", "访客")
    await guest.click("#join:enabled")
    await guest.wait_for_selector(".meeting")
    banner = await guest.wait_for_selector(".banners .announcement")
    assert "数据库升级" in await banner.inner_text()
    # Short notice with a reason: the T−60 announcement is due at once and is pushed into the live meeting.
    soon = datetime.now(UTC) + timedelta(minutes=30)
    emergency = await admin.call(
        "POST",
        "/maintenance",
        {
            "starts_at": soon.isoformat(),
            "ends_at": (soon + timedelta(minutes=20)).isoformat(),
            "title": {"zh-CN": "紧急安全更新", "en": "Urgent security update"},
            "text": {"zh-CN": "请保存工作。", "en": "Please save your work."},
            "emergency_reason": "a security fix that cannot wait",
        },
    )
    pushed = await guest.wait_for_selector(f'.banners .announcement[data-announcement="{emergency["id"]}"]')
    assert "紧急安全更新" in await pushed.inner_text()
    await guest.screenshot(path=str(SCREENSHOTS / "meeting-maintenance-banner-zh-CN.png"))


async def test_forgot_password_mails_a_one_time_password(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi, smtp: SmtpServer
) -> None:
    await _account_admin(site, admin.account_id)
    context = await new_context(locale="zh-CN")
    page: Page = await context.new_page()
    await page.goto(site.url + "/admin")
    await page.click("#login-forgot")
    await page.wait_for_selector(".forgot-password .error")  # no address typed yet
    await page.fill("#login-email", "li@acme.example")
    await page.click("#login-forgot")
    await page.wait_for_selector("#login-reset-sent")
    await smtp.handler.wait_for(1)
    [mail] = smtp.handler.received
    assert mail.message["Subject"].strip() == "您的云会一次性密码"
    text = mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    [otp] = re.findall(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}\b", text)
    await page.fill("#login-password", otp)
    await page.click("form button[type=submit]")
    await page.wait_for_selector("#password-new")  # signed in with it: a new password is asked for first
