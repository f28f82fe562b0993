"""Dial-out to a registered Endpoint (SipServer.invite); a raw UDP client stands in for the terminal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from signaling.sip.api import CallGone, SipCall
from signaling.sip.message import Headers, SipRequest, SipResponse, response_to
from signaling.sip.server import SipServer
from tests.sip.sip_core_support import (
    SDP,
    FakeCredentials,
    RecordingHandler,
    UdpClient,
    endpoint,
    register_once,
    request_text,
    running_server,
    settings,
)

TERMINAL_SDP = SDP.replace("o=yunhui", "o=terminal")


async def next_request(client: UdpClient, method: str) -> SipRequest:
    while True:
        message = await client.receive()
        if isinstance(message, SipRequest) and message.method == method:
            return message


def answer(request: SipRequest, client: UdpClient, status: int, *, body: str = "") -> SipResponse:
    headers = [("Contact", f"<sip:room101@127.0.0.1:{client.port}>")]
    if body:
        headers.append(("Content-Type", "application/sdp"))
    response = response_to(request, status, headers=headers, body=body.encode(), to_tag="term1")
    client.send(response.serialize())
    return response


async def registered(server: SipServer, client: UdpClient) -> None:
    status, _ = await register_once(client, "room101", "secret")
    assert status == 200


def contact_of(invite: SipRequest) -> str:
    return (invite.headers.get("Contact") or "").strip("<>")


def credentials() -> FakeCredentials:
    return FakeCredentials(room101=endpoint("room101", "secret"))


@contextlib.asynccontextmanager
async def terminal() -> AsyncIterator[tuple[SipServer, UdpClient]]:
    """A server and a terminal registered to it as Endpoint ep1."""
    server_context = running_server(settings(), credentials(), RecordingHandler())
    async with server_context as server, UdpClient(server.ports["udp"]) as client:
        await registered(server, client)
        yield server, client


async def test_dial_out_is_answered_then_the_terminal_hangs_up() -> None:
    async with terminal() as (server, client):
        dialing = asyncio.create_task(server.invite("ep1", SDP))
        invite = await next_request(client, "INVITE")
        assert invite.uri == f"sip:room101@127.0.0.1:{client.port}"
        assert invite.body.decode() == SDP
        answer(invite, client, 180)
        answer(invite, client, 200, body=TERMINAL_SDP)
        call: SipCall = await asyncio.wait_for(dialing, 5)  # an OutgoingCall is a SipCall
        assert call.offer == TERMINAL_SDP
        assert server.calls() == [call]
        ack = await next_request(client, "ACK")
        assert ack.cseq == (1, "ACK")
        # The terminal hangs up: a BYE in the dialog (From/To swapped, our tag in To).
        bye = SipRequest(
            method="BYE",
            uri=contact_of(invite),
            headers=Headers.of(
                [
                    ("Via", f"SIP/2.0/UDP 127.0.0.1:{client.port};branch=z9hG4bKbye1;rport"),
                    ("From", f"{invite.headers.get('To')};tag=term1"),
                    ("To", invite.headers.get("From") or ""),
                    ("Call-ID", invite.call_id),
                    ("CSeq", "1 BYE"),
                ]
            ),
        )
        client.send(bye.serialize())
        assert await asyncio.wait_for(call.wait_ended(), 5) == "bye"
        assert server.calls() == []


async def test_dial_out_hangup_from_the_meeting_sends_bye() -> None:
    async with terminal() as (server, client):
        dialing = asyncio.create_task(server.invite("ep1", SDP))
        invite = await next_request(client, "INVITE")
        answer(invite, client, 200, body=TERMINAL_SDP)
        call = await asyncio.wait_for(dialing, 5)
        await next_request(client, "ACK")
        hanging = asyncio.create_task(call.hangup())
        bye = await next_request(client, "BYE")
        assert bye.call_id == invite.call_id
        assert bye.cseq == (2, "BYE")
        client.send(response_to(bye, 200).serialize())
        await asyncio.wait_for(hanging, 5)
        assert await call.wait_ended() == "hangup"


async def test_dial_out_refused_or_not_registered() -> None:
    async with running_server(settings(), credentials(), RecordingHandler()) as server:
        with pytest.raises(LookupError):
            await server.invite("ep1", SDP)
        async with UdpClient(server.ports["udp"]) as client:
            await registered(server, client)
            dialing = asyncio.create_task(server.invite("ep1", SDP))
            invite = await next_request(client, "INVITE")
            answer(invite, client, 486)
            with pytest.raises(CallGone) as gone:
                await asyncio.wait_for(dialing, 5)
            assert gone.value.reason == "unanswered"
            ack = await next_request(client, "ACK")  # the transaction ACKs the error
            assert ack.cseq == (1, "ACK")


async def test_cancelling_the_dial_sends_cancel() -> None:
    async with terminal() as (server, client):
        dialing = asyncio.create_task(server.invite("ep1", SDP))
        invite = await next_request(client, "INVITE")
        answer(invite, client, 180)
        dialing.cancel()
        cancel = await next_request(client, "CANCEL")
        assert cancel.cseq == (1, "CANCEL")
        assert cancel.vias[0] == invite.vias[0]


async def test_path_of_a_proxied_registration_becomes_the_route_of_the_dial_out() -> None:
    sip = settings(trusted_proxies=("127.0.0.1",))
    async with (
        running_server(sip, credentials(), RecordingHandler()) as server,
        UdpClient(server.ports["udp"]) as client,
    ):
        extra = (
            "Expires: 300\nSupported: path\nPath: <sip:edge.example;lr>\nP-Asserted-Identity: <sip:room101@x>"
        )
        client.send(request_text("REGISTER", client.port, extra=extra))
        ok = await client.response()
        assert ok.status == 200  # the proxy did the digest
        assert ok.headers.get_all("Path") == ["<sip:edge.example;lr>"]
        dialing = asyncio.create_task(server.invite("ep1", SDP))
        invite = await next_request(client, "INVITE")
        assert invite.headers.get_all("Route") == ["<sip:edge.example;lr>"]
        answer(invite, client, 603)
        with pytest.raises(CallGone):
            await asyncio.wait_for(dialing, 5)
