"""The per-subscriber rewrite in process: numbering, extensions, keyframe gating, switches, RTX, SR."""

from __future__ import annotations

import itertools
import struct
from types import SimpleNamespace
from typing import Any

from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    pack_remb_fci,
)

from sfu.nack import NackTracker
from sfu.rtp import (
    KEYFRAME_DETECTORS,
    URI_ABS_SEND_TIME,
    URI_MID,
    ExtensionTemplate,
    RtpHeader,
    Vp8Descriptor,
    av1_is_keyframe,
    build_extensions,
    get_extension,
    parse_rtp,
    parse_vp8,
    vp8_is_keyframe,
    vp8_keyframe_size,
    vp9_is_keyframe,
)
from sfu.settings import SfuSettings
from sfu.subscribe import SubscribeConnection
from sfu.subscription import Subscription
from sfu.track import Track

VP8_IN, RTX_IN, VP8_OUT, RTX_OUT = 97, 98, 100, 101
FEEDBACK = [RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli")]


def vp8(pt: int) -> RTCRtpCodecParameters:
    return RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=pt, rtcpFeedback=FEEDBACK)


def rtx(pt: int, apt: int) -> RTCRtpCodecParameters:
    return RTCRtpCodecParameters(
        mimeType="video/rtx", clockRate=90000, payloadType=pt, parameters={"apt": apt}
    )


def vp8_payload(picture_id: int, *, key: bool, start: bool = True) -> bytes:
    descriptor = bytes((0x90 if start else 0x80, 0x80, 0x80 | (picture_id >> 8), picture_id & 0xFF))
    if key:
        return descriptor + b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 320, 240) + b"key"
    return descriptor + b"\x01\x00\x00delta"


def rtp(seq: int, ts: int, ssrc: int, payload: bytes) -> bytes:
    ext = build_extensions([(4, b"1")])
    return struct.pack("!BBHII", 0x90, 0x80 | VP8_IN, seq, ts, ssrc) + ext + payload


class FakeSend:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def __call__(self, data: bytes) -> bool:
        self.sent.append(data)
        return True


def make_track(send_rtcp: FakeSend, rids: list[str]) -> Track:
    params = RTCRtpReceiveParameters(
        codecs=[
            RTCRtpCodecParameters(
                mimeType="video/VP8", clockRate=90000, payloadType=VP8_IN, rtcpFeedback=FEEDBACK
            ),
            RTCRtpCodecParameters(
                mimeType="video/rtx", clockRate=90000, payloadType=RTX_IN, parameters={"apt": 97}
            ),
        ],
        muxId="1",
    )
    return Track(
        track_id="p:1",
        participant_id="p",
        kind="video",
        source="camera",
        mid="1",
        params=params,
        rtcp_ssrc=42,
        send_rtcp=send_rtcp,
        rids=rids,
        keyframe_min_interval=0.1,
        keyframe_retry=0.3,
    )


def make_subscription(send: FakeSend) -> Subscription:
    transceiver: Any = SimpleNamespace(kind="video", sender=SimpleNamespace(_ssrc=1111, _rtx_ssrc=2222))
    subscription = Subscription(transceiver, send)
    subscription.params = RTCRtpSendParameters(
        codecs=[
            RTCRtpCodecParameters(
                mimeType="video/VP8", clockRate=90000, payloadType=VP8_OUT, rtcpFeedback=FEEDBACK
            ),
            RTCRtpCodecParameters(
                mimeType="video/rtx", clockRate=90000, payloadType=RTX_OUT, parameters={"apt": VP8_OUT}
            ),
        ],
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri=URI_MID),
            RTCRtpHeaderExtensionParameters(id=3, uri=URI_ABS_SEND_TIME),
        ],
        muxId="5",
        rtcp=RTCRtcpParameters(cname="sfu"),
    )
    return subscription


async def feed(subscription: Subscription, layer: Any, data: bytes) -> None:
    h = RtpHeader()
    assert parse_rtp(data, h)
    layer.ring[h.seq % len(layer.ring)] = data  # what PublishConnection does on arrival
    await subscription.forward(layer, data, h, None, b"\x01\x02\x03")


def parsed(data: bytes) -> RtpHeader:
    h = RtpHeader()
    assert parse_rtp(data, h)
    return h


