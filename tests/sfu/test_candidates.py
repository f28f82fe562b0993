"""Trickled ICE candidates: which addresses the SFU checks, and how many it holds per PeerConnection."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiortc import RTCPeerConnection

from sfu.bounds import address_kind, candidate_allowed
from sfu.metrics import METRICS
from sfu.peer import Peer
from sfu.router import Router
from sfu.settings import SfuSettings


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.10.20", "link_local"),
        ("fe80::1", "link_local"),
        ("fe80::1%eth0", "link_local"),
        ("febf::1", "link_local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff02::fb", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "broadcast"),
        ("192.168.1.20", "routable"),
        ("10.0.0.5", "routable"),
        ("203.0.113.7", "routable"),
        ("2001:db8::7", "routable"),
        ("fec0::1", "routable"),
        ("0b2c3d4e-aaaa-bbbb-cccc-111122223333.local", "name"),
    ],
)
def test_address_kinds(host: str, kind: str) -> None:
    assert address_kind(host) == kind


def test_which_candidates_are_checked() -> None:
    for host in ("127.0.0.1", "::1", "169.254.1.1", "fe80::1", "0.0.0.0"):
        assert not candidate_allowed(host, allow_local=False), host
        assert candidate_allowed(host, allow_local=True), host
    for host in ("224.0.0.1", "255.255.255.255"):  # never one peer, whatever the setting
        assert not candidate_allowed(host, allow_local=True), host
    for host in ("192.168.1.20", "198.51.100.1", "2001:db8::1", "abc.local"):
        assert candidate_allowed(host, allow_local=False), host


async def _publishing_peer(router: Router) -> Peer:
    """A peer whose publish connection is negotiated (it never connects: no answer reaches the client)."""
    peer = await router.add_peer("alice")
    client = RTCPeerConnection()
    try:
        client.addTransceiver("audio", direction="sendonly")
        await client.setLocalDescription(await client.createOffer())
        # Like a browser's trickling offer: aiortc's own says a=end-of-candidates, after which aiortc ignores
        # trickled ones.
        offer = client.localDescription.sdp.replace("a=end-of-candidates\r\n", "")
        await peer.answer_publish(offer, {"0": "mic"})
    finally:
        await client.close()
    return peer


def _held(peer: Peer) -> list[tuple[str, int]]:
    """The remote candidates the publish connection's ICE transport holds."""
    connection = peer.publish_connection
    assert connection is not None
    transport = connection.pc.getTransceivers()[0].receiver.transport.transport
    return [(c.ip, c.port) for c in transport.getRemoteCandidates()]


@pytest.fixture
async def routers() -> AsyncIterator[list[Router]]:
    made: list[Router] = []
    yield made
    for router in made:
        await router.close()


def _candidate(host: str, port: int) -> str:
    return f"candidate:1 1 udp 2130706431 {host} {port} typ host"


async def test_a_loopback_candidate_is_ignored_by_default(routers: list[Router]) -> None:
    router = Router("m", SfuSettings())
    routers.append(router)
    peer = await _publishing_peer(router)
    before, dropped = _held(peer), METRICS.candidates_dropped
    await peer.add_remote_candidate("publish", _candidate("127.0.0.1", 50000), "0", 0)  # no error
    await peer.add_remote_candidate("publish", _candidate("169.254.3.4", 50000), "0", 0)
    assert _held(peer) == before
    assert METRICS.candidates_dropped == dropped + 2


async def test_a_loopback_candidate_is_checked_when_allowed(routers: list[Router]) -> None:
    router = Router("m", SfuSettings(allow_loopback_candidates=True))
    routers.append(router)
    peer = await _publishing_peer(router)
    dropped = METRICS.candidates_dropped
    await peer.add_remote_candidate("publish", _candidate("127.0.0.1", 50000), "0", 0)
    assert ("127.0.0.1", 50000) in _held(peer)
    assert METRICS.candidates_dropped == dropped


async def test_candidates_beyond_the_cap_are_ignored(routers: list[Router]) -> None:
    router = Router("m", SfuSettings(allow_loopback_candidates=True, max_remote_candidates=5))
    routers.append(router)
    peer = await _publishing_peer(router)
    signalled = len(_held(peer))  # the offer's own candidates count too
    assert signalled < 5
    dropped = METRICS.candidates_dropped
    for i in range(20):
        await peer.add_remote_candidate("publish", _candidate("127.0.0.1", 51000 + i), "0", 0)  # no error
    held = _held(peer)
    assert len(held) == 5
    assert ("127.0.0.1", 51000) in held and ("127.0.0.1", 51000 + 5 - signalled) not in held
    assert METRICS.candidates_dropped == dropped + 20 - (5 - signalled)
