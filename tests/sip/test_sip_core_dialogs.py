"""Dialog rules on a fake clock with a raw UDP terminal: 2xx resend schedule, delayed offer, INFO, CSeq, 481,
UPDATE refresh, our own session refresh, the trusted front proxy."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator

from signaling.sip.api import SipCall
from signaling.sip.message import SipRequest, SipResponse
from signaling.sip.server import SipServer
from signaling.sip.transport import Source
from tests.signaling.signaling_fakes import FakeClock
from tests.sip.sip_core_support import (
    SDP,
    FakeCredentials,
    RecordingHandler,
    UdpClient,
    endpoint,
    request_text,
    running_server,
    settings,
)

T1 = 0.5


@contextlib.asynccontextmanager
async def gateway(
    handler: RecordingHandler, clock: FakeClock, **overrides: object
) -> AsyncIterator[tuple[SipServer, UdpClient]]:
    sip = settings(**{"allow_guests": True, "t1_ms": 500, "t2_ms": 4000, **overrides})
    creds = FakeCredentials(room101=endpoint("room101", "secret"))
    async with (
        running_server(sip, creds, handler, clock=clock) as server,
        UdpClient(server.ports["udp"]) as client,
    ):
        yield server, client


async def final(client: UdpClient, method: str = "INVITE") -> SipResponse:
    while True:
        response = await client.response()
        if response.cseq[1] == method:
            return response


def in_dialog(
    method: str,
    client: UdpClient,
    ok: SipResponse,
    cseq: int,
    *,
    extra: str = "",
    body: str = "",
    branch: str = "",
) -> str:
    """A request in the dialog ``ok`` (our 200) set up: To carries the gateway's tag."""
    text = request_text(
        method, client.port, call_id=ok.call_id, cseq=cseq, extra=extra, body=body, branch=branch or None
    )
    to = ok.headers.get("To") or ""
    # request_text writes From tag t{cseq}x; the dialog's is the INVITE's (t1x).
    return text.replace(f"tag=t{cseq}x", "tag=t1x").replace("To: <sip:room101@127.0.0.1>", f"To: {to}")


def send_ack(client: UdpClient, ok: SipResponse, body: str = "") -> None:
    extra = "Content-Type: application/sdp" if body else ""
    client.send(in_dialog("ACK", client, ok, ok.cseq[0], extra=extra, body=body))


async def ack(client: UdpClient, ok: SipResponse, handler: RecordingHandler) -> None:
    """ACK our 200 and wait until the gateway has it (before the test moves the fake clock)."""
    send_ack(client, ok)
    await asyncio.wait_for(handler.acked.wait(), 5)


async def test_2xx_is_resent_at_t1_doubling_to_t2_then_bye_at_64_t1() -> None:
    clock, handler = FakeClock(), RecordingHandler()
    async with gateway(handler, clock) as (server, client):
        start = clock.now()
        sent: list[tuple[float, bytes]] = []
        send = server.transport.send

        def recording_send(data: bytes, dest: Source) -> bool:
            sent.append(((clock.now() - start).total_seconds(), data.split(b"\r\n", 1)[0]))
            return send(data, dest)

        server.transport.send = recording_send  # type: ignore[method-assign]
        client.send(request_text("INVITE", client.port, body=SDP, extra="Content-Type: application/sdp"))
        await final(client)
        # Timers fire synchronously inside advance(): step through 64*T1 and read what went out when.
        for _ in range(700):
            clock.advance(0.05)
        await asyncio.wait_for(handler.call_ended.wait(), 5)
    assert handler.ended == ["no_ack"]
    oks = [t for t, line in sent if line == b"SIP/2.0 200 OK"]
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(oks)]
    # 0.5, 1, 2, then 4 s (T2) until the BYE at 64*T1 = 32 s.
    assert gaps[:3] == [0.5, 1.0, 2.0]
    assert set(gaps[3:]) == {4.0}
    assert [round(t, 2) for t, line in sent if line.startswith(b"BYE ")][:1] == [32.0]


async def test_delayed_offer_gets_our_offer_and_the_answer_comes_in_the_ack() -> None:
    results: list[str | None] = []

    async def answer(call: SipCall) -> None:
        assert call.offer is None
        results.append(await call.answer(SDP))
        await call.hangup()

    clock, handler = FakeClock(), RecordingHandler(behaviour=answer)
    async with gateway(handler, clock) as (_server, client):
        client.send(request_text("INVITE", client.port))
        ok = await final(client)
        assert ok.status == 200
        assert ok.body.decode() == SDP
        send_ack(client, ok, body=SDP.replace("yunhui", "terminal"))
        await asyncio.wait_for(handler.call_ended.wait(), 5)
    assert results == [SDP.replace("yunhui", "terminal")]


