"""A browser whose network drops UDP joins through a real coturn over TURN/TCP; without TURN it cannot.

The firewalled Chromium runs in a network namespace of its own, joined to this one by a veth pair
(198.18.7.1 here, 198.18.7.2 there; RFC 2544's benchmarking range, never routed), and every UDP packet it
would send off its own addresses is blackholed (a routing rule on the protocol). It loads the meeting page
from 127.0.0.1 inside its namespace, where a TCP relay forwards to the server, so the page is a secure
origin as everywhere else.
The SFU offers 127.0.0.1 and 198.18.7.1: UDP to the latter is what the firewall drops. coturn listens on
198.18.7.1 and relays from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page

from tests import netns_link
from tests.browser.conftest import AdminApi, artifact
from tests.browser.netns_site import (
    LOOPBACK,
    SELECTED,
    TwoAddressServer,
    chromium_in,
    ice_also_on,
    serve_twice,
)
from tests.browser.test_browser_meeting import inbound, participant_id, wait_rising
from tests.conftest import RunningServer
from tests.netns_link import VethNamespace
from tests.turn.coturn import Coturn, coturn
from yunhui.settings import Settings, load_settings

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

NAMESPACE = f"yunhui-turn-{os.getpid()}"
HOST_ADDRESS, NS_ADDRESS = "198.18.7.1", "198.18.7.2"


@pytest.fixture(scope="module")
def firewall() -> Iterator[VethNamespace]:
    """The namespace, its veth link to here, and the blackhole of every UDP packet it sends."""
    if not netns_link.available():
        pytest.skip("needs root and ip to build the firewalled network namespace")
    namespace = VethNamespace(NAMESPACE, 7)
    namespace.create()
    try:
        namespace.blackhole_udp()
        yield namespace
    finally:
        namespace.delete()


@pytest.fixture(autouse=True)
def _loopback_ice(firewall: VethNamespace) -> Iterator[None]:
    """Overrides tests/conftest.py's: the SFU also gathers and checks on the veth link's address."""
    with ice_also_on(firewall):
        yield


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def turn(firewall: VethNamespace, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Coturn]:
    async with coturn(tmp_path_factory.mktemp("coturn"), address=HOST_ADDRESS, relay=LOOPBACK) as server:
        yield server


@pytest.fixture(params=["turn", "no-turn"])
def browser_settings(request: pytest.FixtureRequest, tmp_path: Path, turn: Coturn) -> Settings:
    """The suite's browser settings, with the TURN server handed to clients (or none, the control)."""
    servers = (
        {
            "urls": [
                f"turn:{turn.address}:{turn.port}?transport=udp",
                f"turn:{turn.address}:{turn.port}?transport=tcp",
            ],
            "secret": turn.secret,
        }
        if request.param == "turn"
        else {}
    )
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": LOOPBACK, "port": 0, "tls_port": None},
            "sfu": {"allow_loopback_candidates": True},
            "signaling": {"files_dir": str(tmp_path / "files"), "turn": servers},
        }
    )


@pytest_asyncio.fixture(loop_scope="module")
async def site(browser_settings: Settings, firewall: VethNamespace) -> AsyncIterator[TwoAddressServer]:
    async with serve_twice(browser_settings, firewall) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def firewalled_url(firewall: VethNamespace, site: TwoAddressServer) -> AsyncIterator[str]:
    async with firewall.relay(site.veth_port) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def firewalled_chromium(
    firewall: VethNamespace, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Browser]:
    async with chromium_in(firewall, tmp_path_factory.mktemp("netns-chromium")) as browser:
        yield browser


async def _open(browser: Browser, url: str, room: dict[str, Any], name: str) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = await context.new_page()
    await page.goto(f"{url}/m/{room['meeting_number']}?pwd={room['passcode']}&simulcast=0")
    await page.fill("#display-name", name)
    await page.click("#join:enabled")
    await page.wait_for_selector(".meeting")
    return page


async def _selected(page: Page, which: str) -> dict[str, Any] | None:
    result: dict[str, Any] | None = await page.evaluate(SELECTED, which)
    return result


async def test_udp_blocked_browser_joins_through_turn_over_tcp_and_only_so(
    *,
    browser_settings: Settings,
    site: RunningServer,
    admin: AdminApi,
    new_context: Callable[..., Any],
    firewalled_chromium: Browser,
    firewalled_url: str,
) -> None:
    room = await admin.room(name="Firewalled", passcode="135790")
    # Somebody on an open network, in this namespace's Chromium.
    open_context = await new_context()
    open_page = await open_context.new_page()
    await open_page.goto(f"{site.url}/m/{room['meeting_number']}?pwd={room['passcode']}&simulcast=0")
    await open_page.fill("#display-name", "Open")
    await open_page.click("#join:enabled")
    await open_page.wait_for_selector(".meeting")
    behind = await _open(firewalled_chromium, firewalled_url, room, "Behind a firewall")
    try:
        behind_id, open_id = await participant_id(behind), await participant_id(open_page)
        if browser_settings.signaling.turn.secret is None:
            # The control: the same browser, network and server, without TURN. Signaling works over TCP, but
            # no media path exists: after ten seconds neither connection has connected or received a byte.
            for _ in range(20):
                for which in ("publish", "subscribe"):
                    selected = await _selected(behind, which)
                    assert selected is None or selected["state"] not in ("connected", "completed")
                stats = await inbound(behind, open_id, "video")
                assert not stats or stats["bytes"] == 0
                await asyncio.sleep(0.5)
            return
        for page, other in ((behind, open_id), (open_page, behind_id)):
            await wait_rising(page, other, "video", "frames")
            await wait_rising(page, other, "audio", "bytes")
        for which in ("publish", "subscribe"):
            selected = await _selected(behind, which)
            assert selected is not None and selected.get("type") == "relay", selected
            # UDP to coturn is dropped as well: the allocation is over TCP.
            assert selected["relayProtocol"] == "tcp", selected
        await behind.screenshot(path=artifact("turn-firewalled.png"))
    finally:
        with contextlib.suppress(Exception):
            await behind.context.close()
