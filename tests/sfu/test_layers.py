"""Simulcast layer logic without a network: order, availability with an injected clock, the choice among
available layers, re-selection when a layer stops, a tile size sent while the subscription is pending, the
REMB publishers get and how far a subscriber's REMB limits its layer."""

from __future__ import annotations

import time

from aiortc.rtp import RtcpPacket, RtcpPsfbPacket

from sfu.events import LayersWanted, RouterEvent, SubscriberNeedsOffer
from sfu.router import Router
from sfu.rtp import RtpHeader, parse_rtp
from sfu.settings import SfuSettings
from sfu.simulcast import (
    CONGESTION_HOLD_S,
    DOWNLINK_HOLD_S,
    LAYER_TIMEOUT_S,
    PAUSE_AFTER_S,
    DownlinkEstimate,
    LayerActivity,
    LayerInfo,
    LayerPauser,
    PublisherRemb,
    layer_order,
    select_layer,
)
from sfu.subscribe import SubscribeConnection
from sfu.track import Track
from tests.sfu.test_subscription import FakeSend, feed, make_subscription, make_track, rtp, vp8_payload

SIZES = {"q": (320, 180), "h": (640, 360), "f": (1280, 720)}


def test_layer_order_comes_from_the_negotiation_until_sizes_are_known() -> None:
    # Nothing decoded yet: the negotiated order, lowest first.
    assert layer_order([(0, 0), (0, 0), (0, 0)]) == [0, 1, 2]
    # The top layer never started: it is still the top, not "lowest" for lack of a size.
    assert layer_order([(320, 180), (640, 360), (0, 0)]) == [0, 1, 2]
    assert layer_order([(0, 0), (640, 360), (0, 0)]) == [0, 1, 2]
    # A publisher listing its encodings highest first, as far as the known sizes tell.
    assert layer_order([(1280, 720), (0, 0), (320, 180)]) == [2, 1, 0]
    # Every size known: the sizes decide, ties keep the negotiated order.
    assert layer_order([(640, 360), (320, 180), (1280, 720)]) == [1, 0, 2]
    assert layer_order([(320, 180), (320, 180)]) == [0, 1]
    assert layer_order([]) == []


def test_track_orders_layers_by_rid_not_by_missing_data() -> None:
    track = make_track(FakeSend(), ["q", "h", "f"])
    q, h, f = (track.layers[r] for r in "qhf")
    (q.width, q.height), (h.width, h.height) = SIZES["q"], SIZES["h"]
    q.bitrate, h.bitrate = 150_000, 500_000  # f: no packets, no size, no bitrate
    assert track.ordered_layers() == [q, h, f]


def test_layer_activity_times_out_with_an_injected_clock() -> None:
    activity = LayerActivity()
    assert not activity.available(0.0)  # never received anything
    activity.observe(0, 1.0)
    assert not activity.available(1.0)  # a count of zero is no packet
    activity.observe(5, 1.0)
    assert activity.available(1.0)
    assert activity.available(1.0 + LAYER_TIMEOUT_S)
    activity.observe(5, 1.3)  # sampled again, nothing new: the time of the last growth stays
    assert not activity.available(1.0 + LAYER_TIMEOUT_S + 0.01)
    activity.observe(6, 2.0)
    assert activity.available(2.2)


def test_select_layer_only_among_available_layers() -> None:
    q = LayerInfo(320, 180, 150_000)
    h = LayerInfo(640, 360, 500_000)
    f_off = LayerInfo(0, 0, 0, available=False)
    h_off = LayerInfo(640, 360, 500_000, available=False)
    # The tile is 620x346: h fills it; f is not being sent anyway.
    assert select_layer([q, h, f_off], max_width=620, max_height=346, bandwidth=0) == 1
    # h stopped: q, the only layer left, whatever the tile or the estimate says.
    assert select_layer([q, h_off, f_off], max_width=620, max_height=346, bandwidth=0) == 0
    assert select_layer([q, h_off, f_off], max_width=0, max_height=0, bandwidth=10**7) == 0
    # No tile limit: the top available layer, never one without packets.
    assert select_layer([q, h, f_off], max_width=0, max_height=0, bandwidth=0) == 1
    # Too little bandwidth for anything: the lowest available layer, not an unavailable one.
    assert (
        select_layer([LayerInfo(0, 0, 0, available=False), h, f_off], max_width=0, max_height=0, bandwidth=1)
        == 1
    )
    # Nothing received yet (just published): every layer is a candidate.
    off = [LayerInfo(0, 0, 0, available=False)] * 3
    assert select_layer(off, max_width=0, max_height=0, bandwidth=0) == 2
    # Every layer went quiet (a paused camera): stay where we are rather than switch for nothing.
    assert select_layer(off, max_width=0, max_height=0, bandwidth=0, current=0) == 0
    assert select_layer([q, h, f_off], max_width=0, max_height=0, bandwidth=0, current=0) == 1


