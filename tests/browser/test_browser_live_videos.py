"""Pre-recorded videos in the admin UI, in real Chromium against the whole app (the real job, Debian's
ffprobe/ffmpeg): clips made with lavfi are uploaded through the file input, checked and normalised (an
audio-less one is refused and shows its reason), then three go into a channel's playlist in order and the
operator reorders, inserts and skips. Screenshots in en and zh-CN for docs/live.md."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from rooms.live.models import LiveChannel
from tests.browser.conftest import UNNAMED_CONTROLS, AdminApi, docs_screenshot
from tests.browser.test_browser_admin import sign_in
from tests.conftest import RunningServer, require_tool
from tests.live.videos_env import make_clip
from web.keys import DATABASE
from yunhui.settings import Settings, load_settings

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture
def browser_settings(tmp_path: Path) -> Settings:
    """A small channel profile, so each normalisation takes a fraction of a second."""
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "live": {"profile": {"width": 320, "height": 180, "fps": 25, "video_bitrate_k": 300}},
        }
    )


async def _channel(site: RunningServer, account_id: int) -> int:
    now = datetime.now(UTC)
    async with site.app[DATABASE].session() as session:
        channel = LiveChannel(
            account_id=account_id, title="Product launch", language="zh-CN", state="draft",
            source_kind="playlist", audio_participant="", standby_kind="none", standby_override="auto",
            show_viewer_count=False, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(channel)
        await session.commit()
        return channel.id


async def _upload(page: Page, path: Path, final: str) -> None:
    await page.set_input_files("#livevideo-file", str(path))
    await page.click("#livevideo-upload button[type=submit]")
    name = path.stem
    row = f"#livevideo-table tr:has(td:text-is('{name}'))"
    await page.wait_for_selector(f"{row}[data-state={final}]", timeout=60000)


async def _playlist(page: Page) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = await page.eval_on_selector_all(
        "#livevideo-playlist-items li",
        "els => els.map(e => [e.querySelector('.name').textContent, e.dataset.state])",
    )
    return [(name, state) for name, state in items]


async def _wait_playlist(page: Page, expected: list[tuple[str, str]]) -> None:
    async with asyncio.timeout(20):
        while await _playlist(page) != expected:
            await page.wait_for_timeout(50)  # the list re-renders after the API answered: a bounded wait


async def test_upload_checks_and_the_ordered_playlist(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi, tmp_path: Path
) -> None:
    require_tool("ffmpeg")
    clips = await asyncio.to_thread(
        lambda: [
            make_clip(tmp_path / f"{colour}.mp4", seconds=1.0, color=colour)
            for colour in ("red", "green", "blue")
        ]
    )
    mute = await asyncio.to_thread(make_clip, tmp_path / "no-sound.mp4", seconds=1.0, audio=False)
    opening = await asyncio.to_thread(make_clip, tmp_path / "opening.mp4", seconds=3.0)  # ~250 kB of noise
    channel_id = await _channel(site, admin.account_id)
    page = await sign_in(new_context, site, "en-US", "/admin/livevideos")
    await page.wait_for_selector("#livevideo-playlist-empty")
    await page.wait_for_selector("#livevideo-none")
    await _upload(page, mute, "refused")
    reason = page.locator("#livevideo-table [data-reason=no_audio]")
    assert "no audio track" in (await reason.inner_text())
    assert await page.get_attribute("#livevideo-table li[data-check=audio]", "data-ok") == "false"
    # The first upload on a slow link (Chromium's network emulation): its progress bar moves.
    cdp = await page.context.new_cdp_session(page)
    slow = {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 60_000}
    await cdp.send("Network.emulateNetworkConditions", slow)
    await page.set_input_files("#livevideo-file", str(opening))
    await page.click("#livevideo-upload button[type=submit]")
    await page.wait_for_function(
        "(v => v > 0 && v < 100)(Number(document.querySelector('#livevideo-upload-progress')?.value))",
        polling=50,
        timeout=30000,
    )
    await page.screenshot(path=docs_screenshot("live/videos-uploading-en.png"))
    await cdp.send("Network.emulateNetworkConditions", {**slow, "latency": 0, "uploadThroughput": -1})
    await page.wait_for_selector(
        "#livevideo-table tr:has(td:text-is('opening'))[data-state=ready]", timeout=60000
    )
    assert await page.locator("#livevideo-upload-progress").count() == 0
    for clip in clips:
        await _upload(page, clip, "ready")
    checks = await page.eval_on_selector_all(
        "#livevideo-table tr:has(td:text-is('red')) li[data-check]", "els => els.map(e => e.dataset.ok)"
    )
    assert checks == ["true"] * 9, checks
    for colour in ("red", "green", "blue"):
        await page.click(f"#livevideo-table tr:has(td:text-is('{colour}')) button[data-action=add]")
        await page.wait_for_selector(f"#livevideo-playlist-items li:has(.name:text-is('{colour}'))")
    await _wait_playlist(page, [("red", "queued"), ("green", "queued"), ("blue", "queued")])
    # Reorder: red down one; then the refused video has no "add" button at all.
    await page.click("#livevideo-playlist-items li:has(.name:text-is('red')) button[data-action=down]")
    await _wait_playlist(page, [("green", "queued"), ("red", "queued"), ("blue", "queued")])
    assert await page.locator("#livevideo-table tr[data-state=refused] button[data-action=add]").count() == 0
    # Insert: blue again, to play next; skip green.
    await page.click("#livevideo-table tr:has(td:text-is('blue')) button[data-action=next]")
    await _wait_playlist(
        page, [("blue", "queued"), ("green", "queued"), ("red", "queued"), ("blue", "queued")]
    )
    await page.click("#livevideo-playlist-items li:has(.name:text-is('green')) button[data-action=skip]")
    await _wait_playlist(
        page, [("blue", "queued"), ("green", "skipped"), ("red", "queued"), ("blue", "queued")]
    )
    rows = await admin.call("GET", f"/live/{channel_id}/playlist")
    assert [(r["video_name"], r["state"]) for r in rows] == await _playlist(page)
    assert await page.evaluate(UNNAMED_CONTROLS) == []
    await page.screenshot(path=docs_screenshot("live/videos-en.png"), full_page=True)
    # The channel is not running: playing the playlist says so, in the user's language.
    await page.click("#livevideo-play")
    alert = page.locator("#livevideo-playlist [role=alert]")
    await alert.wait_for()
    assert "not running" in await alert.inner_text()
    zh = await sign_in(new_context, site, "zh-CN", "/admin/livevideos")
    await zh.wait_for_selector("#livevideo-playlist-items li[data-state=skipped]")
    await zh.wait_for_selector("#livevideo-table [data-reason=no_audio]")
    assert "没有音轨" in await zh.locator("#livevideo-table [data-reason=no_audio]").inner_text()
    await zh.screenshot(path=docs_screenshot("live/videos-zh-CN.png"), full_page=True)
