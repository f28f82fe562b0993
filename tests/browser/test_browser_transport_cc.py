"""transport-cc in Chromium: it takes our feedback, its send-side estimate follows a 1 Mbit/s uplink (tbf
in a network namespace) down, and comes back up when the limit is lifted."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page

from sfu.metrics import METRICS
from tests import netns_link
from tests.browser.conftest import AdminApi
from tests.browser.netns_site import (
    LOOPBACK,
    SELECTED,
    TwoAddressServer,
    chromium_in,
    ice_also_on,
    serve_twice,
)
from tests.netns_link import VethNamespace
from yunhui.settings import Settings, load_settings

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def uplink() -> Iterator[VethNamespace]:
    if not netns_link.available():
        pytest.skip("needs root and ip to build the network namespace")
    namespace = VethNamespace(f"yunhui-twcc-{os.getpid()}", 8)
    namespace.create()
    try:
        yield namespace
    finally:
        namespace.delete()


@pytest.fixture(autouse=True)
def _loopback_ice(uplink: VethNamespace) -> Iterator[None]:
    with ice_also_on(uplink):
        yield


@pytest.fixture
def browser_settings(tmp_path: Path) -> Settings:
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": LOOPBACK, "port": 0, "tls_port": None},
            "sfu": {"allow_loopback_candidates": True},
            "signaling": {"files_dir": str(tmp_path / "files")},
        }
    )


@pytest_asyncio.fixture(loop_scope="module")
async def site(browser_settings: Settings, uplink: VethNamespace) -> AsyncIterator[TwoAddressServer]:
    async with serve_twice(browser_settings, uplink) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shaped_chromium(
    uplink: VethNamespace, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Browser]:
    async with chromium_in(uplink, tmp_path_factory.mktemp("netns-chromium")) as browser:
        yield browser


async def _estimate(page: Page) -> float:
    selected: dict[str, Any] | None = await page.evaluate(SELECTED, "publish")
    return float(selected.get("availableOutgoingBitrate", 0)) if selected else 0.0


async def _until(page: Page, test: Any, within: float, what: str) -> float:
    started = time.monotonic()
    seen = []
    while time.monotonic() - started < within:
        value = await _estimate(page)
        seen.append(round(value / 1000))
        if test(value):
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    raise AssertionError(f"{what} not within {within} s; kbit/s seen: {seen[-20:]}")


async def test_the_send_side_estimate_follows_a_1_mbit_uplink_and_recovers(
    *,
    site: TwoAddressServer,
    admin: AdminApi,
    uplink: VethNamespace,
    shaped_chromium: Browser,
    new_context: Callable[..., Any],
) -> None:
    room = await admin.room(passcode="424242")
    # Someone here watches the publisher large (a 2x screen): its full simulcast layer stays on, so the
    # publisher has more to send than a 1 Mbit/s uplink carries.
    watcher = await (
        await new_context(viewport={"width": 1920, "height": 1080}, device_scale_factor=2)
    ).new_page()
    await watcher.goto(f"{site.url}/m/{room['meeting_number']}?pwd={room['passcode']}")
    await watcher.fill("#display-name", "Watcher")
    await watcher.click("#join:enabled")
    await watcher.wait_for_selector(".meeting")
    async with uplink.relay(site.veth_port) as url:
        context = await shaped_chromium.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
        try:
            page = await context.new_page()
            await page.goto(f"{url}/m/{room['meeting_number']}?pwd={room['passcode']}")
            await page.fill("#display-name", "Uplink")
            await page.click("#join:enabled")
            await page.wait_for_selector(".meeting")
            answer: str = await page.evaluate("window.yunhui.client.publishPc.remoteDescription.sdp")
            assert "transport-wide-cc" in answer and "transport-cc" in answer
            sent = METRICS.transport_feedback_sent
            # Free: Chrome probes on our feedback and its estimate climbs past what the uplink will allow.
            await _until(page, lambda v: v > 1_500_000, 30, "climbing past 1.5 Mbit/s")
            assert METRICS.transport_feedback_sent > sent
            uplink.limit("1mbit")
            await _until(page, lambda v: 0 < v < 1_100_000, 20, "following the 1 Mbit/s limit down")
            uplink.unlimit()
            await _until(page, lambda v: v > 1_500_000, 30, "recovering after the limit")
        finally:
            uplink.unlimit()
            await context.close()