def _seen(track: Track, now: float, *rids: str) -> None:
    """Packets arrived on `rids` since the last sample at `now`."""
    for rid in rids:
        track.layers[rid].packets += 1
    for layer in track.layers.values():
        layer.activity.observe(layer.packets, now)


async def test_router_moves_a_subscription_off_a_layer_that_stopped() -> None:
    rtcp, out = FakeSend(), FakeSend()
    track = make_track(rtcp, ["q", "h", "f"])
    q, h, f = (track.layers[r] for r in "qhf")
    q.ssrc, h.ssrc, f.ssrc = 10, 20, 30
    (q.width, q.height), (h.width, h.height) = SIZES["q"], SIZES["h"]
    subscription = make_subscription(out)
    subscription.max_width, subscription.max_height = 620, 346
    t0 = time.monotonic()  # binding reads the clock itself; the checks below get theirs injected
    _seen(track, t0, "q", "h")
    subscription.bind(track)
    assert subscription.target is h  # f sends nothing: h is the best there is

    await feed(subscription, h, rtp(100, 9000, 20, vp8_payload(1, key=True)))
    assert subscription.current is h and len(out.sent) == 1

    router = Router("m", SfuSettings())
    router.tracks[track.id] = track
    try:
        # h keeps coming: nothing changes.
        track.layers["h"].packets += 1
        await router._check_layers(t0 + 0.3)
        assert subscription.current is h and subscription.target is None
        # h stops for longer than the timeout while q goes on: switch to q at its keyframe, asked for now.
        rtcp.sent.clear()
        track.layers["q"].packets += 1
        await router._check_layers(t0 + 0.3 + LAYER_TIMEOUT_S + 0.1)
        assert subscription.target is q
        pli = RtcpPacket.parse(rtcp.sent[-1])[0]
        assert isinstance(pli, RtcpPsfbPacket) and pli.media_ssrc == q.ssrc
        await feed(subscription, q, rtp(500, 1000, 10, vp8_payload(50, key=False)))  # held back
        await feed(subscription, q, rtp(501, 4000, 10, vp8_payload(51, key=True)))
        assert subscription.current is q and len(out.sent) == 2
        # f starts, and so does h again: the tile wants h (the smallest that fills 620x346) -> back to h.
        for rid in "qhf":
            track.layers[rid].packets += 1
        await router._check_layers(t0 + 2.0)
        assert subscription.target is h
    finally:
        await router.close()


async def test_tile_size_sent_while_the_subscription_is_pending_is_kept() -> None:
    connection = SubscribeConnection("viewer", SfuSettings(), on_needs_offer=lambda: None)
    try:
        track = make_track(FakeSend(), ["q", "h", "f"])
        q, h = track.layers["q"], track.layers["h"]
        (q.width, q.height), (h.width, h.height) = SIZES["q"], SIZES["h"]
        connection.want(track, notify=False)
        await connection.create_offer()
        subscription = connection.subscription_for(track.id)
        assert subscription is not None and subscription.pending is track and subscription.track is None

        # The client shows the video (it has the offer) and reports the tile before its answer arrives.
        connection.set_max_size(track.id, 620, 346)
        assert (subscription.max_width, subscription.max_height) == (620, 346)

        # The answer binds the subscription: the size still holds and picks the layer.
        _seen(track, time.monotonic(), "q", "h", "f")
        subscription.configure(make_subscription(FakeSend()).params)
        assert subscription.track is track and subscription.pending is None
        assert (subscription.max_width, subscription.max_height) == (620, 346)
        assert subscription.target is h
    finally:
        await connection.close()