async def test_gating_rewrite_switch_rtx_and_sender_report() -> None:
    rtcp, out = FakeSend(), FakeSend()
    track = make_track(rtcp, ["q", "f"])
    low, high = track.layers["q"], track.layers["f"]
    low.ssrc, high.ssrc = 10, 20
    low.width, low.height, high.width, high.height = 80, 60, 320, 240
    subscription = make_subscription(out)
    subscription.max_width, subscription.max_height = 80, 60  # a small tile: the low layer
    subscription.bind(track)
    assert subscription.target is low and subscription.current is None

    # Attach: a delta frame is held back and a keyframe is asked for, once within the rate limit.
    await feed(subscription, low, rtp(500, 9000, 10, vp8_payload(7, key=False)))
    await feed(subscription, low, rtp(501, 12000, 10, vp8_payload(8, key=False)))
    assert out.sent == [] and subscription.dropped_before_keyframe == 2
    assert len(rtcp.sent) == 1
    pli = RtcpPacket.parse(rtcp.sent[0])[0]
    assert isinstance(pli, RtcpPsfbPacket) and pli.media_ssrc == 10

    await feed(subscription, high, rtp(900, 5000, 20, vp8_payload(300, key=True)))  # not watched: ignored
    await feed(subscription, low, rtp(502, 15000, 10, vp8_payload(9, key=True)))
    await feed(subscription, low, rtp(503, 18000, 10, vp8_payload(10, key=False)))
    assert len(out.sent) == 2
    first, second = parsed(out.sent[0]), parsed(out.sent[1])
    assert (first.ssrc, first.pt) == (1111, VP8_OUT)
    assert (second.seq - first.seq) & 0xFFFF == 1 and (second.ts - first.ts) & 0xFFFFFFFF == 3000
    assert get_extension(out.sent[0], first, 1) == b"5"  # mid rewritten to the subscriber's
    assert get_extension(out.sent[0], first, 3) == b"\x01\x02\x03"  # fresh abs-send-time
    assert get_extension(out.sent[0], first, 4) is None  # the publisher's other extensions are not copied
    d0, d1 = Vp8Descriptor(), Vp8Descriptor()
    assert parse_vp8(out.sent[0], first.payload_start, first.payload_end, d0)
    assert parse_vp8(out.sent[1], second.payload_start, second.payload_end, d1)
    assert d1.picture_id == (d0.picture_id + 1) & 0x7FFF

    # The tile grows: switch to the high layer on its keyframe, numbering continues.
    subscription.max_width, subscription.max_height = 320, 240
    assert subscription.reselect_layer() is high
    await feed(subscription, high, rtp(901, 8000, 20, vp8_payload(301, key=False)))
    await feed(subscription, low, rtp(504, 21000, 10, vp8_payload(11, key=False)))  # still the low layer
    await feed(subscription, high, rtp(902, 11000, 20, vp8_payload(302, key=True)))
    await feed(subscription, low, rtp(505, 24000, 10, vp8_payload(12, key=False)))  # no longer forwarded
    await feed(subscription, high, rtp(903, 14000, 20, vp8_payload(303, key=False)))
    headers = [parsed(p) for p in out.sent]
    assert [(h.seq - headers[0].seq) & 0xFFFF for h in headers] == [0, 1, 2, 3, 4]
    assert {h.ssrc for h in headers} == {1111}
    assert all((b.ts - a.ts) & 0xFFFFFFFF < 0x80000000 for a, b in itertools.pairwise(headers))
    pids = []
    for packet, h in zip(out.sent, headers, strict=True):
        d = Vp8Descriptor()
        assert parse_vp8(packet, h.payload_start, h.payload_end, d)
        pids.append(d.picture_id)
    assert [(p - pids[0]) & 0x7FFF for p in pids] == [0, 1, 2, 3, 4]
    assert subscription.current is high and subscription.switches == 2

    # NACK -> RTX: new SSRC and PT, original sequence number in front of the payload.
    assert await subscription.retransmit(headers[3].seq)
    rtx = parsed(out.sent[-1])
    assert (rtx.ssrc, rtx.pt) == (2222, RTX_OUT)
    assert struct.unpack_from("!H", out.sent[-1], rtx.payload_start)[0] == headers[3].seq
    assert out.sent[-1][rtx.payload_start + 2 :] == out.sent[3][headers[3].payload_start :]
    assert not await subscription.retransmit((headers[0].seq - 100) & 0xFFFF)  # before the switch
    assert not await subscription.retransmit((headers[4].seq + 3) & 0xFFFF)  # never sent
    assert subscription.retransmit_misses == 2

    # The publisher's SR, translated: same NTP instant, RTP time moved by our timestamp offset.
    high.sr_ntp, high.sr_rtp = 0x1234567890ABCDEF, 14000
    report = subscription.sender_report(high)
    assert report is not None
    sr = RtcpPacket.parse(report)[0]
    assert isinstance(sr, RtcpSrPacket) and sr.ssrc == 1111
    assert sr.sender_info.ntp_timestamp == high.sr_ntp
    assert sr.sender_info.rtp_timestamp == headers[4].ts  # the packet with RTP time 14000
    assert subscription.sender_report(low) is None  # not the layer being forwarded

    # Moderation mute stops at once; resuming waits for a keyframe again.
    sent = len(out.sent)
    track.set_forwarding(False)
    await feed(subscription, high, rtp(904, 17000, 20, vp8_payload(304, key=True)))
    assert len(out.sent) == sent and subscription.current is None and subscription.target is None
    track.set_forwarding(True)
    await feed(subscription, high, rtp(905, 20000, 20, vp8_payload(305, key=False)))
    assert len(out.sent) == sent
    await feed(subscription, high, rtp(906, 23000, 20, vp8_payload(306, key=True)))
    assert len(out.sent) == sent + 1
    assert (parsed(out.sent[-1]).seq - headers[4].seq) & 0xFFFF == 1


