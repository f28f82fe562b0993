"""Forwarding between real aiortc peers on 127.0.0.1: media is decoded only at the test's receiving peers."""

from __future__ import annotations

import threading
import time
from typing import Any

import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import pytest

from tests.sfu.conftest import Meeting, assert_consecutive, ignore_remb

pytestmark = pytest.mark.slow


def _decoder_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.endswith("-decoder")]


async def test_three_publishers_three_subscribers(meeting: Meeting, monkeypatch: pytest.MonkeyPatch) -> None:
    encoders: list[Any] = []
    decoders: list[Any] = []
    real_encoder, real_decoder = aiortc.rtcrtpsender.get_encoder, aiortc.rtcrtpreceiver.get_decoder

    def spy_encoder(codec: Any) -> Any:
        encoders.append(codec)
        return real_encoder(codec)

    def spy_decoder(codec: Any) -> Any:
        decoders.append(codec)
        return real_decoder(codec)

    monkeypatch.setattr(aiortc.rtcrtpsender, "get_encoder", spy_encoder)
    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", spy_decoder)

    starts = {"a": 1000, "b": 2000, "c": 3000}
    clients = [await meeting.client(pid) for pid in starts]
    for client in clients:
        await client.publish(video_start=starts[client.id], amplitude=0.1)
    for client in clients:
        await client.subscribe()

    def done(client: Any) -> bool:
        others = [s for pid, s in starts.items() if pid != client.id]
        return (
            all(len(client.counters_from(s)) >= 30 for s in others)
            and len(client.audio_frames) == 2
            and all(n >= 50 for n in client.audio_frames.values())
        )

    for client in clients:
        await client.wait_until(lambda c=client: done(c), within=30)

    for client in clients:
        assert len(client.frames) == 2, f"{client.id} got video from {len(client.frames)} mids"
        for pid, start in starts.items():
            counters = client.counters_from(start)
            if pid == client.id:
                assert not counters, f"{client.id} received its own video"
            else:
                assert_consecutive(counters, f"{client.id} <- {pid}")

    # Nothing on the SFU side encoded or decoded: the codec factories ran only for the test peers
    # (3 publishers x 2 encoders, 3 subscribers x 4 decoders), and so did the decoder threads.
    assert len(encoders) == 6
    assert len(decoders) == 12
    assert len(_decoder_threads()) == 12
    for peer in meeting.router.peers.values():
        for connection in (peer.publish_connection, peer.subscribe_connection):
            assert connection is not None
            assert connection.hooks.errors == 0
            for transceiver in connection.pc.getTransceivers():
                assert transceiver.receiver._RTCRtpReceiver__decoder_thread is None
                assert transceiver.sender._RTCRtpSender__encoder is None
        # The copies went out through the C loop (sfu/_fanout.c), none lost to an SRTP or socket error.
        route = peer.subscribe_connection.hooks.route if peer.subscribe_connection else None
        assert route is not None and route.sent > 100 and route.errors == 0


async def test_late_subscriber_gets_a_keyframe_quickly(meeting: Meeting) -> None:
    publisher = await meeting.client("pub")
    await publisher.publish(video_start=5000, amplitude=None)
    assert publisher.video is not None and publisher.pub_pc is not None
    # Only a relayed request may produce the late subscriber's keyframe.
    ignore_remb(publisher.pub_pc)
    while publisher.video.sent < 45:  # three seconds of video before anybody watches
        publisher.video.progress.clear()
        await publisher.video.progress.wait()

    late = await meeting.client("late")
    started = time.monotonic()
    await late.subscribe()
    await late.wait_until(lambda: bool(late.frames), within=5)
    first = min(t for frames in late.frames.values() for t, _ in frames)
    assert first - started < 0.5, f"first frame {first - started:.3f} s after subscribing"

    track = next(iter(meeting.router.tracks.values()))
    assert track.layers[""].keyframe_requests >= 1  # the keyframe came from a relayed request
    await late.wait_until(lambda: len(late.counters_from(5000)) >= 15, within=10)
    assert_consecutive(late.counters_from(5000), "late <- pub")

    # Receiver reports carry LSR/DLSR: the publisher computes its round-trip time from them.
    sender = next(t.sender for t in publisher.pub_pc.getTransceivers() if t.kind == "video")
    deadline = time.monotonic() + 10
    rtt = None
    while rtt is None:
        assert time.monotonic() < deadline, "no round-trip time from the SFU's receiver reports"
        publisher.video.progress.clear()
        await publisher.video.progress.wait()
        stats = await sender.getStats()
        rtt = next((s.roundTripTime for s in stats.values() if s.type == "remote-inbound-rtp"), None)
    assert 0 <= rtt < 1
    # The publisher's sender reports reach the subscriber, translated to the SFU's SSRC and counters.
    late_connection = meeting.router.peers["late"].subscribe_connection
    assert late_connection is not None and late.sub_pc is not None
    subscription = late_connection.subscription_for(track.id)
    assert subscription is not None
    receiver = next(t.receiver for t in late.sub_pc.getTransceivers() if t.kind == "video")
    remote = None
    while remote is None:
        assert time.monotonic() < deadline, "no sender report reached the subscriber"
        publisher.video.progress.clear()
        await publisher.video.progress.wait()
        stats = await receiver.getStats()
        remote = next((s for s in stats.values() if s.type == "remote-outbound-rtp"), None)
    assert remote.ssrc == subscription.ssrc
    assert 0 < remote.packetsSent <= subscription.packets

    # And the SFU's bandwidth estimate went to the publisher (REMB from abs-send-time).
    connection = meeting.router.peers["pub"].publish_connection
    assert connection is not None
    while connection.rembs_sent < 1:
        assert time.monotonic() < deadline, "no REMB sent to the publisher"
        publisher.video.progress.clear()
        await publisher.video.progress.wait()