def test_publisher_remb_is_the_ceiling_unless_the_estimator_backed_off() -> None:
    remb = PublisherRemb(2_500_000)
    # The estimator only follows what it receives (here the lowest layer): that must not cap the publisher.
    assert remb.update(220_000, 0.0) == 2_500_000
    assert remb.update(240_000, 0.5) == 2_500_000
    # Delay-based congestion: the estimate drops; publishers are told the estimate for a while.
    assert remb.update(180_000, 1.0) == 180_000
    assert remb.update(190_000, 1.0 + CONGESTION_HOLD_S - 0.1) == 190_000
    assert remb.update(200_000, 1.0 + CONGESTION_HOLD_S + 0.1) == 2_500_000
    assert PublisherRemb(1_000_000).update(3_000_000, 0.0) == 1_000_000


def test_downlink_estimate_limits_only_when_below_what_it_receives() -> None:
    downlink = DownlinkEstimate()
    # Nothing forwarded yet: the estimate is taken as it is.
    assert downlink.bandwidth(300_000, 0, 0.0) == 300_000
    # 1.5 x the 150 kb/s it receives: the usual ceiling of a receive-side estimate, not a limit of the link
    # -- but the limit just seen still holds.
    assert downlink.bandwidth(235_000, 150_000, 1.0) == 300_000
    assert downlink.bandwidth(235_000, 150_000, 1.0 + DOWNLINK_HOLD_S) == 0
    # Below the bitrate of the layer it gets: congestion; the limit holds, then a better layer is tried again.
    assert downlink.bandwidth(400_000, 700_000, 20.0) == 400_000
    assert downlink.bandwidth(300_000, 150_000, 21.0) == 400_000
    assert downlink.bandwidth(300_000, 150_000, 20.0 + DOWNLINK_HOLD_S + 0.1) == 0
    # An estimate rising past the limit ends the hold at once.
    assert downlink.bandwidth(400_000, 700_000, 40.0) == 400_000
    assert downlink.bandwidth(5_000_000, 150_000, 41.0) == 0


async def test_a_track_published_before_the_first_subscribe_offer_asks_for_one() -> None:
    router = Router("m", SfuSettings())
    events: list[RouterEvent] = []
    router.add_listener(events.append)
    try:
        await router.add_peer("viewer")  # joined, nothing to receive yet: no subscribe offer was made
        router._track_published(make_track(FakeSend(), ["q", "h", "f"]))
        assert SubscriberNeedsOffer("viewer") in events
        assert SubscriberNeedsOffer("p") not in events  # not for the publisher itself
    finally:
        await router.close()


def test_layer_pauser_pauses_after_a_while_and_resumes_at_once() -> None:
    pauser = LayerPauser(["q", "h", "f"])
    t0 = 100.0
    assert pauser.update({"q"}, t0) is None  # everything starts on, and stays on for a first PAUSE_AFTER_S
    assert pauser.update({"q"}, t0 + PAUSE_AFTER_S - 0.1) is None
    assert pauser.update({"q"}, t0 + PAUSE_AFTER_S) == {"q"}
    assert pauser.update({"q"}, t0 + PAUSE_AFTER_S + 1) is None
    assert pauser.update({"q", "f"}, t0 + 10) == {"q", "f"}  # wanted again: at once
    assert pauser.update({"q"}, t0 + 10 + PAUSE_AFTER_S - 0.1) is None  # a tile resized back and forth
    assert pauser.update({"q", "f"}, t0 + 11 + PAUSE_AFTER_S) is None
    assert pauser.update({"q"}, t0 + 11 + 2 * PAUSE_AFTER_S) == {"q"}
    assert pauser.active == {"q"}


