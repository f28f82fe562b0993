"""The monitor's SIP check against the real SIP core on 127.0.0.1: OPTIONS answered 200 passes; a listener
that does not answer fails within the monitor's timeout; an answer other than 200 fails with its status."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from signaling.sip.message import Headers, SipRequest, SipResponse, parse
from tests.sip.sip_core_support import running_server, settings
from web.keys import DATABASE
from yunhui.app import create_app
from yunhui.monitor import MONITOR, CheckFailed
from yunhui.monitor_sip import sip_options_check
from yunhui.settings import load_settings


async def test_options_to_the_gateway_passes() -> None:
    async with running_server(settings(allow_guests=True)) as server:
        await asyncio.wait_for(sip_options_check("127.0.0.1", server.ports["udp"])(), 5)


async def test_a_silent_listener_fails_within_the_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sip_options_check("127.0.0.1", silent.getsockname()[1])(), 0.3)


async def test_an_answer_other_than_200_fails_with_it() -> None:
    class Busy(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            request = parse(data)
            assert isinstance(request, SipRequest) and request.method == "OPTIONS"
            names = ("Via", "From", "To", "Call-ID", "CSeq")
            headers = Headers.of((name, request.headers.get(name) or "") for name in names)
            answer = SipResponse(status=503, reason="Service Unavailable", headers=headers)
            self.transport.sendto(answer.serialize(), addr)

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Busy, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        with pytest.raises(CheckFailed, match="503"):
            await asyncio.wait_for(sip_options_check("127.0.0.1", port)(), 5)
    finally:
        transport.close()


async def test_the_running_app_checks_its_own_gateway_and_its_pages_publish_h264(tmp_path: Path) -> None:
    settings = load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "sip": {"enabled": True, "host": "127.0.0.1", "udp_port": 0, "tcp_port": 0, "tls_port": None},
            "monitor": {"media": False},
        }
    )
    app = await create_app(settings, secret_key="monitor-sip-test-secret-0123456789abcdef")
    await app[DATABASE].upgrade()
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        # With the gateway running, meeting pages publish H.264, the one codec terminals decode.
        host, port = runner.addresses[0][:2]
        async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}/m/812345678") as page:
            assert page.status == 200 and 'data-video-codec="h264"' in await page.text()
        monitor = app[MONITOR]
        assert "sip" in monitor.checks
        results = {r.name: r for r in await monitor.check_once()}
        assert results["sip"].ok, results["sip"].detail
    finally:
        await runner.cleanup()
