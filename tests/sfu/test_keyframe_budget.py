"""A subscriber's PLI/FIR spends its own keyframe budget; the SFU's own waits obey only the per-layer
minimum interval (time injected)."""

from __future__ import annotations

import itertools
import struct

from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket

from sfu.metrics import METRICS
from sfu.retransmit import TokenBucket
from sfu.settings import SfuSettings
from sfu.subscribe import SubscribeConnection
from tests.sfu.test_nack_bounds import FakeSend, add_subscription, make_track, video_packet

TICK = 0.01


async def test_a_pli_flood_cannot_make_the_publisher_send_keyframes_continuously() -> None:
    settings = SfuSettings()
    assert settings.keyframe_min_interval_ms >= 300
    min_interval = settings.keyframe_min_interval_ms / 1000
    hostile = SubscribeConnection("hostile", settings, on_needs_offer=lambda: None)
    polite = SubscribeConnection("polite", settings, on_needs_offer=lambda: None)
    try:
        upstream = FakeSend()  # the publisher's RTCP: what the SFU asks it for
        track = make_track(upstream, settings)
        layer = track.layers[""]
        spammer = add_subscription(hostile, FakeSend())
        spammer.bind(track)
        joiner = add_subscription(polite, FakeSend())
        requests: list[float] = []  # when a keyframe request went upstream
        keyframe_at: float | None = None  # the publisher answers each request 50 ms later
        joined_at: float | None = None
        joiner_asked_at: float | None = None
        served_at: float | None = None
        refused = METRICS.keyframe_requests_refused
        seq = 0
        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=spammer.ssrc)
        fir = RtcpPsfbPacket(
            fmt=RTCP_PSFB_FIR, ssrc=1, media_ssrc=0, fci=struct.pack("!IB3x", spammer.ssrc, 1)
        )

        for step in range(int(10 / TICK)):  # 10 s, a PLI (or FIR) every 10 ms: 100 a second
            now = 1000.0 + step * TICK
            if keyframe_at is not None and now >= keyframe_at:
                layer.awaiting_keyframe = False  # what PublishConnection does when the keyframe arrives
                keyframe_at = None
                if joined_at is not None:
                    data, h = video_packet(seq, key=True)
                    seq += 1
                    joiner.forward_now(layer, data, h, None, b"\x00\x00\x00")
                    if joiner.current is layer and served_at is None:
                        served_at = now
            await hostile._on_rtcp([pli if step % 2 else fir], now=now)
            # The well-behaved subscriber joins just after the keyframe of a request the flood caused (the
            # worst moment: the layer asked 60 ms ago) and waits for a keyframe of its own: the hot path
            # asks on each held-back packet, unbudgeted.
            if joined_at is None and step * TICK >= 5 and requests and 0.055 < now - requests[-1] < 0.065:
                joiner.bind(track)
                joined_at = now
            if joined_at is not None and joiner.current is None:
                data, h = video_packet(seq, key=False)
                seq += 1
                sent = len(upstream.sent)
                if joiner.forward_now(layer, data, h, None, b"\x00\x00\x00"):
                    await track.request_keyframe(layer, now)
                if len(upstream.sent) > sent and joiner_asked_at is None:
                    joiner_asked_at = now
            if len(upstream.sent) > len(requests):
                requests.append(now)
                keyframe_at = now + 0.05

        # The per-layer interval bounds everybody together; the flood's own budget bounds it far lower.
        assert len(requests) <= 10 / min_interval + 1
        budget = settings.subscriber_keyframe_budget
        assert len(requests) <= budget + budget + 2  # its bucket's burst, its refill over 10 s, the joiner
        assert all(b - a >= min_interval - 1e-9 for a, b in itertools.pairwise(requests))
        # The flood's wishes that would have gone upstream, counted (the rest fell within the interval).
        assert METRICS.keyframe_requests_refused - refused > 500
        # The joiner got its request within the minimum interval of the flood's last one, and its keyframe.
        assert joined_at is not None and joiner_asked_at is not None
        assert joiner_asked_at - joined_at <= min_interval + TICK
        assert served_at is not None and served_at - joiner_asked_at <= 0.05 + TICK
    finally:
        await hostile.close()
        await polite.close()


async def test_wishes_that_ride_on_the_outstanding_request_cost_no_budget() -> None:
    settings = SfuSettings()
    track = make_track(FakeSend(), settings)
    layer = track.layers[""]
    budget = TokenBucket(rate=0.0, burst=2)
    await track.request_keyframe(layer, 10.0, budget=budget)  # sent: one token
    for i in range(20):  # the subscriber repeats its PLI while it waits: rides on the outstanding one
        await track.request_keyframe(layer, 10.0 + i * 0.01, budget=budget)
    assert layer.keyframe_requests == 1 and budget.tokens == 1
    await track.request_keyframe(layer, 10.4, budget=budget)  # unanswered past the retry: asked again
    assert layer.keyframe_requests == 2 and budget.tokens == 0
    refused = METRICS.keyframe_requests_refused
    await track.request_keyframe(layer, 10.8, budget=budget)
    assert layer.keyframe_requests == 2 and METRICS.keyframe_requests_refused == refused + 1
    await track.request_keyframe(layer, 10.8)  # the SFU's own wish (a switch) is not budgeted
    assert layer.keyframe_requests == 3


async def test_a_joining_subscriber_is_asked_for_sooner_once_per_track() -> None:
    """A subscription's first keyframe of a track is asked for within keyframe_join_interval_ms of the last
    request (a join storm waits about one round trip, not 300 ms); a re-shown tile, a layer switch or the
    subscriber's own PLI after that obey keyframe_min_interval_ms, so the shortcut cannot be repeated."""
    settings = SfuSettings()
    join_interval = settings.keyframe_join_interval_ms / 1000
    assert join_interval < settings.keyframe_min_interval_ms / 1000
    connection = SubscribeConnection("late", settings, on_needs_offer=lambda: None)
    try:
        upstream = FakeSend()
        track = make_track(upstream, settings)
        track.keyframe_join_interval = join_interval
        layer = track.layers[""]
        await track.request_keyframe(layer, 10.0)  # someone else's request; its keyframe arrives at once
        layer.awaiting_keyframe = False
        subscription = add_subscription(connection, FakeSend())
        subscription.bind(track)
        assert subscription.joining

        async def wish(now: float, seq: int) -> None:
            data, h = video_packet(seq, key=False)
            if subscription.forward_now(layer, data, h, None, b"\x00\x00\x00"):
                await track.request_keyframe(layer, now, join=subscription.joining)

        await wish(10.05, 1)
        assert len(upstream.sent) == 1  # within the join interval of the last request
        await wish(10.0 + join_interval + 0.001, 2)
        assert len(upstream.sent) == 2  # not 300 ms later
        layer.awaiting_keyframe = False
        data, h = video_packet(3, key=True)
        subscription.forward_now(layer, data, h, None, b"\x00\x00\x00")
        assert subscription.current is layer and not subscription.joining
        # The tile is hidden and shown again: waiting for a keyframe once more, but not as a join.
        subscription.set_max_size(0, 0)
        subscription.set_max_size(320, 240)
        for i, now in enumerate((10.2, 10.3, 10.35)):
            await wish(now, 4 + i)
        assert len(upstream.sent) == 2  # within 300 ms of the request at 10.1
        await wish(10.0 + join_interval + settings.keyframe_min_interval_ms / 1000 + 0.002, 8)
        assert len(upstream.sent) == 3
    finally:
        await connection.close()