async def test_a_retransmission_does_not_move_the_vp8_picture_state_back() -> None:
    def payload(picture_id: int, tl0: int, *, key: bool) -> bytes:
        # X with I and L: 15-bit picture id, then TL0PICIDX.
        descriptor = bytes((0x90, 0xC0, 0x80 | (picture_id >> 8), picture_id & 0xFF, tl0))
        return descriptor + (
            b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 320, 240) if key else b"\x01\x00\x00"
        )

    rtcp, out = FakeSend(), FakeSend()
    track = make_track(rtcp, [])
    layer = track.layers[""]
    layer.ssrc = 10
    subscription = make_subscription(out)
    subscription.bind(track)
    for i in range(3):
        await feed(subscription, layer, rtp(700 + i, 9000 + 3000 * i, 10, payload(40 + i, 7 + i, key=i == 0)))
    state = (subscription.last_pid, subscription.last_tl0)
    assert await subscription.retransmit(parsed(out.sent[0]).seq)
    assert (subscription.last_pid, subscription.last_tl0) == state


def test_keyframe_requests_ride_on_the_outstanding_one_and_resume_when_it_arrives() -> None:
    layer = make_track(FakeSend(), []).layers[""]
    layer.ssrc = 10
    assert layer.keyframe_request(100.0) is not None  # first wish: asked at once
    assert layer.keyframe_request(100.05) is None  # within the minimum interval
    assert layer.keyframe_request(100.2) is None  # outstanding: its keyframe will serve this wish
    assert layer.keyframe_request(100.31) is not None  # unanswered for the retry time: asked again
    layer.awaiting_keyframe = False  # the publisher's keyframe arrived (PublishConnection clears it)
    assert layer.keyframe_request(100.38) is None  # but a keyframe storm stays bounded
    assert layer.keyframe_request(100.42) is not None  # a late joiner waits no fixed throttle
    assert layer.keyframe_requests == 3


async def test_a_packet_held_back_before_the_keyframe_is_repaired_on_nack() -> None:
    rtcp, out = FakeSend(), FakeSend()
    track = make_track(rtcp, [])
    layer = track.layers[""]
    layer.ssrc = 10
    subscription = make_subscription(out)
    subscription.bind(track)
    # The keyframe's second packet overtakes its first (an upstream retransmission): it is held back...
    await feed(subscription, layer, rtp(201, 9000, 10, vp8_payload(3, key=False, start=False)))
    await feed(subscription, layer, rtp(200, 9000, 10, vp8_payload(3, key=True)))
    await feed(subscription, layer, rtp(202, 12000, 10, vp8_payload(4, key=False)))
    first, third = parsed(out.sent[0]), parsed(out.sent[1])
    assert (third.seq - first.seq) & 0xFFFF == 2  # ...so the subscriber sees a hole
    # ...which its NACK repairs from the ingress ring, rewritten like any other packet.
    assert await subscription.retransmit((first.seq + 1) & 0xFFFF)
    repaired = parsed(out.sent[-1])
    assert (repaired.ssrc, repaired.pt) == (2222, RTX_OUT)
    assert struct.unpack_from("!H", out.sent[-1], repaired.payload_start)[0] == (first.seq + 1) & 0xFFFF
    assert repaired.ts == first.ts
    assert not await subscription.retransmit((first.seq - 1) & 0xFFFF)  # before the switch: nothing
    assert subscription.retransmit_misses == 1


def test_rtp_helpers() -> None:
    key = vp8_payload(5, key=True)
    assert vp8_is_keyframe(key, 0, len(key))
    assert not vp8_is_keyframe(vp8_payload(5, key=False), 0, len(key))
    assert not vp8_is_keyframe(vp8_payload(5, key=True, start=False), 0, len(key))
    assert vp8_keyframe_size(key, 0, len(key)) == (320, 240)
    template = ExtensionTemplate(1, "7", 2, 1)
    block = template.render(b"\x85")
    assert len(block) % 4 == 0
    packet = struct.pack("!BBHII", 0x90, 96, 1, 2, 3) + block + b"x"
    h = parsed(packet)
    assert get_extension(packet, h, 1) == b"7" and get_extension(packet, h, 2) == b"\x85"
    no_level = struct.pack("!BBHII", 0x90, 96, 1, 2, 3) + template.render(None) + b"x"
    h = parsed(no_level)
    assert get_extension(no_level, h, 1) == b"7" and get_extension(no_level, h, 2) is None
    assert not parse_rtp(b"\x80\x60", RtpHeader())
    assert not parse_rtp(struct.pack("!BBHII", 0x90, 96, 1, 2, 3) + b"\xbe\xde\x00\x05", RtpHeader())


