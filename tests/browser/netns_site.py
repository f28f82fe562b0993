"""The app and the SFU reachable from a VethNamespace (tests/netns_link.py): for browsers run inside one."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aioice
import pytest
from aiohttp import web
from playwright.async_api import Browser, async_playwright

from tests.browser.conftest import CHROMIUM_ARGS
from tests.conftest import SECRET_KEY, RunningServer, require_tool
from tests.netns_link import VethNamespace
from web.keys import DATABASE
from yunhui.app import create_app
from yunhui.settings import Settings

LOOPBACK = "127.0.0.1"

# aioice as it ships, captured before tests/conftest.py's _loopback_ice patches it for each test.
_ADD_REMOTE_CANDIDATE = aioice.ice.Connection.add_remote_candidate
_REQUEST_RECEIVED = aioice.ice.Connection.request_received

# The local candidate of a connection's selected pair, as Chromium reports it.
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
           relayProtocol: local.relayProtocol || null,
           availableOutgoingBitrate: pair.availableOutgoingBitrate || 0 };
}"""


@contextlib.contextmanager
def ice_also_on(namespace: VethNamespace) -> Iterator[None]:
    """Like tests/conftest.py's _loopback_ice, and the SFU also gathers and checks on the veth link."""
    link = ipaddress.ip_network(namespace.network)

    def ours(host: str) -> bool:
        return host == LOOPBACK or ipaddress.ip_address(host) in link

    async def add_remote_candidate(self: aioice.ice.Connection, candidate: aioice.Candidate | None) -> None:
        # Chromium's other candidates (mDNS names, the machine's real interfaces) are not tried.
        if candidate is None or (not candidate.host.endswith(".local") and ours(candidate.host)):
            await _ADD_REMOTE_CANDIDATE(self, candidate)

    def request_received(
        self: aioice.ice.Connection, message: Any, addr: tuple[str, int], *rest: Any
    ) -> None:
        if ours(addr[0]):
            _REQUEST_RECEIVED(self, message, addr, *rest)

    addresses = [LOOPBACK, namespace.host_address]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: addresses)
        patch.setattr(aioice.ice.Connection, "add_remote_candidate", add_remote_candidate)
        patch.setattr(aioice.ice.Connection, "request_received", request_received)
        yield


@dataclasses.dataclass(frozen=True)
class TwoAddressServer(RunningServer):
    veth_port: int = 0


@contextlib.asynccontextmanager
async def serve_twice(settings: Settings, namespace: VethNamespace) -> AsyncIterator[TwoAddressServer]:
    """The application on 127.0.0.1 (for browsers here) and on the veth address (for the namespace)."""
    app = await create_app(settings, secret_key=SECRET_KEY)
    await app[DATABASE].upgrade()
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, LOOPBACK, 0).start()
    await web.TCPSite(runner, namespace.host_address, 0).start()
    (_, port), (_, veth_port) = (address[:2] for address in runner.addresses)
    try:
        yield TwoAddressServer(f"http://{LOOPBACK}:{port}", app, settings, veth_port)
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def chromium_in(namespace: VethNamespace, directory: Path) -> AsyncIterator[Browser]:
    """Chromium started inside the namespace, with the suite's flags."""
    wrapper = namespace.chromium_wrapper(directory, require_tool("chromium"))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(wrapper), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
