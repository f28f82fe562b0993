"""What a subscriber's NACKs may cost, the RTT they are deduplicated over, RTX report blocks, and the RTT
the SFU's own NACKs to publishers are repeated at (time injected everywhere)."""

from __future__ import annotations

import copy
import struct
import time
from typing import Any

import pytest
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import (
    RTCP_RTPFB_NACK,
    RtcpPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
)

from sfu.metrics import METRICS, SfuMetrics
from sfu.nack import NackTracker
from sfu.publish import PublishConnection
from sfu.retransmit import ResendMemory, TokenBucket, nack_answers, rtt_from_report
from sfu.rtp import URI_ABS_SEND_TIME, URI_MID, RtpHeader, parse_rtp
from sfu.settings import SfuSettings
from sfu.subscribe import SubscribeConnection
from sfu.subscription import Subscription
from sfu.track import Track

FEEDBACK = [RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli")]
MEDIA_SSRC = 10
BODY = bytes(1100)


def codecs(pt: int, rtx_pt: int) -> list[RTCRtpCodecParameters]:
    return [
        RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=pt, rtcpFeedback=FEEDBACK),
        RTCRtpCodecParameters(
            mimeType="video/rtx", clockRate=90000, payloadType=rtx_pt, parameters={"apt": pt}
        ),
    ]


class FakeSend:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def __call__(self, data: bytes) -> bool:
        self.sent.append(data)
        return True


def make_track(send_rtcp: FakeSend, settings: SfuSettings, ring_size: int = 512) -> Track:
    track = Track(
        track_id="p:1",
        participant_id="p",
        kind="video",
        source="camera",
        mid="1",
        params=RTCRtpReceiveParameters(codecs=codecs(97, 98), muxId="1"),
        rtcp_ssrc=42,
        send_rtcp=send_rtcp,
        rids=[],
        keyframe_min_interval=settings.keyframe_min_interval_ms / 1000,
        keyframe_retry=settings.keyframe_retry_ms / 1000,
        ring_size=ring_size,
    )
    track.layers[""].ssrc = MEDIA_SSRC
    return track


def add_subscription(connection: SubscribeConnection, out: FakeSend) -> Subscription:
    """A subscription of `connection` as negotiated, sending into `out`, its connection taken as up."""
    subscription = connection._add_subscription(connection.pc.addTransceiver("video", direction="sendonly"))
    subscription._send = out
    subscription._connected = lambda: True
    subscription.params = RTCRtpSendParameters(
        codecs=codecs(100, 101),
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri=URI_MID),
            RTCRtpHeaderExtensionParameters(id=3, uri=URI_ABS_SEND_TIME),
        ],
        muxId="5",
        rtcp=RTCRtcpParameters(cname="sfu"),
    )
    return subscription


