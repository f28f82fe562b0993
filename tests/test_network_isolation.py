"""WebRTC in tests stays on 127.0.0.1 (tests/conftest.py's _loopback_ice), whatever interfaces there are."""

from __future__ import annotations

import re

import aioice
import aioice.ice
import pytest
from aioice import stun
from aiortc import RTCConfiguration, RTCPeerConnection

HOST_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ host", re.MULTILINE)


def _candidate(host: str) -> aioice.Candidate:
    return aioice.Candidate(
        foundation="1", component=1, transport="udp", priority=2130706431, host=host, port=50000, type="host"
    )


class RecordingProtocol:
    """Stands in for aioice's StunProtocol: keeps the STUN messages a Connection answers with."""

    def __init__(self) -> None:
        self.sent: list[tuple[stun.Message, tuple[str, int]]] = []

    def send_stun(self, message: stun.Message, addr: tuple[str, int]) -> None:
        self.sent.append((message, addr))


async def test_an_offer_carries_only_loopback_host_candidates() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio", direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        hosts = HOST_CANDIDATE.findall(pc.localDescription.sdp)
    finally:
        await pc.close()
    assert hosts == ["127.0.0.1"]


@pytest.mark.parametrize(
    "host", ["192.0.2.1", "fd00::1", "::1", "4f1c0a55-7a3b-4d0e-9b1a-2c5e8d7f6a10.local"]
)
async def test_remote_candidates_other_than_loopback_are_ignored(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chromium also offers its other interfaces' addresses, and could offer mDNS names: resolving one is
    # multicast on the real network.
    async def no_mdns(subscriber: object) -> None:
        pytest.fail(f"aioice set out to resolve {host} by mDNS")

    monkeypatch.setattr(aioice.ice, "get_or_create_mdns_protocol", no_mdns)
    connection = aioice.Connection(ice_controlling=True)
    try:
        await connection.add_remote_candidate(_candidate(host))
        await connection.add_remote_candidate(_candidate("127.0.0.1"))
        assert [c.host for c in connection.remote_candidates] == ["127.0.0.1"]
    finally:
        await connection.close()


async def test_connectivity_checks_from_other_addresses_go_unanswered() -> None:
    # An unauthenticated Binding request is answered with 400 when it is heard at all.
    connection = aioice.Connection(ice_controlling=False)
    protocol = RecordingProtocol()
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    try:
        connection.request_received(request, ("192.0.2.1", 50000), protocol)  # type: ignore[arg-type]
        assert protocol.sent == []
        connection.request_received(request, ("127.0.0.1", 50000), protocol)  # type: ignore[arg-type]
        assert [(m.attributes["ERROR-CODE"][0], addr) for m, addr in protocol.sent] == [
            (400, ("127.0.0.1", 50000))
        ]
    finally:
        await connection.close()
