"""Deferred cameras in real Chromium: with ``sfu.max_videos_per_subscriber`` at 2, a viewer joining nine
camera robots gets m-sections for the cameras its first page shows and none for the camera on page 2 (it is
deferred, not merely paused); paging to it places it (one renegotiation) and its video arrives within 1 s."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import AdminApi
from tests.browser.test_browser_large_meeting import ROBOTS, _bytes, _on_page, _sfu, _until_receiving
from tests.browser.test_browser_meeting import join
from tests.conftest import RunningServer
from yunhui.settings import Settings, load_settings

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

log = logging.getLogger(__name__)
CAP = 2


@pytest.fixture
def browser_settings(tmp_path: Path) -> Settings:
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "sfu": {"allow_loopback_candidates": True, "max_videos_per_subscriber": CAP},
            "signaling": {"files_dir": str(tmp_path / "files")},
        }
    )


def _placed(site: RunningServer, viewer_id: str) -> tuple[set[str], set[str], dict[str, int]]:
    """The viewer's subscribe connection on the SFU: participants whose camera has an m-section, those whose
    camera is deferred, and video packets forwarded so far by participant."""
    for router in _sfu(site).routers.values():
        peer = router.peers.get(viewer_id)
        connection = peer.subscribe_connection if peer is not None else None
        if connection is not None:
            owners = {tid: t.participant_id for tid, t in router.tracks.items()}
            videos = [s for s in connection.subscriptions if s.video and (s.track or s.pending)]
            placed = {(s.track or s.pending).participant_id for s in videos}  # type: ignore[union-attr]
            deferred = {owners[tid] for tid in connection._deferred if tid in owners}
            packets = {s.track.participant_id: s.packets for s in videos if s.track is not None}
            return placed, deferred, packets
    raise AssertionError(f"no subscriber {viewer_id} in the SFU")


async def test_a_camera_past_the_cap_has_no_m_section_until_its_page_is_shown(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    started = time.monotonic()
    room = await admin.room(name="Deferred", passcode="808080")
    robots: list[str] = []
    for batch in range(3):
        page = await (await new_context()).new_page()
        await page.goto(f"{site.url}/m/{room['meeting_number']}")
        names = [f"Robot {batch * 3 + i + 1}" for i in range(3)]
        robots += await page.evaluate(
            ROBOTS, {"number": room["meeting_number"], "passcode": room["passcode"], "names": names}
        )
    log.info("nine robots joined in %.1f s", time.monotonic() - started)
    viewer = await join(new_context, site, room, "Viewer", simulcast=False)
    await viewer.wait_for_selector("#page-next")
    viewer_id = await viewer.evaluate("window.yunhui.client.self.id")
    first = await _on_page(viewer) - {viewer_id}
    (off_page,) = set(robots) - first
    # The cap's worth of the page's cameras arrive (the allocator forwards two of the eight).
    deadline = time.monotonic() + 20
    while sum(1 for n in (await _bytes(viewer, sorted(first))).values() if n) < CAP:
        assert time.monotonic() < deadline, await _bytes(viewer, sorted(first))
        await asyncio.sleep(0.1)

    placed, deferred, _ = _placed(site, viewer_id)
    assert off_page in deferred and off_page not in placed, (placed, deferred)
    assert placed <= first, placed
    # The cap holds for what is forwarded: at most two of the eight cameras on the page at a time.
    _, _, before = _placed(site, viewer_id)
    await asyncio.sleep(1.5)  # a measurement window, not a wait for an event
    _, _, after = _placed(site, viewer_id)
    moving = {p for p, n in after.items() if n > before.get(p, 0)}
    assert 0 < len(moving) <= CAP, (before, after)

    await viewer.get_by_role("button", name="Next page").click()
    assert off_page in await _on_page(viewer)
    elapsed = await _until_receiving(viewer, {off_page}, 5)
    log.info("the deferred camera's video %.0f ms after paging to it", 1000 * elapsed)
    assert elapsed < 1.0, f"the deferred camera took {elapsed:.2f} s"
    placed, deferred, _ = _placed(site, viewer_id)
    assert off_page in placed and off_page not in deferred, (placed, deferred)
