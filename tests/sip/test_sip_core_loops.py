"""Loop detection (RFC 3261 §8.2.2.2): an initial INVITE that comes again on another branch while the first is
in progress (a loop, or a fork merged back to us) is answered 482; the first goes on."""

from __future__ import annotations

import asyncio

from signaling.sip.api import SipCall
from tests.sip.sip_core_support import (
    SDP,
    RecordingHandler,
    UdpClient,
    request_text,
    running_server,
    settings,
)


def _invite(port: int, branch: str, cseq: int = 1) -> str:
    return request_text(
        "INVITE",
        port,
        branch=branch,
        call_id="loop-1",
        cseq=cseq,
        body=SDP,
        extra="Content-Type: application/sdp",
    )


async def test_a_merged_invite_gets_482_and_the_first_goes_on() -> None:
    ringing = asyncio.Event()

    async def hold(call: SipCall) -> None:
        await call.ringing()
        ringing.set()
        await call.wait_ended()  # never answered: the first INVITE stays in progress

    handler = RecordingHandler(behaviour=hold)
    async with (
        running_server(settings(allow_guests=True), handler=handler) as server,
        UdpClient(server.ports["udp"]) as client,
    ):
        client.send(_invite(client.port, "z9hG4bKfirst"))
        await asyncio.wait_for(ringing.wait(), 5)
        handler.got_call.clear()
        client.send(_invite(client.port, "z9hG4bKsecond"))
        response = await client.response()
        while response.status < 400:
            response = await client.response()
        assert response.status == 482 and "branch=z9hG4bKsecond" in response.vias[0]
        assert len(handler.calls) == 1 and server.calls() == [handler.calls[0]]
        assert not handler.got_call.is_set()
        # Another CSeq (a new request of the same caller) is not a merge: it reaches the calls layer.
        client.send(_invite(client.port, "z9hG4bKthird", cseq=2))
        await asyncio.wait_for(handler.got_call.wait(), 5)
        assert len(handler.calls) == 2