async def test_info_lower_cseq_and_unknown_dialog() -> None:
    clock, handler = FakeClock(), RecordingHandler()
    async with gateway(handler, clock) as (server, client):
        client.send(request_text("INVITE", client.port, body=SDP, extra="Content-Type: application/sdp"))
        ok = await final(client)
        await ack(client, ok, handler)
        info = (
            "<media_control><vc_primitive><to_encoder><picture_fast_update/>"
            "</to_encoder></vc_primitive></media_control>"
        )
        client.send(
            in_dialog("INFO", client, ok, 5, extra="Content-Type: application/media_control+xml", body=info)
        )
        assert (await final(client, "INFO")).status == 200
        assert handler.infos == [("application/media_control+xml", info.encode())]
        # CSeq 3 after 5: out of order (RFC 3261 §12.2.2).
        client.send(in_dialog("INFO", client, ok, 3))
        assert (await final(client, "INFO")).status == 500
        # A BYE for a dialog that does not exist.
        stray = in_dialog("BYE", client, ok, 9).replace(ok.call_id, "no-such-call")
        client.send(stray)
        assert (await final(client, "BYE")).status == 481
        assert len(server.calls()) == 1
        client.send(in_dialog("BYE", client, ok, 10))
        assert (await final(client, "BYE")).status == 200
        await asyncio.wait_for(handler.call_ended.wait(), 5)
        # Nothing is left once the wait timers (64*T1 over UDP) have run out.
        clock.advance(64 * T1 + 1)
        assert server.calls() == []
        assert server.transactions == (0, 0)


async def test_update_refreshes_the_session_timer() -> None:
    clock, handler = FakeClock(), RecordingHandler()
    timer = "Supported: timer\nSession-Expires: 90;refresher=uac"
    async with gateway(handler, clock) as (_server, client):
        client.send(
            request_text("INVITE", client.port, body=SDP, extra=f"Content-Type: application/sdp\n{timer}")
        )
        ok = await final(client)
        assert ok.headers.get("Session-Expires") == "90;refresher=uac"
        await ack(client, ok, handler)
        clock.advance(50)
        client.send(in_dialog("UPDATE", client, ok, 2, extra=timer))
        update_ok = await final(client, "UPDATE")
        assert update_ok.headers.get("Session-Expires") == "90;refresher=uac"
        # 50 + 59 s: past the first deadline (60 s), before the refreshed one (50 + 60).
        clock.advance(59)
        assert handler.ended == []
        clock.advance(2)
        bye = await client.receive()
        assert isinstance(bye, SipRequest) and bye.method == "BYE"
    assert handler.ended == ["timer"]


async def test_we_refresh_when_the_terminal_does_not_support_timers() -> None:
    clock, handler = FakeClock(), RecordingHandler()
    async with gateway(handler, clock, session_expires=120) as (_server, client):
        client.send(
            request_text(
                "INVITE", client.port, body=SDP, extra="Content-Type: application/sdp\nSession-Expires: 120"
            )
        )
        ok = await final(client)
        assert ok.headers.get("Session-Expires") == "120;refresher=uas"
        assert "timer" not in ok.headers.tokens("Require")
        await ack(client, ok, handler)
        clock.advance(61)
        refresh = await client.receive()
        assert isinstance(refresh, SipRequest) and refresh.method == "INVITE"
        assert refresh.body.decode() == SDP  # the same SDP, the same o= version
        assert refresh.cseq == (1, "INVITE")


async def test_trusted_proxy_asserts_the_endpoint_without_digest() -> None:
    endpoints: list[str | None] = []

    async def note(call: SipCall) -> None:
        endpoints.append(call.endpoint.endpoint_id if call.endpoint else None)
        await call.reject(486)

    clock, handler = FakeClock(), RecordingHandler(behaviour=note)
    async with gateway(handler, clock, trusted_proxies=("127.0.0.1",), allow_guests=False) as (
        _server,
        client,
    ):
        asserted = "P-Asserted-Identity: <sip:room101@proxy.example>\nContent-Type: application/sdp"
        client.send(request_text("INVITE", client.port, body=SDP, extra=asserted))
        assert (await final(client)).status == 486
        client.send(request_text("INVITE", client.port, body=SDP, extra="Content-Type: application/sdp"))
        assert (await final(client)).status == 403
    assert endpoints == ["ep1"]


async def test_a_cancelled_reinvite_is_not_answered_later() -> None:
    clock, handler = FakeClock(), RecordingHandler()
    release = asyncio.Event()
    async with gateway(handler, clock) as (server, client):
        client.send(request_text("INVITE", client.port, body=SDP, extra="Content-Type: application/sdp"))
        ok = await final(client)
        await ack(client, ok, handler)

        async def slow(offer: str) -> str:
            await release.wait()
            return SDP

        handler.calls[0].on_reinvite = slow
        sdp = "Content-Type: application/sdp"
        client.send(in_dialog("INVITE", client, ok, 2, extra=sdp, body=SDP, branch="z9hG4bKre2"))
        client.send(in_dialog("CANCEL", client, ok, 2, branch="z9hG4bKre2"))
        assert (await final(client, "CANCEL")).status == 200
        assert (await final(client, "INVITE")).status == 487
        client.send(in_dialog("ACK", client, ok, 2, branch="z9hG4bKre2"))  # the 487's ACK (same branch)
        release.set()
        # A barrier: the gateway handles datagrams in order, so once this is answered it has the ACK.
        client.send(request_text("OPTIONS", client.port, cseq=50))
        assert (await final(client, "OPTIONS")).status == 200
        clock.advance(64 * T1 + 1)
        assert await client.nothing_within(0.2)
        assert handler.ended == []
        assert len(server.calls()) == 1
