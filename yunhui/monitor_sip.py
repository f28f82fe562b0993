"""The monitor's SIP check: an OPTIONS to the gateway's own UDP listener must get a 200 (RFC 3261 §11).

It is what a room terminal's keep-alive sees, so a gateway that stopped answering counts against the
meetings' availability like a failed media round trip.
"""

from __future__ import annotations

import asyncio
import secrets

from aiohttp import web

from signaling.sip.message import SipParseError, SipResponse, parse
from yunhui.monitor import MONITOR, Check, CheckFailed

__all__ = ["gateway_listening", "sip_options_check"]


class _Probe(asyncio.DatagramProtocol):
    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.answer: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = parse(data)
        except SipParseError:
            return
        ours = isinstance(message, SipResponse) and message.headers.get("Call-ID") == self.call_id
        if ours and isinstance(message, SipResponse) and message.status >= 200 and not self.answer.done():
            self.answer.set_result(message)


def options_request(host: str, port: int, local_port: int, call_id: str, branch: str) -> bytes:
    """An out-of-dialog OPTIONS from the monitor to the gateway."""
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:monitor@{host}>;tag={branch[:10]}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Accept: application/sdp\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def sip_options_check(host: str, port: int) -> Check:
    """A check for the monitor: OPTIONS over UDP to ``host:port`` answered 200 (the monitor times it)."""

    async def check() -> None:
        loop = asyncio.get_running_loop()
        call_id = f"monitor-{secrets.token_hex(8)}"
        transport, probe = await loop.create_datagram_endpoint(
            lambda: _Probe(call_id), local_addr=("127.0.0.1", 0), remote_addr=(host, port)
        )
        try:
            local_port = transport.get_extra_info("sockname")[1]
            transport.sendto(options_request(host, port, local_port, call_id, secrets.token_hex(8)))
            answer = await probe.answer
        finally:
            transport.close()
        if answer.status != 200:
            raise CheckFailed(f"SIP OPTIONS answered {answer.status} {answer.reason}")

    return check


def gateway_listening(app: web.Application, host: str, udp_port: int) -> None:
    """Tell the monitor where the SIP gateway answers (known once it listens): the SIP check starts."""
    monitor = app.get(MONITOR)
    if monitor is not None and "sip" not in monitor.checks:
        # A listener on every address answers on loopback.
        target = "127.0.0.1" if host in ("", "0.0.0.0") else host
        monitor.add_check("sip", sip_options_check(target, udp_port), monitor.settings.http_timeout_seconds)
