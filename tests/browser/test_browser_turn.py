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
import dataclasses
import ipaddress
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aioice
import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from tests.browser.conftest import CHROMIUM_ARGS, AdminApi, artifact
from tests.browser.test_browser_meeting import inbound, participant_id, wait_rising
from tests.conftest import SECRET_KEY, RunningServer, require_tool
from tests.turn.coturn import Coturn, coturn
from web.keys import DATABASE
from yunhui.app import create_app
from yunhui.settings import Settings, load_settings

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

NAMESPACE = f"yunhui-turn-{os.getpid()}"
HOST_IF, NS_IF = "yhturn0", "yhturn1"
HOST_ADDRESS, NS_ADDRESS = "198.18.7.1", "198.18.7.2"
LINK = ipaddress.ip_network("198.18.7.0/30")
LOOPBACK = "127.0.0.1"

# aioice as it ships, captured before tests/conftest.py's _loopback_ice patches it for each test.
_ADD_REMOTE_CANDIDATE = aioice.ice.Connection.add_remote_candidate
_REQUEST_RECEIVED = aioice.ice.Connection.request_received

# The local candidate of the connection's selected pair, as Chromium reports it.
SELECTED = """async (which) => {
  const pc = which === 'publish' ? window.yunhui.client.publishPc : window.yunhui.client.subscribePc;
  if (!pc) return null;
  const stats = await pc.getStats(); let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) return { state: pc.iceConnectionState };
  const local = stats.get(pair.localCandidateId);
  return { state: pc.iceConnectionState, type: local.candidateType,
           relayProtocol: local.relayProtocol || null };
}"""

# Runs inside the namespace: 127.0.0.1:<ephemeral> there -> the server here; prints its port.
RELAY = """
import asyncio, sys
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data); await w.drain()
    finally:
        w.close()
async def serve(r, w):
    ur, uw = await asyncio.open_connection(sys.argv[1], int(sys.argv[2]))
    await asyncio.gather(pipe(r, uw), pipe(ur, w), return_exceptions=True)
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def _run(*args: str) -> None:
    result = subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=20)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")


@pytest.fixture(scope="module")
def firewall() -> Iterator[str]:
    """The namespace, its veth link to here, and the drop of every UDP packet it sends."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and ip to build the firewalled network namespace")
    _run("ip", "netns", "add", NAMESPACE)
    try:
        _run("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF, "netns", NAMESPACE)
        _run("ip", "addr", "add", f"{HOST_ADDRESS}/30", "dev", HOST_IF)
        _run("ip", "link", "set", HOST_IF, "up")
        _run("ip", "-n", NAMESPACE, "link", "set", "lo", "up")
        _run("ip", "-n", NAMESPACE, "addr", "add", f"{NS_ADDRESS}/30", "dev", NS_IF)
        _run("ip", "-n", NAMESPACE, "link", "set", NS_IF, "up")
        # Every UDP datagram the namespace would send off its own addresses is blackholed by a routing rule
        # (this machine's kernel has no packet filter modules): sendto fails, as behind a firewall that
        # rejects UDP. TCP goes through.
        _run("ip", "-n", NAMESPACE, "rule", "add", "ipproto", "udp", "blackhole")
        yield NAMESPACE
    finally:
        # Deleting the namespace deletes the veth pair with it.
        subprocess.run(["ip", "netns", "delete", NAMESPACE], check=False, timeout=20)


@pytest.fixture(autouse=True)
def _loopback_ice(firewall: str) -> Iterator[None]:
    """Overrides tests/conftest.py's: the SFU also gathers and checks on the veth link's address."""

    def ours(host: str) -> bool:
        return host == LOOPBACK or ipaddress.ip_address(host) in LINK

    async def add_remote_candidate(self: aioice.ice.Connection, candidate: aioice.Candidate | None) -> None:
        # Chromium's other candidates (mDNS names, the machine's real interfaces) are not tried.
        if candidate is None or (not candidate.host.endswith(".local") and ours(candidate.host)):
            await _ADD_REMOTE_CANDIDATE(self, candidate)

    def request_received(
        self: aioice.ice.Connection, message: Any, addr: tuple[str, int], *rest: Any
    ) -> None:
        if ours(addr[0]):
            _REQUEST_RECEIVED(self, message, addr, *rest)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: [LOOPBACK, HOST_ADDRESS])
        patch.setattr(aioice.ice.Connection, "add_remote_candidate", add_remote_candidate)
        patch.setattr(aioice.ice.Connection, "request_received", request_received)
        yield


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def turn(firewall: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Coturn]:
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


@dataclasses.dataclass(frozen=True)
class TwoAddressServer(RunningServer):
    veth_port: int = 0


@pytest_asyncio.fixture(loop_scope="module")
async def site(browser_settings: Settings) -> AsyncIterator[TwoAddressServer]:
    """The application on 127.0.0.1 (for the browser here) and on the veth address (for the namespace)."""
    app = await create_app(browser_settings, secret_key=SECRET_KEY)
    await app[DATABASE].upgrade()
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, LOOPBACK, 0).start()
    await web.TCPSite(runner, HOST_ADDRESS, 0).start()
    (_, port), (_, veth_port) = (address[:2] for address in runner.addresses)
    try:
        yield TwoAddressServer(f"http://{LOOPBACK}:{port}", app, browser_settings, veth_port)
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="module")
async def firewalled_url(firewall: str, site: TwoAddressServer) -> AsyncIterator[str]:
    """http://127.0.0.1:<port> inside the namespace, relayed over TCP to the server."""
    process = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", firewall, sys.executable, "-c", RELAY, HOST_ADDRESS, str(site.veth_port),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 15)
        yield f"http://{LOOPBACK}:{int(line)}"
    finally:
        process.kill()
        await process.wait()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def firewalled_chromium(
    firewall: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Browser]:
    """Chromium started inside the namespace (ip netns exec keeps Playwright's pipe to it)."""
    wrapper = tmp_path_factory.mktemp("netns-chromium") / "chromium"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {firewall} {require_tool("chromium")} "$@"\n')
    wrapper.chmod(0o755)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(wrapper), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


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