def test_vp9_and_av1_keyframes_are_told_apart_from_delta_frames() -> None:
    # VP9 descriptor: I P L F B E V Z. Key picture start: B set, P clear (and spatial layer 0 if L is set).
    assert vp9_is_keyframe(bytes([0x88, 0x12, 0xAA]), 0, 3)  # I + B, 7-bit picture id
    assert not vp9_is_keyframe(bytes([0xC8, 0x12, 0xAA]), 0, 3)  # P: inter-predicted
    assert not vp9_is_keyframe(bytes([0x80, 0x12, 0xAA]), 0, 3)  # not the beginning of a frame
    assert vp9_is_keyframe(bytes([0xA8, 0x81, 0x23, 0x00, 0x05]), 0, 5)  # 15-bit id, L: SID 0
    assert not vp9_is_keyframe(bytes([0xA8, 0x81, 0x23, 0x02, 0x05]), 0, 5)  # SID 1: not the base layer
    assert not vp9_is_keyframe(b"", 0, 0)
    # AV1 aggregation header Z Y W W N - - -: N starts a new coded video sequence.
    assert av1_is_keyframe(bytes([0x18, 0x0A]), 0, 2)
    assert not av1_is_keyframe(bytes([0x10, 0x32]), 0, 2)
    assert KEYFRAME_DETECTORS["vp9"] is vp9_is_keyframe and KEYFRAME_DETECTORS["av1"] is av1_is_keyframe


def test_nack_tracker_repeats_until_the_packet_arrives() -> None:
    nack = NackTracker(retry_interval=0.05, max_age=0.25)
    assert not nack.add(100, 0.0)
    assert nack.add(103, 0.0)
    assert nack.due(0.0) == [101, 102]
    assert not nack.add(104, 0.01)  # not due again yet
    assert nack.add(105, 0.06)
    assert nack.due(0.06) == [101, 102]
    assert not nack.add(101, 0.07)  # the retransmission arrived
    assert nack.add(106, 0.2)
    assert nack.due(0.2) == [102]
    assert nack.due(0.3) == []  # too old: given up, the caller asks for a keyframe
    assert not nack.missing and nack.abandoned == 1
    assert not nack.add(10_000, 0.4)  # a jump, not a loss
    assert not nack.missing


async def test_subscriber_feedback_fir_pli_remb_nack() -> None:
    connection = SubscribeConnection("viewer", SfuSettings(), on_needs_offer=lambda: None)
    try:
        rtcp = FakeSend()
        track = make_track(rtcp, ["q", "f"])
        low, high = track.layers["q"], track.layers["f"]
        low.ssrc, high.ssrc = 10, 20
        low.width, low.height, low.bitrate = 80, 60, 60_000
        high.width, high.height, high.bitrate = 320, 240, 400_000
        subscription = connection._add_subscription(
            connection.pc.addTransceiver("video", direction="sendonly")
        )
        out = FakeSend()
        subscription._send = out
        subscription._connected = lambda: True  # as if DTLS were up: this connection never negotiates
        reference = make_subscription(FakeSend())
        subscription.params = reference.params
        subscription.bind(track)
        assert subscription.target is high  # no estimate, no tile limit: the top layer

        fir = RtcpPsfbPacket(
            fmt=RTCP_PSFB_FIR, ssrc=1, media_ssrc=0, fci=struct.pack("!IB3x", subscription.ssrc, 1)
        )
        await connection._on_rtcp([fir])
        assert connection.keyframe_requests_received == 1
        request = RtcpPacket.parse(rtcp.sent[-1])[0]
        assert isinstance(request, RtcpPsfbPacket) and request.media_ssrc == 20

        remb = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(100_000, [subscription.ssrc])
        )
        await connection._on_rtcp([remb])
        assert subscription.remb == 100_000 and subscription.target is low

        await feed(subscription, low, rtp(300, 1000, 10, vp8_payload(1, key=True)))
        sent = parsed(out.sent[0])
        nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=subscription.ssrc)
        nack.lost = [sent.seq]
        await connection._on_rtcp([nack])
        assert connection.nacks_received == 1 and subscription.retransmitted == 1
        assert parsed(out.sent[-1]).ssrc == subscription.rtx_ssrc

        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=subscription.ssrc)
        await connection._on_rtcp([pli])  # within the rate limit: counted, not sent again
        assert connection.keyframe_requests_received == 2
    finally:
        await connection.close()
