"""The ownership tree Sfu -> Router -> Peer: idempotent, cascading close; clear errors for bad input."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sfu.errors import BadRequest, Closed
from sfu.hooks import make_peer_connection
from sfu.settings import IceServer, SfuSettings
from sfu.sfu import Sfu
from tests.sfu.conftest import Meeting


def test_settings_defaults_and_validation() -> None:
    settings = SfuSettings()
    assert settings.ice_servers == []
    assert (settings.keyframe_min_interval_ms, settings.keyframe_retry_ms) == (300, 300)
    with pytest.raises(ValidationError):
        SfuSettings(unknown=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        SfuSettings(keyframe_min_interval_ms=1)


async def test_ice_servers_come_from_settings() -> None:
    settings = SfuSettings(ice_servers=[IceServer(urls=["stun:127.0.0.1:3478"])])
    pc = make_peer_connection(settings)
    try:
        servers = pc._RTCPeerConnection__configuration.iceServers
        assert [s.urls for s in servers] == [["stun:127.0.0.1:3478"]]
    finally:
        await pc.close()
    pc = make_peer_connection(SfuSettings())
    try:
        assert pc._RTCPeerConnection__configuration.iceServers == []  # never aiortc's default public STUN
    finally:
        await pc.close()


async def test_close_cascades_and_is_idempotent() -> None:
    sfu = Sfu(SfuSettings())
    router = sfu.router("m1")
    assert sfu.router("m1") is router
    peer = await router.add_peer("alice")
    offer = await peer.create_subscribe_offer()
    assert offer.startswith("v=0")
    await router.close()
    await router.close()
    assert "m1" not in sfu.routers  # a closed router leaves its Sfu
    with pytest.raises(Closed):
        await router.add_peer("bob")
    with pytest.raises(Closed):
        await peer.create_subscribe_offer()
    other = sfu.router("m2")
    await other.add_peer("carol")
    await sfu.close()
    await sfu.close()
    assert not other.peers
    with pytest.raises(Closed):
        sfu.router("m3")


async def test_bad_input_is_a_clear_error(meeting: Meeting) -> None:
    router = meeting.router
    peer = await router.add_peer("alice")
    with pytest.raises(BadRequest, match="already has a peer"):
        await router.add_peer("alice")
    with pytest.raises(BadRequest, match="participant_id"):
        await router.add_peer("")
    with pytest.raises(BadRequest, match="offer_sdp"):
        await peer.answer_publish("v=0\r\nnonsense", {})
    with pytest.raises(BadRequest, match="offer_sdp"):
        await peer.answer_publish("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n", {})
    with pytest.raises(BadRequest, match="sources"):
        await peer.answer_publish("v=0\r\n", {"0": "webcam"})
    with pytest.raises(BadRequest, match="sources: no audio or video m-section with mid '7'"):
        await peer.answer_publish("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n", {"7": "mic"})
    with pytest.raises(BadRequest, match="answer_sdp"):
        await peer.accept_subscribe_answer("v=0\r\n")
    await peer.create_subscribe_offer()
    with pytest.raises(BadRequest, match="outstanding"):
        await peer.create_subscribe_offer()
    with pytest.raises(BadRequest, match="candidate"):
        await peer.add_remote_candidate("subscribe", "candidate:garbage", "0", 0)
    with pytest.raises(BadRequest, match="track_id"):
        peer.set_forwarding("nobody:0", False)
    with pytest.raises(BadRequest, match="width"):
        peer.set_max_size("nobody:0", -1, 10)
    listener = await router.add_peer("viewer", publish=False)
    with pytest.raises(BadRequest, match="may not publish"):
        await listener.answer_publish("v=0\r\n", {})
    candidate = "candidate:1 1 udp 1 127.0.0.1 9 typ host"
    with pytest.raises(BadRequest, match="publish connection has not been negotiated"):
        await listener.add_remote_candidate("publish", candidate, "0", 0)
    with pytest.raises(BadRequest, match="pc: 'both'"):
        await listener.add_remote_candidate("both", candidate, "0", 0)  # type: ignore[arg-type]
    with pytest.raises(BadRequest, match="sdp_mid"):
        await peer.add_remote_candidate("subscribe", candidate, None, None)
    await router.remove_peer("alice")
    await router.remove_peer("alice")  # unknown: nothing to do
