"""A 12-person meeting in real Chromium: the grid shows 3×3 pages, only the tiles on screen get video, and the
next page's videos arrive within a second of paging. Eleven of the people are SDK clients without a UI,
four to a browser context (each publishes a small camera and, like a tile off screen, asks for no video)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import Page

from sfu.sfu import Sfu
from tests.browser.conftest import AdminApi, artifact
from tests.browser.test_browser_meeting import inbound, join
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

ROBOTS = """async ({ number, passcode, names }) => {
  const { MeetingClient } = await import("/static/sdk/yunhui.js");
  window.robots = [];
  for (const name of names) {
    const client = new MeetingClient({ simulcast: false });
    const video = { width: 160, height: 120, frameRate: 10 };
    const media = await navigator.mediaDevices.getUserMedia({ video });
    client.setLocalMedia({ camera: media.getVideoTracks()[0] });
    // Nothing is shown here: ask the SFU for no video, as a tile off screen does.
    client.addEventListener("tracks", () => {
      for (const t of client.remoteTracks.values()) {
        if (t.kind === "video") client.setVideoSize(t.trackId, 0, 0);
      }
    });
    await client.join({ meetingNumber: number, passcode, displayName: name });
    window.robots.push(client);
  }
  return window.robots.map((c) => c.self.id);
}"""


async def _bytes(page: Page, pids: list[str]) -> dict[str, int]:
    result = {}
    for pid in pids:
        stats = await inbound(page, pid, "video")
        result[pid] = stats["bytes"] if stats else 0
    return result


async def _on_page(page: Page) -> set[str]:
    ids: list[str] = await page.eval_on_selector_all(
        ".layout.grid .tile[data-participant]", "tiles => tiles.map((t) => t.dataset.participant)"
    )
    return set(ids)


async def _until_receiving(page: Page, pids: set[str], within: float) -> float:
    """Seconds until every one of `pids` sends this page video bytes again (raises after `within`)."""
    started = time.monotonic()
    before = await _bytes(page, sorted(pids))
    while True:
        now = await _bytes(page, sorted(pids))
        if all(now[pid] > before[pid] for pid in pids):
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"not receiving from all of {sorted(pids)}: {before} -> {now}")
        await asyncio.sleep(0.05)


async def _still(page: Page, pids: set[str]) -> None:
    """None of `pids` sends this page video over two seconds (after one to let what is in flight land)."""
    await asyncio.sleep(1.0)
    before = await _bytes(page, sorted(pids))
    await asyncio.sleep(2.0)
    after = await _bytes(page, sorted(pids))
    assert after == before, f"video still arrives from off-page tiles: {before} -> {after}"


def _sfu(site: RunningServer) -> Sfu:
    """The application's Sfu, reached through its metrics collector (the app keeps no other handle)."""
    from web.keys import METRICS
    from yunhui.sfu_metrics import SfuCollector

    collectors = site.app[METRICS]._collector_to_names
    return next(c for c in collectors if isinstance(c, SfuCollector))._sfu


def _server_packets(site: RunningServer, viewer_id: str) -> dict[str, int]:
    """Video packets the SFU forwarded to the viewer so far, by publishing participant (its counters)."""
    for router in _sfu(site).routers.values():
        peer = router.peers.get(viewer_id)
        if peer is not None and peer.subscribe_connection is not None:
            return {
                s.track.participant_id: s.packets
                for s in peer.subscribe_connection.subscriptions
                if s.track is not None and s.video
            }
    raise AssertionError(f"no subscriber {viewer_id} in the SFU")


async def _server_still(site: RunningServer, viewer_id: str, pids: set[str], moving: set[str]) -> None:
    """Server side too: the SFU sends the viewer nothing of `pids` over two seconds, and keeps `moving`."""
    before = _server_packets(site, viewer_id)
    await asyncio.sleep(2.0)
    after = _server_packets(site, viewer_id)
    assert all(after.get(p, 0) == before.get(p, 0) for p in pids), (before, after)
    assert all(after[p] > before[p] for p in moving), (before, after)


async def test_a_twelve_person_grid_pages_and_forwards_only_what_is_shown(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(name="All hands", passcode="909090")
    robots: list[str] = []
    robot_pages: list[Page] = []
    for batch in range(3):
        context = await new_context()
        page = await context.new_page()
        robot_pages.append(page)
        await page.goto(f"{site.url}/m/{room['meeting_number']}")
        names = [f"Robot {batch * 4 + i + 1}" for i in range(4 if batch < 2 else 3)]
        robots += await page.evaluate(
            ROBOTS, {"number": room["meeting_number"], "passcode": room["passcode"], "names": names}
        )
    viewer = await join(new_context, site, room, "Viewer", simulcast=False)
    await viewer.wait_for_selector("#page-next")
    assert "1" in await viewer.inner_text(".pages") and "2" in await viewer.inner_text(".pages")

    first = await _on_page(viewer) - {await viewer.evaluate("window.yunhui.client.self.id")}
    assert len(first) == 8, first  # 3×3 with yourself first
    rest = set(robots) - first
    assert len(rest) == 3
    await _until_receiving(viewer, first, 20)
    await _still(viewer, rest)
    viewer_id = await viewer.evaluate("window.yunhui.client.self.id")
    await _server_still(site, viewer_id, rest, first)
    await viewer.screenshot(path=artifact("large-meeting-page-1.png"))

    await viewer.get_by_role("button", name="Next page").click()
    assert await _on_page(viewer) >= rest
    elapsed = await _until_receiving(viewer, rest, 5)
    assert elapsed < 1.0, f"the next page's video took {elapsed:.2f} s"
    await _still(viewer, first)
    await _server_still(site, viewer_id, first - rest, rest)
    await viewer.screenshot(path=artifact("large-meeting-page-2.png"))

    # The participant list: raised hands first, and a search by name.
    await robot_pages[2].evaluate("window.robots[1].raiseHand(true)")  # Robot 10
    await viewer.click("#toggle-people")
    await viewer.wait_for_function(
        "document.querySelector('.people li .name')?.textContent.startsWith('Robot 10')", timeout=10000
    )
    search = viewer.get_by_role("searchbox", name="Search participants")
    await search.fill("robot 1")
    names = await viewer.eval_on_selector_all(".people li .name", "items => items.map((i) => i.textContent)")
    assert names == ["Robot 10", "Robot 1", "Robot 11"], names
