"""Recording through the UI in real Chromium against the whole app: the host starts recording from the
toolbar, both participants see the indicator (the guest also the consent notice), the host stops it, the
composite renders with visible progress, and the recording plays in the admin UI. Screenshots in zh-CN and en
go to docs/screenshots/recording/ (the manual's "Using recordings" shows them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import Page

from tests.browser.conftest import UNNAMED_CONTROLS, AdminApi, docs_screenshot_dir
from tests.browser.test_browser_admin import sign_in
from tests.browser.test_browser_meeting import inbound, join, participant_id, remote_video_width
from tests.conftest import RunningServer, require_tool
from yunhui.recordings import RECORDINGS

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SHOTS = docs_screenshot_dir("recording")
# Media recorded before the stop: frames the host receives from the guest (about 2 s at 30 fps).
RECORDED_FRAMES = 60


def shot(name: str) -> str:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return str(SHOTS / name)


async def frames_from(page: Page, pid: str) -> int:
    stats = await inbound(page, pid, "video", "camera")
    return stats["frames"] if stats else 0


async def wait_recording(env: Any, meeting_id: int, states: set[str], seen: list[int]) -> dict[str, Any]:
    """Poll the REST API until the meeting's recording is in one of `states`; `seen` collects its progress."""
    async with asyncio.timeout(120):
        while True:
            rows = await env.call("GET", f"/meetings/{meeting_id}/recordings")
            if rows:
                seen.append(rows[0]["progress"])
                if rows[0]["state"] in states:
                    return dict(rows[0])
            await asyncio.sleep(0.1)  # a bounded poll of another process's work (ffmpeg), not a timer


async def play(page: Page) -> float:
    """Open the player of the first recording and return its currentTime once it has advanced past 1 s."""
    await page.click("tr[data-state=ready] button[data-action=play]")
    await page.wait_for_selector("#recording-video")
    await page.wait_for_function(
        "document.querySelector('#recording-video').currentTime > 1", timeout=30000, polling=200
    )
    current: float = await page.eval_on_selector("#recording-video", "v => v.currentTime")
    return current


async def test_host_records_from_the_toolbar_and_the_recording_plays_in_the_admin_ui(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    require_tool("ffmpeg")
    room = await admin.room(name="董事会议室", passcode="246810")
    host = await join(
        new_context, site, room, "Alice", host_token=admin.token, locale="zh-CN", simulcast=False
    )
    guest = await join(new_context, site, room, "Bob", simulcast=False)
    host_id, guest_id = await participant_id(host), await participant_id(guest)
    for page, other in ((host, guest_id), (guest, host_id)):
        assert await remote_video_width(page, other) > 0
    assert await guest.query_selector("#toggle-recording") is None  # only moderators start recording

    await host.click("#toggle-recording")
    for page in (host, guest):
        await page.wait_for_selector("#recording-indicator")
    await guest.wait_for_selector("#recording-notice")  # the consent notice
    assert await host.get_attribute("#toggle-recording", "aria-pressed") == "true"
    meeting_id = int(await host.evaluate("window.yunhui.client.meeting.meeting_id"))
    start = await frames_from(host, guest_id)
    for _ in range(300):  # media flowing while recorded, bounded: 60 s
        if await frames_from(host, guest_id) >= start + RECORDED_FRAMES:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the guest's video stopped while recording")
    await host.screenshot(path=shot("zh-CN-01-meeting-recording.png"))
    await guest.screenshot(path=shot("en-02-meeting-consent-notice.png"))
    assert await host.evaluate(UNNAMED_CONTROLS) == []

    # The render waits for the slot while the admin page shows the rendering row; then it runs.
    recordings = site.app[RECORDINGS]
    slot = recordings._render_slot
    await slot.acquire()
    try:
        await host.click("#toggle-recording")
        for page in (host, guest):
            await page.wait_for_selector("#recording-indicator", state="detached")
        # The host's link is the watch page, which needs no sign-in (the host need not be an admin).
        await host.wait_for_selector("#recording-link a[href^='/recordings/watch?token=']")
        watch_link = await host.get_attribute("#recording-link a", "href")
        assert watch_link is not None
        seen: list[int] = []
        await wait_recording(admin, meeting_id, {"rendering"}, seen)
        watcher_context = await new_context(locale="en-US", viewport={"width": 1280, "height": 800})
        watcher = await watcher_context.new_page()
        await watcher.goto(site.url + watch_link)
        await watcher.wait_for_selector("#watch-progress")  # rendering: the page follows it
        link = f"/admin/recordings?meeting={meeting_id}"
        admin_en = await sign_in(new_context, site, "en-US", path=link)
        await admin_en.wait_for_selector("tr[data-state=rendering] progress")
        await admin_en.wait_for_selector("#recordings-meeting")  # the host's link names the meeting
        await admin_en.screenshot(path=shot("en-03-admin-rendering.png"))
    finally:
        slot.release()
    # Caught mid-render when the list's refresh comes before the end (the API samples below always are).
    await admin_en.wait_for_function(
        """() => document.querySelector('tr[data-state=ready]')
          || document.querySelector('tr[data-state=rendering] progress')?.value > 0""",
        timeout=120000,
        polling=100,
    )
    if await admin_en.query_selector("tr[data-state=rendering]") is not None:
        await admin_en.screenshot(path=shot("en-03-admin-rendering.png"))
    row = await wait_recording(admin, meeting_id, {"ready", "failed"}, seen)
    assert row["state"] == "ready", row
    # The progress only grows and ends at 100. Whether a poll catches a value in between depends on how fast
    # this machine renders (a quiet CI machine finished between two polls): the engine's own test
    # (tests/recording/test_composite_engine.py) checks the steps; the admin page showed the bar above.
    assert seen == sorted(seen) and seen[-1] == 100, seen
    assert sorted(f["kind"] for f in row["files"]) == [
        "audio",
        "audio",
        "composite",
        "timeline",
        "video",
        "video",
    ]
    # The watch page switched to the video by itself once the composite was ready, and it plays.
    await watcher.wait_for_selector("#watch-video", timeout=30000)
    await watcher.eval_on_selector("#watch-video", "v => { v.muted = true; return v.play(); }")
    await watcher.wait_for_function(
        "document.querySelector('#watch-video').currentTime > 1", timeout=30000, polling=200
    )
    assert await watcher.evaluate(UNNAMED_CONTROLS) == []
    await admin_en.wait_for_selector("tr[data-state=ready] button[data-action=play]", timeout=20000)
    assert await play(admin_en) > 1
    await admin_en.screenshot(path=shot("en-04-admin-playing.png"))
    assert await admin_en.evaluate(UNNAMED_CONTROLS) == []

    admin_zh = await sign_in(new_context, site, "zh-CN", path="/admin/recordings")
    await admin_zh.wait_for_selector("tr[data-state=ready]")
    await admin_zh.screenshot(path=shot("zh-CN-05-admin-recordings.png"))
    assert await play(admin_zh) > 1
    await admin_zh.screenshot(path=shot("zh-CN-06-admin-playing.png"))