def video_packet(seq: int, *, key: bool) -> tuple[bytes, RtpHeader]:
    picture = seq & 0x7FFF
    descriptor = bytes((0x90, 0x80, 0x80 | (picture >> 8), picture & 0xFF))
    frame = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 320, 240) if key else b"\x01\x00\x00"
    data = struct.pack("!BBHII", 0x80, 97, seq, 3000 * (seq // 5), MEDIA_SSRC) + descriptor + frame + BODY
    h = RtpHeader()
    assert parse_rtp(data, h)
    return data, h


async def feed(subscription: Subscription, track: Track, count: int) -> None:
    """`count` packets from a keyframe on, kept in the layer's ring as PublishConnection does."""
    layer = track.layers[""]
    for seq in range(count):
        data, h = video_packet(seq, key=seq == 0)
        layer.ring[seq % len(layer.ring)] = data
        await subscription.forward(layer, data, h, None, b"\x01\x02\x03")


def nack_of(ssrc: int, seqs: list[int]) -> RtcpRtpfbPacket:
    """The NACK as it arrives: serialized and parsed by aiortc (which expands each FCI to its 17 numbers)."""
    packet = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=ssrc)
    packet.lost = seqs
    (parsed,) = RtcpPacket.parse(bytes(packet))
    assert isinstance(parsed, RtcpRtpfbPacket)
    return parsed


def original_seq(rtx: bytes) -> int:
    h = RtpHeader()
    assert parse_rtp(rtx, h)
    return int(struct.unpack_from("!H", rtx, h.payload_start)[0])


def counters() -> SfuMetrics:
    return copy.copy(METRICS)


async def test_a_1200_byte_nack_of_5000_packets_costs_a_bounded_moment() -> None:
    settings = SfuSettings(nack_history=4096)
    connection = SubscribeConnection("viewer", settings, on_needs_offer=lambda: None)
    try:
        out = FakeSend()
        subscription = add_subscription(connection, out)
        subscription.last_seq = 10_000  # our numbering continues from here: no wrap within the NACK
        track = make_track(FakeSend(), settings, ring_size=settings.nack_history)
        subscription.bind(track)
        await feed(subscription, track, settings.nack_history)  # the ring is full
        assert len(out.sent) == settings.nack_history
        last = subscription.last_seq
        seqs = list(range(last - 297 * 17 + 1, last + 1))  # 297 FCIs, every bit of every mask set
        assert len(bytes(RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=1, lost=seqs))) == 1200
        nack = nack_of(subscription.ssrc, seqs)
        assert len(nack.lost) == 5049
        cap = settings.nack_seqs_per_packet
        before, sent = counters(), len(out.sent)

        started = time.perf_counter()
        await connection._on_rtcp([nack], now=100.0)
        blocked = time.perf_counter() - started

        # Nothing in the handler suspends: its wall time is how long the event loop was blocked.
        # (Before the bound: ~33 ms here, every packet of the ring rewritten and resent.)
        assert blocked < 0.005, f"the event loop was blocked {blocked * 1000:.1f} ms"
        assert len(out.sent) - sent == cap  # the newest `cap` numbers asked for, all in the ring
        resent = {original_seq(p) for p in out.sent[sent:]}
        assert resent == set(seqs[-cap:])
        assert METRICS.nacks_received - before.nacks_received == 1
        assert METRICS.nack_seqs_requested - before.nack_seqs_requested == 5049
        assert METRICS.retransmissions - before.retransmissions == cap
        assert METRICS.retransmissions_suppressed - before.retransmissions_suppressed == 5049 - cap

        # The same NACK within one RTT (the default until one is measured): those copies may still be on
        # their way, nothing is resent.
        assert connection.rtt.samples == 0 and connection.rtt.value == settings.default_rtt_ms / 1000
        sent = len(out.sent)
        await connection._on_rtcp([nack], now=100.0 + 0.05)
        assert len(out.sent) == sent
        assert METRICS.retransmissions_suppressed - before.retransmissions_suppressed == 2 * 5049 - cap
        # After the RTT they are resent again.
        await connection._on_rtcp([nack], now=100.0 + 0.15)
        assert len(out.sent) - sent == cap
        assert METRICS.retransmissions - before.retransmissions == 2 * cap
    finally:
        await connection.close()


async def test_the_cap_is_per_datagram_and_per_second() -> None:
    settings = SfuSettings(nack_seqs_per_packet=10, nack_seqs_per_second=50)
    connection = SubscribeConnection("viewer", settings, on_needs_offer=lambda: None)
    try:
        out = FakeSend()
        subscription = add_subscription(connection, out)
        subscription.last_seq = 1000
        track = make_track(FakeSend(), settings)
        subscription.bind(track)
        await feed(subscription, track, 500)
        first = subscription.last_seq - 499
        # Two NACK packets in one datagram share its cap.
        sent = len(out.sent)
        one, two = (nack_of(subscription.ssrc, [first + i, first + i + 1]) for i in (0, 100))
        big = nack_of(subscription.ssrc, list(range(first + 200, first + 220)))
        await connection._on_rtcp([one, two, big], now=10.0)
        assert len(out.sent) - sent == 10
        # Then the subscriber's bucket: 50 a second, 40 left of the first second's worth.
        sent = len(out.sent)
        for i in range(10):
            await connection._on_rtcp(
                [nack_of(subscription.ssrc, [first + 300 + 10 * i + j for j in range(10)])], now=10.0
            )
        assert len(out.sent) - sent == 40
        sent = len(out.sent)
        await connection._on_rtcp(
            [nack_of(subscription.ssrc, list(range(first + 400, first + 410)))], now=10.125
        )
        assert len(out.sent) - sent == 6  # 125 ms later: 6.25 tokens
    finally:
        await connection.close()


