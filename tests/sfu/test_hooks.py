"""The aiortc hook surface: names and signatures pinned, and a failing hook never closes the transport."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpsender import RTCRtpSender

from sfu.errors import HookSurfaceChanged
from sfu.hooks import PeerHooks, parse_candidate, verify_hook_points
from sfu.settings import SfuSettings
from sfu.sfu import Sfu
from tests.sfu.conftest import CounterVideoTrack


async def test_hook_points_exist_with_the_expected_signatures() -> None:
    verify_hook_points()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver("video", direction="sendonly")
        sender, dtls = transceiver.sender, transceiver.sender.transport
        assert isinstance(sender._ssrc, int) and isinstance(sender._rtx_ssrc, int)
        assert isinstance(sender._stream_id, str)
        assert f"a=ssrc:{sender._ssrc} " in (await pc.createOffer()).sdp
        for name in ("_handle_rtp_data", "_handle_rtcp_data", "_send_rtp"):
            assert asyncio.iscoroutinefunction(getattr(dtls, name))
    finally:
        await pc.close()


async def _other_signature(self: Any, data: bytes) -> None:
    return None


def test_a_changed_hook_point_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RTCDtlsTransport, "_handle_rtp_data", _other_signature)
    with pytest.raises(HookSurfaceChanged, match="_handle_rtp_data"):
        verify_hook_points()
    with pytest.raises(HookSurfaceChanged):
        Sfu(SfuSettings())


def test_a_missing_hook_point_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(RTCRtpSender, "send")
    with pytest.raises(HookSurfaceChanged, match=r"RTCRtpSender\.send"):
        verify_hook_points()


def test_parse_candidate_accepts_browser_forms() -> None:
    line = "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"
    for text in (line, "a=" + line, line[len("candidate:") :]):
        candidate = parse_candidate(text, "0", 0)
        assert (candidate.ip, candidate.port, candidate.sdpMid) == ("127.0.0.1", 50000, "0")


async def test_an_exception_in_a_hook_is_counted_and_the_transport_survives() -> None:
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    server = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    seen: list[int] = []
    enough = asyncio.Event()

    async def on_rtp(data: bytes, arrival_ms: int) -> None:
        seen.append(len(data))
        if len(seen) <= 5:
            raise RuntimeError("broken forwarding")
        if len(seen) >= 30:
            enough.set()

    async def on_rtcp(packets: list[Any]) -> None:
        raise RuntimeError("broken feedback")

    hooks = PeerHooks(server, on_rtp=on_rtp, on_rtcp=on_rtcp, on_receive=lambda t, p: 1 / 0)
    try:
        client.addTrack(CounterVideoTrack())
        await client.setLocalDescription(await client.createOffer())
        await server.setRemoteDescription(client.localDescription)
        hooks.attach()
        await server.setLocalDescription(await server.createAnswer())
        await client.setRemoteDescription(
            RTCSessionDescription(sdp=server.localDescription.sdp, type="answer")
        )
        await asyncio.wait_for(enough.wait(), 10)
        assert hooks.errors >= 5 + 1  # five RTP failures, the receive() callback, any RTCP failures
        assert server.connectionState == "connected"
        # Media reached the hook, not aiortc's receiver: its bitrate estimator was dropped as dead weight.
        receiver = server.getTransceivers()[0].receiver
        assert getattr(receiver, "_RTCRtpReceiver__remote_bitrate_estimator") is None  # noqa: B009
        assert hooks.connected
        assert await hooks.send(b"\x80\x60\x00\x01" + bytes(8))  # the transport still sends
    finally:
        await client.close()
        await server.close()
    assert not await hooks.send(b"\x80\x60\x00\x02" + bytes(8))  # closed: refused, not raised