async def test_router_tells_the_publisher_which_layers_are_watched() -> None:
    """A viewer with a small tile: after PAUSE_AFTER_S the publisher is told to send q only; the tile grows:
    h (the smallest that fills it) at once, although h sends nothing while paused; nobody watches: q."""
    track = make_track(FakeSend(), ["q", "h", "f"])
    q, h, f = (track.layers[r] for r in "qhf")
    q.ssrc, h.ssrc, f.ssrc = 10, 20, 30
    for rid in "qhf":
        track.layers[rid].width, track.layers[rid].height = SIZES[rid]
    subscription = make_subscription(FakeSend())
    subscription.max_width, subscription.max_height = 320, 180
    t0 = time.monotonic()
    _seen(track, t0, "q", "h", "f")
    subscription.bind(track)
    assert subscription.target is q
    router = Router("m", SfuSettings())
    router.tracks[track.id] = track
    events: list[RouterEvent] = []
    router.add_listener(events.append)
    try:
        _seen(track, t0 + 0.1, "q", "h", "f")
        await router._check_layers(t0 + 0.1)
        assert events == []
        _seen(track, t0 + 0.1 + PAUSE_AFTER_S, "q")
        await router._check_layers(t0 + 0.1 + PAUSE_AFTER_S)
        assert events == [LayersWanted("p", track.id, "1", ("q",))]

        # The tile grows while h and f are paused (unavailable): h is wanted all the same.
        events.clear()
        subscription.max_width, subscription.max_height = 620, 346
        _seen(track, t0 + 5, "q")
        await router._check_layers(t0 + 5)
        assert events == [LayersWanted("p", track.id, "1", ("q", "h"))]
        assert subscription.target is q  # h is not available yet: the subscription stays with q for now
        _seen(track, t0 + 5.1, "q", "h")
        await router._check_layers(t0 + 5.1)
        assert subscription.target is h  # h arrives: switched on its keyframe

        # The viewer leaves: only the lowest layer stays on.
        events.clear()
        subscription.unbind()
        await router._check_layers(t0 + 5.2 + PAUSE_AFTER_S)
        assert events == [LayersWanted("p", track.id, "1", ("q",))]
    finally:
        await router.close()


async def test_a_video_shown_nowhere_is_not_forwarded_until_it_is_shown_again() -> None:
    """video_size 0x0 means "not shown" (docs/protocol.md): nothing is forwarded and no layer is wanted; a
    size again starts over from a keyframe, the numbering continuing. No size ever reported: no limit."""
    rtcp, out = FakeSend(), FakeSend()
    track = make_track(rtcp, ["q", "h", "f"])
    q = track.layers["q"]
    q.ssrc, track.layers["h"].ssrc, track.layers["f"].ssrc = 10, 20, 30
    for rid in "qhf":
        track.layers[rid].width, track.layers[rid].height = SIZES[rid]
    subscription = make_subscription(out)
    t0 = time.monotonic()
    _seen(track, t0, "q", "h", "f")
    subscription.bind(track)
    assert subscription.target is track.layers["f"]  # nothing reported yet: no limit
    subscription.set_max_size(320, 180)
    assert subscription.target is q
    await feed(subscription, q, rtp(100, 1000, 10, vp8_payload(1, key=True)))
    assert subscription.current is q and len(out.sent) == 1

    subscription.set_max_size(0, 0)
    assert subscription.hidden and subscription.current is None and subscription.target is None
    assert subscription.wanted_layers(t0, track.layer_view(t0)) == ()
    await feed(subscription, q, rtp(101, 4000, 10, vp8_payload(2, key=False)))
    await feed(subscription, q, rtp(102, 7000, 10, vp8_payload(3, key=True)))
    assert len(out.sent) == 1 and rtcp.sent == []  # not forwarded, and no keyframe asked for it

    subscription.set_max_size(320, 180)
    assert not subscription.hidden and subscription.target is q
    await feed(subscription, q, rtp(103, 10000, 10, vp8_payload(4, key=False)))  # held back, PLI sent
    assert len(out.sent) == 1 and len(rtcp.sent) == 1
    await feed(subscription, q, rtp(104, 13000, 10, vp8_payload(5, key=True)))
    first, again = (RtpHeader(), RtpHeader())
    assert parse_rtp(out.sent[0], first) and parse_rtp(out.sent[1], again)
    assert (again.seq - first.seq) & 0xFFFF == 1