def test_resend_memory_and_token_bucket_are_bounded() -> None:
    memory = ResendMemory(size=4)
    for seq in range(10):
        memory.mark(seq, 1.0)
    assert len(memory) == 4 and memory.recent(9, 1.05, 0.1) and not memory.recent(0, 1.05, 0.1)
    memory.mark(100, 10.0)  # entries older than any RTT are dropped as newer ones come
    assert len(memory) == 1
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # never above the burst
    # Wrapped numbers from aiortc's FCI expansion; duplicates count once.
    answer, refused = nack_answers(
        [65535, 65536, 65536], ResendMemory(), TokenBucket(10, 10), limit=8, window=0.1, now=0.0
    )
    assert answer == [65535, 0] and refused == 1


async def test_rr_blocks_of_the_rtx_stream_do_not_hide_the_media_loss_and_rrs_give_the_rtt() -> None:
    settings = SfuSettings()
    connection = SubscribeConnection("viewer", settings, on_needs_offer=lambda: None)
    try:
        out = FakeSend()
        subscription = add_subscription(connection, out)
        track = make_track(FakeSend(), settings)
        subscription.bind(track)
        await feed(subscription, track, 20)
        layer = track.layers[""]
        # The publisher's SR arrived (and was forwarded to the subscriber translated) at 50.0.
        layer.sr_ntp, layer.sr_at = 0x0123456789ABCDEF, 50.0
        lsr = 0x456789AB

        def block(ssrc: int, fraction_lost: int, *, lsr: int = 0, dlsr: int = 0) -> RtcpReceiverInfo:
            return RtcpReceiverInfo(
                ssrc=ssrc,
                fraction_lost=fraction_lost,
                packets_lost=0,
                highest_sequence=0,
                jitter=0,
                lsr=lsr,
                dlsr=dlsr,
            )

        media = block(subscription.ssrc, 64, lsr=lsr, dlsr=int(0.5 * 65536))
        for reports in ([media, block(subscription.rtx_ssrc, 0)], [block(subscription.rtx_ssrc, 0), media]):
            await connection._on_rtcp([RtcpRrPacket(ssrc=1, reports=reports)], now=50.62)
            assert subscription.fraction_lost == 64
        # 0.62 s after we sent the SR, 0.5 s of it held at the subscriber: a 120 ms round trip.
        assert connection.rtt.samples == 2 and connection.rtt.value == pytest.approx(0.12)
        # A block answering some other SR, or none, is no sample.
        await connection._on_rtcp(
            [RtcpRrPacket(ssrc=1, reports=[block(subscription.ssrc, 64, lsr=lsr + 1)])], now=51.0
        )
        assert connection.rtt.samples == 2

        # The measured RTT is the dedupe window: resent again after 120 ms, not after the 100 ms default.
        nack = nack_of(subscription.ssrc, [subscription.last_seq])
        await connection._on_rtcp([nack], now=60.0)
        sent = len(out.sent)
        await connection._on_rtcp([nack], now=60.11)
        assert len(out.sent) == sent
        await connection._on_rtcp([nack], now=60.13)
        assert len(out.sent) == sent + 1
        # A NACK naming the RTX stream is not mapped onto media numbers.
        await connection._on_rtcp([nack_of(subscription.rtx_ssrc, [subscription.last_seq])], now=70.0)
        assert len(out.sent) == sent + 1
    finally:
        await connection.close()


