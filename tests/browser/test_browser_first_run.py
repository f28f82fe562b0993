"""First use, as a new admin and a new guest meet it (issue #22), in real Chromium against a real server.

The walk uses only what is on screen (roles and labels, named by the catalogues): the one-time password, the
password change, the guided start (account, room, invitation), then two guests who open the copied link and
meet in the room. Screenshots of every step go to docs/screenshots/first-run/ (the manual shows them).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from PIL import Image
from playwright.async_api import Locator, Page, expect

from rooms import users
from tests.browser.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    UNNAMED_CONTROLS,
    AdminApi,
    docs_screenshot_dir,
)
from tests.conftest import RunningServer
from web.i18n import catalogue
from web.keys import DATABASE

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SHOTS = docs_screenshot_dir("first-run")
ONE_TIME = "Zk3-one-time-9"
NEW_PASSWORD = "my own long password"
PASSCODE = "246810"
# A code point no installed font has a glyph for: what an emoji looks like without a colour emoji font.
MISSING_GLYPH = "\U0010fffd"


def shot(name: str) -> str:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return str(SHOTS / name)


def tr(language: str, key: str, **values: object) -> str:
    """The text the page shows for ``key`` (the catalogue, as the browser's t() fills it in)."""
    text = catalogue(language)[key]
    for name, value in values.items():
        text = text.replace(f"{{{name}}}", str(value))
    return text


async def assert_top_bar_on_one_row(page: Page) -> None:
    """The admin top bar is one row: every item's box starts on the bar's single line."""
    boxes = await page.evaluate(
        """() => {
          const bar = document.querySelector('header.topbar');
          const items = [...bar.querySelectorAll(':scope > *, .topbar-tools > *, .account-picker > *')]
            .filter((e) => e.getClientRects().length);
          const box = (e) => { const r = e.getBoundingClientRect(); return [r.top, r.bottom, r.right]; };
          return { bar: box(bar), width: document.documentElement.clientWidth, items: items.map(box) };
        }"""
    )
    top, bottom, _ = boxes["bar"]
    tallest = max(b - t for t, b, _ in boxes["items"])
    assert bottom - top < 2 * tallest, boxes  # one row: a second row would at least double the height
    for item_top, item_bottom, right in boxes["items"]:
        assert top <= item_top and item_bottom <= bottom, boxes  # nothing sticks out (wrapped)
        assert right <= boxes["width"], boxes  # nothing pushed off the right edge


def colour_pixels(png: bytes) -> int:
    """Pixels with a clear hue (not grey, white or black): an emoji or a reaction icon has many."""
    data = Image.open(io.BytesIO(png)).convert("RGB").tobytes()
    pixels = zip(data[0::3], data[1::3], data[2::3], strict=True)
    return sum(1 for rgb in pixels if max(rgb) - min(rgb) > 60)


async def glyph_rendering(page: Page, text: str, like: Locator) -> bytes:
    """A screenshot of ``text`` drawn in the font and size of ``like``, on the page itself."""
    handle = await like.element_handle()
    assert handle is not None
    await page.evaluate(
        """([like, text]) => {
          const probe = document.createElement('span');
          probe.id = 'glyph-probe';
          const style = getComputedStyle(like);
          Object.assign(probe.style, { position: 'fixed', left: '8px', top: '8px', zIndex: 99, padding: '4px',
            font: style.font, fontSize: '26px', color: style.color, background: '#232c3e' });
          probe.textContent = text;
          document.body.append(probe);
        }""",
        [handle, text],
    )
    png = await page.locator("#glyph-probe").screenshot()
    await page.evaluate("document.getElementById('glyph-probe').remove()")
    return png


async def sign_in_first_time(page: Page, site: RunningServer, language: str) -> None:
    await page.goto(site.url + "/admin")
    await page.get_by_label(tr(language, "admin.login.email")).fill("first@example.org")
    await page.get_by_label(tr(language, "admin.login.password")).fill(ONE_TIME)
    await page.screenshot(path=shot(f"{language}-01-sign-in.png"))
    await page.get_by_role("button", name=tr(language, "admin.login.submit")).click()
    await page.get_by_label(tr(language, "admin.password.current")).fill(ONE_TIME)
    await page.get_by_label(tr(language, "admin.password.new")).fill(NEW_PASSWORD)
    await page.screenshot(path=shot(f"{language}-02-new-password.png"))
    await page.get_by_role("button", name=tr(language, "admin.password.submit")).click()


async def guest_joins(page: Page, link: str, language: str, name: str) -> None:
    await page.goto(link)
    passcode = page.get_by_label(tr(language, "prejoin.passcode"))
    await expect(passcode).to_have_value(PASSCODE)  # from the link: nothing to type
    await page.get_by_label(tr(language, "prejoin.display_name")).fill(name)
    join = page.get_by_role("button", name=tr(language, "prejoin.join"))
    await expect(join).to_be_enabled()
    await join.click()
    await expect(page.get_by_role("button", name=tr(language, "controls.leave"))).to_be_visible()


@pytest.mark.parametrize("language", ["zh-CN", "en"])
async def test_first_run_from_the_one_time_password_to_two_guests_in_the_room(
    *, new_context: Callable[..., Any], site: RunningServer, language: str
) -> None:
    await users.create_user(
        site.app[DATABASE],
        email="first@example.org",
        password=ONE_TIME,
        role="admin",
        account_id=None,
        now=datetime.now(UTC),
        must_change_password=True,
    )
    locale = "zh-CN" if language == "zh-CN" else "en-US"
    context = await new_context(locale=locale, viewport={"width": 1280, "height": 800})
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page: Page = await context.new_page()
    await sign_in_first_time(page, site, language)

    # The guided start greets a platform admin who has no account yet.
    await expect(page.get_by_role("heading", name=tr(language, "firstrun.title"))).to_be_visible()
    await assert_top_bar_on_one_row(page)
    await page.screenshot(path=shot(f"{language}-03-guided-start.png"))
    account_name = "华东分公司" if language == "zh-CN" else "Acme East"
    await page.get_by_label(tr(language, "firstrun.account.name")).fill(account_name)
    await page.get_by_role("button", name=tr(language, "firstrun.account.create")).click()

    room_name = "董事会议室" if language == "zh-CN" else "Board room"
    await page.get_by_label(tr(language, "firstrun.room.name")).fill(room_name)
    await page.get_by_label(tr(language, "firstrun.room.passcode")).fill(PASSCODE)
    await page.screenshot(path=shot(f"{language}-04-room.png"))
    await page.get_by_role("button", name=tr(language, "firstrun.room.create")).click()

    # The invitation step: the link carries the passcode unless the organiser takes it out.
    share = page.get_by_role("region", name=tr(language, "share.title_for", name=room_name))
    link_field = share.get_by_label(tr(language, "share.link"))
    await expect(link_field).to_have_value(re.compile(rf"/m/\d{{9,10}}\?pwd={PASSCODE}$"))
    embed = share.get_by_label(tr(language, "share.embed_passcode"))
    await embed.uncheck()
    await expect(link_field).to_have_value(re.compile(r"/m/\d{9,10}$"))
    invitation_box = share.get_by_role("textbox", name=tr(language, "admin.invite.title"))
    assert PASSCODE not in await invitation_box.input_value()
    await embed.check()
    await share.get_by_role("button", name=tr(language, "admin.invite.copy")).click()
    invitation = await page.evaluate("navigator.clipboard.readText()")
    await share.get_by_role("button", name=tr(language, "share.copy_link")).click()
    await expect(share.get_by_role("button", name=tr(language, "share.copy_link"))).to_have_text(
        tr(language, "share.copied")
    )
    link = await page.evaluate("navigator.clipboard.readText()")
    number = re.search(r"/m/(\d{9,10})\?pwd=", link)
    assert number is not None and link.startswith(site.url), link
    assert link in invitation and f"{number[1]}.{PASSCODE}@127.0.0.1" in invitation
    assert await page.evaluate(UNNAMED_CONTROLS) == []
    await page.screenshot(path=shot(f"{language}-05-invite.png"))

    await page.get_by_role("button", name=tr(language, "firstrun.done")).click()
    rooms = page.get_by_role("table")
    await expect(rooms.get_by_role("cell", name=room_name, exact=True)).to_be_visible()
    await expect(page.get_by_label(tr(language, "admin.account"))).to_have_value(re.compile(r"\d+"))
    await assert_top_bar_on_one_row(page)
    await page.screenshot(path=shot(f"{language}-06-rooms-1280x800.png"))
    await page.set_viewport_size({"width": 1024, "height": 768})
    await assert_top_bar_on_one_row(page)
    # Every section is in reach at 1024x768: the navigation needs no scrolling.
    navigation = page.get_by_role("navigation", name=tr(language, "admin.nav"))
    assert await navigation.evaluate("(nav) => nav.scrollHeight <= nav.clientHeight")
    await page.screenshot(path=shot(f"{language}-07-rooms-1024x768.png"))

    # Two guests open the copied link in their own browsers and meet in the room.
    guests = []
    for name in ("李雷", "韩梅梅") if language == "zh-CN" else ("Alice", "Bob"):
        guest_context = await new_context(locale=locale, viewport={"width": 1280, "height": 800})
        guest: Page = await guest_context.new_page()
        await guest_joins(guest, link, language, name)
        guests.append(guest)
    first, second = guests
    for guest in guests:
        await expect(
            guest.get_by_role("button", name=tr(language, "controls.participants", count=2))
        ).to_be_visible()
        # Media flows: each sees its own camera and the other's (two videos with decoded frames).
        await guest.wait_for_function(
            "[...document.querySelectorAll('video')].filter((v) => v.videoWidth > 0).length >= 2",
            timeout=20_000,
        )

    # Reactions are drawn, not typed: the picker's buttons and the overlay have colour, never a box.
    await first.get_by_role("button", name=tr(language, "controls.reactions")).click()
    thumbs = first.get_by_role("button", name=tr(language, "reaction.thumbs_up"))
    await expect(thumbs).to_be_visible()
    await first.screenshot(path=shot(f"{language}-08-reactions.png"))
    button_png = await thumbs.screenshot()
    tofu_png = await glyph_rendering(first, MISSING_GLYPH, thumbs)
    assert colour_pixels(tofu_png) == 0  # the yardstick: a missing glyph has no colour at all
    assert button_png != tofu_png and colour_pixels(button_png) > 40
    await thumbs.click()
    overlay = second.locator(".floating-reaction")
    await expect(overlay.first).to_be_visible()
    # The overlay draws the same SVG (it rises and fades, so it is checked by what it holds, not pixels).
    await expect(overlay.first.locator("svg.reaction-icon path")).not_to_have_count(0)

    # Chat emoji come from the font the test machine installs (fonts-noto-color-emoji): colour, not tofu.
    await first.get_by_role("button", name=tr(language, "controls.chat")).click()
    await first.get_by_label(tr(language, "chat.message")).fill("👍🎉")
    await first.get_by_role("button", name=tr(language, "chat.send"), exact=True).click()
    await second.get_by_role("button", name=tr(language, "controls.chat_unread", count=1)).click()
    emoji = second.get_by_text("👍🎉")
    await expect(emoji).to_be_visible()
    assert colour_pixels(await emoji.screenshot()) > 40
    await second.screenshot(path=shot(f"{language}-09-meeting-chat.png"))


async def test_prejoin_asks_for_the_passcode_before_the_first_attempt(
    *, new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    locked = await admin.room(name="Locked", passcode="135790")
    open_room = await admin.room(name="Open")
    async with aiohttp.ClientSession() as http:

        async def page_data(number: str) -> str:
            async with http.get(f"{site.url}/m/{number}") as response:
                assert response.status == 200
                found = re.search(r'data-passcode="(\w+)"', await response.text())
            assert found is not None
            return found[1]

        assert await page_data(locked["meeting_number"]) == "required"
        assert await page_data(open_room["meeting_number"]) == "none"
        # A number that does not exist looks like one with a passcode: the page tells nothing more.
        assert await page_data("999999999") == "required"

    context = await new_context(locale="en-US")
    page: Page = await context.new_page()
    await page.goto(f"{site.url}/m/{locked['meeting_number']}")
    await expect(page.get_by_label("Passcode")).to_be_visible()  # before any attempt
    await expect(page.get_by_label("Passcode")).to_have_value("")
    await page.goto(f"{site.url}/m/{open_room['meeting_number']}")
    await expect(page.get_by_role("button", name="Join meeting")).to_be_enabled()
    await expect(page.get_by_label("Passcode")).to_have_count(0)


def next_wednesday() -> date:
    today = date.today()
    return today + timedelta(days=7 - today.weekday() + 2)


async def test_booking_times_carry_their_zone_and_the_zone_switch_works(
    *, new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(name="Shanghai office", passcode="97531864")
    day = next_wednesday()
    await admin.call(
        "POST",
        "/bookings",
        {
            "room_id": room["id"],
            "title": "Quarterly review",
            "start": f"{day.isoformat()}T10:00:00",
            "end": f"{day.isoformat()}T11:00:00",
            "time_zone": "Asia/Shanghai",
        },
    )
    shanghai_start = datetime.combine(day, datetime.min.time().replace(hour=10), ZoneInfo("Asia/Shanghai"))
    berlin = shanghai_start.astimezone(ZoneInfo("Europe/Berlin"))
    berlin_offset = berlin.strftime("%z")  # e.g. +0100 -> "GMT+1"
    gmt = f"GMT{int(berlin_offset[:3]):+d}" + (f":{berlin_offset[3:]}" if berlin_offset[3:] != "00" else "")

    context = await new_context(locale="en-US", timezone_id="Europe/Berlin")
    page: Page = await context.new_page()
    await page.goto(site.url + "/admin/bookings")
    await page.get_by_label(tr("en", "admin.login.email")).fill(ADMIN_EMAIL)
    await page.get_by_label(tr("en", "admin.login.password")).fill(ADMIN_PASSWORD)
    await page.get_by_role("button", name=tr("en", "admin.login.submit")).click()
    await page.get_by_role("button", name="Next week").click()

    # The wall-clock helpers behind the views, at the edges: a week that starts on another day in
    # Shanghai than in UTC, and the hour Berlin's clocks skip.
    walls = await page.evaluate(
        """() => import('/static/admin/zones.js').then((z) => [
          z.wallWeekStart(new Date('2026-12-06T17:00:00Z'), 'Asia/Shanghai').toISOString(),
          z.wallWeekStart(new Date('2026-12-06T17:00:00Z'), 'UTC').toISOString(),
          z.toWall(new Date('2027-03-28T01:30:00Z'), 'Europe/Berlin').toISOString(),
          z.zoneLabel('Asia/Kolkata', new Date('2026-12-06T00:00:00Z')),
        ])"""
    )
    assert walls == [
        "2026-12-07T00:00:00.000Z",  # 01:00 on Monday in Shanghai
        "2026-11-30T00:00:00.000Z",  # still Sunday in UTC
        "2027-03-28T03:30:00.000Z",  # 02:00-03:00 does not exist that night
        "Asia/Kolkata (GMT+5:30)",
    ]
    event = page.get_by_role("button", name=re.compile(r"^Quarterly review"))
    await expect(event).to_contain_text(berlin.strftime("%H:%M"))
    await expect(event).to_contain_text("10:00 Asia/Shanghai")  # the booking's own clock, said so
    await expect(page.get_by_text(f"Times are shown in Europe/Berlin ({gmt}).")).to_be_visible()
    await page.screenshot(path=shot("en-10-bookings-my-zone.png"))

    # The booking's invitation names its own zone; the organiser may keep the passcode out of the link.
    await event.click()
    invitation = page.get_by_role("dialog", name=tr("en", "admin.invite.title"))
    text = invitation.get_by_role("textbox", name=tr("en", "admin.invite.title"))
    await expect(text).to_contain_text("Asia/Shanghai")
    link = invitation.get_by_label(tr("en", "share.link"))
    await expect(link).to_have_value(re.compile(r"\?pwd=97531864$"))
    await invitation.get_by_label(tr("en", "share.embed_passcode")).uncheck()
    await expect(link).to_have_value(re.compile(rf"/m/{room['meeting_number']}$"))
    assert "97531864" not in await text.input_value()
    await invitation.get_by_role("button", name=tr("en", "ui.close")).click()

    await page.get_by_label("Times in").select_option(label="Booking's zone: Asia/Shanghai (GMT+8)")
    await expect(page.get_by_text("Times are shown in Asia/Shanghai (GMT+8).")).to_be_visible()
    await expect(event).to_contain_text("10:00")
    await expect(event).not_to_contain_text("Asia/Shanghai")
    await page.screenshot(path=shot("en-11-bookings-booking-zone.png"))

    await page.get_by_role("button", name="List").click()
    row = page.get_by_role("row", name=re.compile("Quarterly review"))
    await expect(row).to_contain_text("10:00")
    await expect(row).to_contain_text("GMT+8")
    await page.get_by_label("Times in").select_option(label=f"My time zone: Europe/Berlin ({gmt})")
    await expect(row).to_contain_text(f"{berlin.strftime('%I:%M %p').lstrip('0')} {gmt}")


async def test_an_account_admin_without_rooms_starts_at_the_room_step(
    *, new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    await users.create_user(
        site.app[DATABASE],
        email="office@acme.example",
        password=NEW_PASSWORD,
        role="admin",
        account_id=admin.account_id,
        now=datetime.now(UTC),
    )
    page: Page = await (await new_context(locale="en-US")).new_page()
    await page.goto(site.url + "/admin")
    await page.get_by_label(tr("en", "admin.login.email")).fill("office@acme.example")
    await page.get_by_label(tr("en", "admin.login.password")).fill(NEW_PASSWORD)
    await page.get_by_role("button", name=tr("en", "admin.login.submit")).click()
    await expect(page.get_by_role("heading", name=tr("en", "firstrun.room.title"))).to_be_visible()
    # Bound to one account: no account step, no account picker.
    await expect(page.get_by_label(tr("en", "firstrun.account.name"))).to_have_count(0)
    await expect(page.get_by_label(tr("en", "admin.account"), exact=True)).to_have_count(0)
    await page.get_by_label(tr("en", "firstrun.room.name")).fill("Front office")
    await page.get_by_role("button", name=tr("en", "firstrun.room.create")).click()
    await page.get_by_role("button", name=tr("en", "firstrun.done")).click()
    await expect(page.get_by_role("cell", name="Front office", exact=True)).to_be_visible()
    [room] = await admin.call("GET", f"/rooms?account_id={admin.account_id}")
    assert room["name"] == "Front office" and room["passcode"] is None
