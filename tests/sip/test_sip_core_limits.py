"""The listener's defences (A19 limits): size cap, rate limit, scanners, enumeration; fuzzing; TCP/TLS."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl

import pytest

from signaling.sip.message import SipResponse, parse
from signaling.sip.server import SipServer
from signaling.sip.transport import Source
from signaling.sip.uri import Via
from tests.signaling.signaling_fakes import FakeClock
from tests.sip.sip_core_support import (
    SDP,
    FakeCredentials,
    RecordingHandler,
    UdpClient,
    digest_answer,
    endpoint,
    request_text,
    running_server,
    settings,
)


async def read_response(reader: asyncio.StreamReader) -> SipResponse:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    message = parse(head)
    assert isinstance(message, SipResponse)
    length = int(message.headers.get("Content-Length") or 0)
    if length:
        await reader.readexactly(length)
    return message


async def test_70_kb_invite_over_tcp_gets_513_and_the_connection_closes() -> None:
    async with running_server(settings(allow_guests=True)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["tcp"])
        body = SDP + "a=x-padding:" + "x" * 70_000 + "\r\n"
        writer.write(request_text("INVITE", 5099, body=body).replace("UDP", "TCP").encode())
        await writer.drain()
        response = await read_response(reader)
        assert response.status == 513
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_oversized_datagram_is_dropped_and_the_listener_goes_on() -> None:
    sip = settings(max_message_bytes=4000)
    async with running_server(sip) as server, UdpClient(server.ports["udp"]) as client:
        client.send(request_text("OPTIONS", client.port, extra="X-Pad: " + "y" * 5000))
        assert await client.nothing_within(0.3)
        client.send(request_text("OPTIONS", client.port))
        assert (await client.response()).status == 200
        assert server.transport.dropped == 1


async def test_rate_limit_per_address_and_the_block_ends() -> None:
    clock = FakeClock()
    sip = settings(rate_limits={"messages_per_second": 1, "burst": 20, "block_seconds": 60})
    async with running_server(sip, clock=clock) as server, UdpClient(server.ports["udp"]) as client:
        for n in range(50):
            client.send(request_text("OPTIONS", client.port, cseq=n + 1))
        answered = 0
        while not await client.nothing_within(0.3):
            answered += 1
        assert answered == 20
        clock.advance(30)
        client.send(request_text("OPTIONS", client.port, cseq=100))
        assert await client.nothing_within(0.3)  # still blocked
        clock.advance(31)
        client.send(request_text("OPTIONS", client.port, cseq=101))
        assert (await client.response()).status == 200


async def test_trusted_proxy_is_not_rate_limited() -> None:
    clock = FakeClock()
    sip = settings(rate_limits={"messages_per_second": 1, "burst": 5}, trusted_proxies=("127.0.0.1",))
    async with running_server(sip, clock=clock) as server, UdpClient(server.ports["udp"]) as client:
        for n in range(30):
            client.send(request_text("OPTIONS", client.port, cseq=n + 1))
        answered = 0
        while not await client.nothing_within(0.3):
            answered += 1
        assert answered == 30


async def test_scanner_user_agent_is_dropped_and_blocked() -> None:
    async with running_server(settings()) as server, UdpClient(server.ports["udp"]) as client:
        client.send(request_text("OPTIONS", client.port, extra="User-Agent: friendly-scanner"))
        client.send(request_text("OPTIONS", client.port, cseq=2))
        assert await client.nothing_within(0.3)


async def test_svwar_like_extension_scan_learns_nothing() -> None:
    """Like svwar (sipvicious is not in Debian): REGISTER extension after extension, compare the answers."""
    creds = FakeCredentials(**{f"{n}": endpoint(f"{n}", "pw", number=n) for n in (1003, 1007)})
    async with running_server(settings(), creds) as server, UdpClient(server.ports["udp"]) as client:
        shapes = set()
        for n, extension in enumerate(range(1000, 1010)):
            client.send(request_text("REGISTER", client.port, user=str(extension), cseq=n + 10))
            response = await client.response()
            shapes.add((response.status, tuple(name for name, _ in response.headers), len(client.raw[-1])))
    # Same status, same headers, same size for existing and missing extensions.
    assert len(shapes) == 1
    assert next(iter(shapes))[0] == 401


def mutations(seed: int, count: int) -> list[bytes]:
    valid = request_text("INVITE", 5099, body=SDP, extra="Session-Expires: 90\nSupported: timer").encode()
    rng = random.Random(seed)
    out: list[bytes] = [
        b"",
        b"\x00" * 10,
        b"SIP/2.0",
        b"\r\n",
        b"INVITE",
        valid[:40],
        valid.replace(b"\r\n", b"\n"),
    ]
    for _ in range(count):
        data = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            choice = rng.random()
            position = rng.randrange(len(data))
            if choice < 0.4:
                data[position] = rng.randrange(256)
            elif choice < 0.7:
                del data[position : position + rng.randint(1, 30)]
            else:
                data[position:position] = rng.choice(
                    [b":", b";", b"<", b"\r\n", b",", b"\xff\xfe", b" ", b"=="]
                )
        out.append(bytes(data))
    out += [bytes(rng.randrange(256) for _ in range(rng.randint(1, 600))) for _ in range(count // 4)]
    return out


async def test_garbage_never_raises_and_never_logs_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="signaling.sip")
    sip = settings(allow_guests=True, rate_limits={"messages_per_second": 1e6, "burst": 1_000_000})
    async with running_server(sip) as server, UdpClient(server.ports["udp"]) as client:
        garbage = mutations(seed=16, count=2000)
        for n, data in enumerate(garbage):
            # Through the receive path directly (no socket round trip) and a sample over real UDP.
            server.transport.received(data, Source("udp", "127.0.0.1", 40000 + n % 1000))
            if n % 20 == 0:
                client.send(data)
        await asyncio.sleep(0)
        client.send(request_text("OPTIONS", client.port, cseq=99_999))
        while True:
            response = await client.response()
            if response.cseq[0] == 99_999:
                break
        assert response.status == 200
    tracebacks = [r for r in caplog.records if r.exc_info is not None or r.levelno >= logging.ERROR]
    assert tracebacks == []


async def test_rport_and_received_are_stamped_on_the_answer() -> None:
    async with running_server(settings()) as server, UdpClient(server.ports["udp"]) as client:
        # The Via names another host and no port: the answer still comes back to where the request came from.
        text = request_text("OPTIONS", client.port).replace(f"127.0.0.1:{client.port};", "10.9.8.7;")
        client.send(text)
        response = await client.response()
        via = Via.parse(response.vias[0])
        assert via.params["received"] == "127.0.0.1"
        assert via.params["rport"] == str(client.port)


async def test_tcp_keepalive_and_pipelined_requests() -> None:
    async with running_server(settings()) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["tcp"])
        writer.write(b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"\r\n"
        two = request_text("OPTIONS", 5099, cseq=1) + request_text("OPTIONS", 5099, cseq=2)
        writer.write(two.replace("UDP", "TCP").encode())
        first, second = await read_response(reader), await read_response(reader)
        assert (first.cseq[0], second.cseq[0]) == (1, 2)
        writer.close()


async def test_tls_listener_with_a_self_signed_certificate() -> None:
    async with running_server(settings(tls_port=0)) as server:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["tls"], ssl=context)
        writer.write(request_text("OPTIONS", 5099).replace("UDP", "TLS").encode())
        response = await read_response(reader)
        assert response.status == 200
        assert "INVITE" in (response.headers.get("Allow") or "")
        writer.close()


async def test_register_with_digest_over_tls_binds_a_tls_flow() -> None:
    creds = FakeCredentials(room101=endpoint("room101", "secret"))
    async with running_server(settings(tls_port=0), creds) as server:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["tls"], ssl=context)
        writer.write(request_text("REGISTER", 5099, extra="Expires: 300").replace("UDP", "TLS").encode())
        challenge = await read_response(reader)
        assert challenge.status == 401
        value = challenge.headers.get("WWW-Authenticate") or ""
        authorization = digest_answer(value, "room101", "secret", "REGISTER", "sip:room101@127.0.0.1")
        extra = f"Expires: 300\nAuthorization: {authorization}"
        writer.write(request_text("REGISTER", 5099, cseq=2, extra=extra).replace("UDP", "TLS").encode())
        assert (await read_response(reader)).status == 200
        (binding,) = server.registrations()
        assert binding.transport == "tls"
        writer.close()


async def test_connections_per_address_are_capped() -> None:
    async with running_server(settings(rate_limits={"connections_per_ip": 2})) as server:
        port = server.ports["tcp"]
        kept = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed at once
        writer.close()
        # The two allowed ones still work.
        kept[0][1].write(request_text("OPTIONS", 5099).replace("UDP", "TCP").encode())
        assert (await read_response(kept[0][0])).status == 200
        for _, w in kept:
            w.close()


async def test_a_port_in_use_fails_the_start_and_leaves_nothing_bound() -> None:
    async with running_server(settings()) as first:
        taken = first.ports["tcp"]
        server = SipServer(settings(tcp_port=taken), FakeClock(), FakeCredentials(), RecordingHandler())
        with pytest.raises(OSError):
            await server.start()
        udp = server.ports["udp"]
        await server.close()
    # The UDP port bound before the failure is free again.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", udp))