def test_rtt_from_report() -> None:
    assert rtt_from_report(0x00010000, 65536, 0x0000000100000000, 10.0, 11.25) == 0.25
    assert rtt_from_report(0, 0, 0x0000000100000000, 10.0, 11.0) is None  # no SR received yet
    assert rtt_from_report(0x00010000, 0, 0x0000000100000000, 10.0, 13.0) is None  # stale: not a round trip
    assert rtt_from_report(0x00010000, 4 * 65536, 0x0000000100000000, 10.0, 11.0) is None  # negative


def test_publisher_nacks_repeat_at_the_measured_round_trip() -> None:
    nack = NackTracker(rtt=0.1, rtt_factor=1.5, min_retry=0.05, max_retry=0.5)
    assert nack.retry_interval == pytest.approx(0.15)  # the default RTT until measured
    nack.add(100, 0.0)
    assert nack.add(102, 0.0) and nack.due(0.0) == [101]
    nack.add(101, 0.3, rtx=True)  # the retransmission came 300 ms after its one NACK
    assert nack.rtt == pytest.approx(0.3) and nack.retry_interval == pytest.approx(0.45)
    # A loss now is asked for again after 450 ms, not every 50 ms (a WHIP encoder would resend each time).
    assert nack.add(104, 1.0) and nack.due(1.0) == [103]
    assert [t for t in (1.05, 1.2, 1.4, 1.46) if nack.due(t)] == [1.46]
    # Karn: 103 was NACKed twice, its copy cannot be matched to one NACK: no sample.
    nack.add(103, 1.5, rtx=True)
    assert list(nack.samples) == [pytest.approx(0.3)]
    # A reordered packet (arrives 2 ms after the NACK its gap caused) cannot shrink the interval...
    assert nack.add(106, 2.0) and nack.due(2.0) == [105]
    nack.add(105, 2.002)
    assert nack.rtt == pytest.approx(0.3)
    # ...and an arrival on the media stream is not sampled at all when the caller says so.
    assert nack.add(108, 3.0) and nack.due(3.0) == [107]
    nack.add(107, 3.4, rtx=False)
    assert len(nack.samples) == 2
    # Bounds: a long path repeats at the ceiling, a LAN at the floor (never faster than the old fixed 50 ms).
    far, near = NackTracker(min_retry=0.05, max_retry=0.5), NackTracker(min_retry=0.05, max_retry=0.5)
    for tracker, rtt in ((far, 0.8), (near, 0.004)):
        tracker.add(1, 0.0)
        tracker.add(3, 0.0)
        assert tracker.due(0.0) == [2]
        tracker.add(2, rtt, rtx=True)
    assert far.retry_interval == 0.5 and near.retry_interval == 0.05
    assert NackTracker(retry_interval=0.05).retry_interval == 0.05  # a fixed interval


async def test_publish_connection_repeats_nacks_with_the_settings() -> None:
    settings = SfuSettings(
        default_rtt_ms=200, nack_rtt_factor=2.0, nack_retry_min_ms=30, nack_retry_max_ms=300
    )
    connection = PublishConnection(
        "publisher",
        settings,
        on_track=lambda t: None,
        on_track_ended=lambda t: None,
        on_audio_level=lambda p, x: None,
    )
    try:
        rtcp = FakeSend()
        connection.hooks.send = rtcp  # type: ignore[method-assign]
        track: Any = make_track(FakeSend(), settings)
        nack = NackTracker()
        nack.add(1, 0.0)
        nack.add(3, 0.0)
        before = METRICS.nacks_sent
        await connection._send_nacks(track.layers[""], nack, 0.0)
        assert nack.configured and nack.retry_interval == pytest.approx(0.3)  # 200 ms x 2, at most 300 ms
        (sent,) = RtcpPacket.parse(rtcp.sent[-1])
        assert isinstance(sent, RtcpRtpfbPacket) and sent.lost == [2] and sent.media_ssrc == MEDIA_SSRC
        assert METRICS.nacks_sent == before + 1
    finally:
        await connection.close()
