"""The live viewer page in real Chromium against the whole app: a channel fed by the real engine (its file
source, a looping normalised H.264 + AAC item played in real time) plays through hls.js with a viewer session
(research/recording.md §5 item 7, browser half): currentTime advances ≥ 10 s, frames are decoded, no fatal
hls.js error, and the PROGRAM-DATE-TIME latency is ≤ 10 s; and the same with a meeting source, a real
Chromium publisher's fake camera in H.264 (copied) attached when the meeting starts. The page's states
(starting soon, replay) in both languages, and screenshots of the page for the manual."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from recording.live.sources import PlaylistSource
from tests.browser.conftest import UNNAMED_CONTROLS, AdminApi, docs_screenshot
from tests.browser.test_browser_admin import sign_in
from tests.conftest import RunningServer
from tests.live.live_engine_media import make_item, wait_for
from yunhui.live import LIVE_ENGINES

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]

PLAYBACK_S = 10.0
MAX_LATENCY_S = 10.0


async def _channel(admin: AdminApi, **fields: Any) -> dict[str, Any]:
    body = {"title": "新品发布会 Launch", "language": "zh-CN", "source_kind": "playlist",
            "account_id": admin.account_id, "show_viewer_count": True, **fields}  # fmt: skip
    channel: dict[str, Any] = await admin.call("POST", "/live", body)
    return channel


async def _playback(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate(
        """() => {
          const v = document.querySelector('#live-video');
          const live = window.yunhuiLive;
          const date = live && live.programDate();
          return {time: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames,
                  latency: date ? (Date.now() - date.getTime()) / 1000 : null,
                  fatal: window.__liveFatal || [], paused: v.paused, ready: v.readyState};
        }"""
    )
    return state


async def test_the_viewer_page_plays_a_channel_fed_by_the_engine(
    site: RunningServer, admin: AdminApi, new_context: Any, tmp_path: Path
) -> None:
    channel = await _channel(admin)
    cid = channel["id"]
    context = await new_context(locale="en-US")
    page = await context.new_page()
    await page.goto(f"{site.url}/live/{cid}")
    await page.wait_for_selector("#live-status.starting")
    assert "Starting soon" in await page.inner_text("#live-status")

    item = make_item(tmp_path / "item.mp4", 4.0, (90, 90, 200), size=(640, 360))
    live = await admin.call("POST", f"/live/{cid}/go-live")
    assert live["state"] == "live"
    engine = site.app[LIVE_ENGINES].engine(cid)
    assert engine is not None
    engine.set_source(PlaylistSource((item,), loop=True))
    await page.evaluate(
        """() => { window.__liveFatal = [];
          window.yunhuiLive.addEventListener('error',
            (e) => e.detail.fatal && window.__liveFatal.push(e.detail)); }"""
    )
    # The page waits for the channel by itself (no reload): within its poll interval plus three segments.
    await page.wait_for_function(
        "() => document.querySelector('#live-video').currentTime > 0.5", timeout=60_000, polling=250
    )
    start = await _playback(page)
    started = time.monotonic()
    await page.wait_for_function(
        f"() => document.querySelector('#live-video').currentTime >= {start['time'] + PLAYBACK_S}",
        timeout=40_000,
        polling=250,
    )
    end = await _playback(page)
    assert end["time"] - start["time"] >= PLAYBACK_S
    assert end["frames"] > start["frames"] + 200, (start, end)  # about 30 fps decoded
    assert end["fatal"] == [], end
    assert end["latency"] is not None and 0 <= end["latency"] <= MAX_LATENCY_S, end
    assert time.monotonic() - started < 35
    assert await page.text_content("#live-badge") == "Live"
    await page.wait_for_selector("#live-viewers", timeout=20_000)
    await page.screenshot(path=docs_screenshot("live/viewer-en.png"))

    # The viewer was counted: one session that fetched segments, from the real page.
    stats = await admin.call("GET", f"/live/{cid}/statistics")
    assert stats["views"] == 1 and stats["unique_viewers"] == 1, stats
    assert stats["devices"] == {"desktop": 1}

    ended = await admin.call("POST", f"/live/{cid}/stop")
    assert ended["state"] == "ended"
    zh = await new_context(locale="zh-CN")
    replay = await zh.new_page()
    await replay.goto(f"{site.url}/live/{cid}")
    await replay.wait_for_selector("#live-badge.replay")
    assert "直播已结束" in await replay.inner_text("#live-status")
    await replay.wait_for_function(
        "() => document.querySelector('#live-video').currentTime > 1", timeout=30_000, polling=250
    )
    await replay.screenshot(path=docs_screenshot("live/viewer-replay-zh-CN.png"))

    # The admin console: the channel, its figures, the concurrency chart drawn from the sampler's samples.
    console = await sign_in(new_context, site, "en-US", path="/admin/channels")
    await console.click(f"tr[data-channel='{cid}'] button[data-action=console]")
    await console.wait_for_selector("#channel-console[data-state=ended]")
    await console.wait_for_selector("#stat-pv")
    # Two people: the live viewer (en) and the replay viewer (zh-CN), each their own browser.
    assert await console.inner_text("#stat-pv") == "2"
    assert await console.inner_text("#stat-uv") == "2"
    points = int(await console.get_attribute("#channel-concurrency svg", "data-points") or 0)
    values = (await console.get_attribute("#channel-concurrency svg", "data-values") or "0").split(",")
    assert points >= 1 and max(int(v) for v in values) >= 1, values
    assert await console.evaluate(UNNAMED_CONTROLS) == []
    async with console.expect_download() as caught:
        await console.click("#channel-csv")
    saved = await (await caught.value).path()
    csv_text = await asyncio.to_thread(Path(saved).read_text, "utf-8")
    assert "views,2" in csv_text and "unique_viewers,2" in csv_text and "bucket_start_utc" in csv_text
    await console.screenshot(path=docs_screenshot("live/admin-console-en.png"), full_page=True)

    # zh-CN: a new channel made with the form lands in the list as a draft.
    zh_admin = await sign_in(new_context, site, "zh-CN", path="/admin/channels")
    await zh_admin.click("#channel-new")
    await zh_admin.fill("#channel-title", "英文同传直播间")
    await zh_admin.select_option("#channel-language", "en")
    await zh_admin.select_option("#channel-source", "playlist")
    await zh_admin.click("#channel-save")
    row = zh_admin.locator("#channels-table tr[data-state=draft]", has_text="英文同传直播间")
    await row.wait_for()
    assert "草稿" in await row.inner_text()
    await zh_admin.click(f"tr[data-channel='{cid}'] button[data-action=console]")
    await zh_admin.wait_for_selector("#stat-pv")
    await zh_admin.screenshot(path=docs_screenshot("live/admin-console-zh-CN.png"), full_page=True)


async def test_the_page_says_starting_soon_during_rehearsal_in_both_languages(
    site: RunningServer, admin: AdminApi, new_context: Any
) -> None:
    channel = await _channel(admin, title="Rehearsal only")
    await admin.call("POST", f"/live/{channel['id']}/rehearse")
    for locale, text in (("zh-CN", "直播即将开始"), ("en-US", "Starting soon")):
        context = await new_context(locale=locale)
        page = await context.new_page()
        await page.goto(f"{site.url}/live/{channel['id']}")
        await page.wait_for_selector("#live-status.starting")
        assert text in await page.inner_text("#live-status")
        assert await page.locator("#live-video.hidden").count() == 1
    staff = await admin.call("POST", f"/live/{channel['id']}/staff-token")
    page = await (await new_context(locale="zh-CN")).new_page()
    await page.goto(f"{site.url}{staff['url']}")
    await page.wait_for_selector("#live-badge.rehearsal")
    assert await page.text_content("#live-badge") == "彩排"
    await admin.call("POST", f"/live/{channel['id']}/stop")


async def test_the_viewer_page_plays_a_chromium_meeting_publisher(
    site: RunningServer, admin: AdminApi, new_context: Any
) -> None:
    """Item 7's browser half with a meeting source: the channel goes live before its meeting starts (the
    standby-less channel waits), a real Chromium joins the room with its fake camera — H.264, since the room
    feeds a channel — and is copied (not transcoded); a second Chromium plays /live/{id} through hls.js."""
    room = await admin.room(passcode="135790")
    channel = await _channel(admin, title="Town hall", source_kind="meeting", room_id=room["id"])
    cid = channel["id"]
    live = await admin.call("POST", f"/live/{cid}/go-live")
    assert live["state"] == "live" and live["meeting_id"] is None
    publisher = await (await new_context(locale="en-US")).new_page()
    await publisher.goto(f"{site.url}/m/{room['meeting_number']}?pwd=135790&simulcast=0")
    assert await publisher.get_attribute("[data-video-codec]", "data-video-codec") == "h264"
    await publisher.fill("#display-name", "Speaker")
    await publisher.click("#join:enabled")
    await publisher.wait_for_selector(".meeting")
    engine = site.app[LIVE_ENGINES].engine(cid)
    assert engine is not None
    # The meeting is attached by itself once it starts.
    await wait_for(lambda: engine.status().on_air == "primary" and engine.status().public_segments >= 1, 40)
    assert engine.status().transcoding is False, "the H.264 camera is copied"

    viewer = await (await new_context(locale="en-US")).new_page()
    await viewer.add_init_script(
        """window.__liveFatal = [];
        document.addEventListener('DOMContentLoaded', () => {
          const hook = () => window.yunhuiLive
            ? (window.__liveHooked = true) && window.yunhuiLive.addEventListener('error',
                (e) => e.detail.fatal && window.__liveFatal.push(e.detail))
            : setTimeout(hook, 50);
          hook(); });"""
    )
    await viewer.goto(f"{site.url}/live/{cid}")
    await viewer.wait_for_function(
        "() => document.querySelector('#live-video').currentTime > 0.5", timeout=30_000, polling=250
    )
    assert await viewer.evaluate("window.__liveHooked === true"), "fatal hls.js errors are caught"
    start = await _playback(viewer)
    started = time.monotonic()
    await viewer.wait_for_function(
        f"() => document.querySelector('#live-video').currentTime >= {start['time'] + PLAYBACK_S}",
        timeout=30_000,
        polling=250,
    )
    end = await _playback(viewer)
    assert end["time"] - start["time"] >= PLAYBACK_S
    assert end["frames"] > start["frames"] + 100, (start, end)
    assert end["fatal"] == [], end
    assert end["latency"] is not None and 0 <= end["latency"] <= MAX_LATENCY_S, end
    assert time.monotonic() - started < 30
    await admin.call("POST", f"/live/{cid}/stop")
