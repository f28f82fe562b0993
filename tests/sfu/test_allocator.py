"""The downlink allocator, pure: one estimate split by priority, the video cap, and tries with backoff."""

from __future__ import annotations

from types import SimpleNamespace

from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

from sfu.allocator import (
    MAX_TRY_INTERVAL_S,
    PAUSE_AFTER_S,
    TIER_SCREEN,
    TIER_SPEAKER,
    TRY_INTERVAL_S,
    TRY_WINDOW_S,
    Demand,
    DownlinkBudget,
    allocate,
)

SIMULCAST = (150_000, 500_000, 1_500_000)
AUDIO = Demand("audio", (40_000,))


def video(**kw: object) -> Demand:
    return Demand("video", SIMULCAST, **kw)  # type: ignore[arg-type]


def test_no_estimate_gives_every_video_its_top_layer_within_the_cap() -> None:
    demands = [AUDIO, *(video(order=i) for i in range(5))]
    result = allocate(demands, 0)
    assert result.layers == (0, 2, 2, 2, 2, 2) and result.next_step == 0
    capped = allocate(demands, 0, max_videos=3)
    assert capped.layers == (0, 2, 2, 2, None, None)
    assert capped.total == 40_000 + 3 * 1_500_000


def test_screen_share_then_speaker_then_large_tiles_then_recent_speakers() -> None:
    demands = [
        video(order=0, recency=5.0, area=320 * 180),  # a thumbnail, spoke at 5 s
        video(order=1, recency=9.0, area=320 * 180),  # a thumbnail, spoke at 9 s
        video(order=2, area=1280 * 720),  # the main tile (never spoke)
        video(order=3, tier=TIER_SPEAKER, area=320 * 180),
        video(order=4, tier=TIER_SCREEN),
        video(order=5, area=320 * 180),  # never spoke: last
    ]
    result = allocate(demands, 0, max_videos=5)
    assert result.layers[5] is None and None not in result.layers[:5]
    # Under a budget, the order decides who gets more: screen, speaker, main tile, recent thumbnails.
    # Everyone's lowest layer first, then the better layers by priority: screen, speaker, the rest.
    result = allocate(demands, 6 * 150_000 + 1_350_000 + 350_000)
    assert result.layers == (0, 0, 0, 1, 2, 0)
    assert result.next_step == 1_000_000  # the speaker's top layer comes next
    # Not everyone's lowest layer fits: the main tile and the most recent speaker before the others.
    tight = allocate(demands, 700_000)
    assert tight.layers == (None, 0, 0, 0, 0, None)
    assert tight.next_step == 150_000  # resuming the next video comes before better layers


def test_audio_is_paid_first_and_never_paused() -> None:
    result = allocate([video(), AUDIO, AUDIO], 100_000)
    assert result.layers == (0, 0, 0)  # the first video keeps its lowest layer even over budget
    result = allocate([video(order=0), video(order=1), AUDIO], 250_000)
    assert result.layers == (0, None, 0)
    assert result.total == 190_000 and result.next_step == 150_000


def test_each_video_gets_the_best_layer_the_rest_of_the_budget_allows() -> None:
    a, b = video(order=0, tier=TIER_SPEAKER), video(order=1)
    assert allocate([a, b], 2_000_000).layers == (2, 1)
    assert allocate([a, b], 800_000).layers == (1, 0)
    result = allocate([a, b], 700_000)
    assert result.layers == (1, 0) and result.next_step == 1_000_000  # a's next layer comes first
    # One layer only (no simulcast): forwarded or paused.
    single = Demand("video", (300_000,), order=2)
    assert allocate([a, single], 400_000).layers == (0, None)
    assert allocate([a, single], 450_000).layers == (0, 0)


def test_a_limiting_estimate_is_the_budget_at_once() -> None:
    budget = DownlinkBudget()
    assert budget.budget(0, 0, 0, 0, 0.0) == 0  # nothing known: no limit
    assert budget.budget(300_000, 0, 0, 0, 0.0) == 0  # a browser's start value, nothing sent: no limit
    assert budget.budget(900_000, 0, 600_000, 0, 0.1) == 0  # above what arrives: still none
    assert budget.budget(400_000, 0, 600_000, 100_000, 0.5) == 400_000  # under it: congestion
    # Heavy loss: what is sent, less the loss, whatever the estimate says.
    assert budget.budget(5_000_000, 128, 400_000, 100_000, 0.6) == 300_000


def test_upgrades_are_tries_one_step_at_a_time_and_back_off_when_they_fail() -> None:
    budget = DownlinkBudget()
    assert budget.budget(650_000, 0, 800_000, 0, 0.0) == 650_000
    # The estimate follows what is sent (1.5 x): it says nothing, the level holds until a try is due.
    assert budget.budget(975_000, 0, 650_000, 1_000_000, 1.0) == 650_000
    now = TRY_INTERVAL_S
    assert budget.budget(975_000, 0, 650_000, 1_000_000, now) == 1_650_000 and budget.tries == 1
    # Within the window the estimate has not caught up yet: the try is held, not judged.
    assert budget.budget(975_000, 0, 1_650_000, 0, now + 0.5) == 1_650_000
    # It fell: the try failed, back to what the estimate says, and the next try waits twice as long.
    assert budget.budget(700_000, 0, 1_650_000, 0, now + 1.0) == 700_000
    assert budget.failed_tries == 1 and budget.interval == 2 * TRY_INTERVAL_S
    later = now + 1.0 + 2 * TRY_INTERVAL_S - 0.1
    assert budget.budget(1_000_000, 0, 650_000, 1_000_000, later) == 700_000
    assert budget.budget(1_000_000, 0, 650_000, 1_000_000, later + 0.1) == 1_700_000
    # This one holds past the window: the interval is back to the start, the next step is tried.
    assert budget.budget(2_500_000, 0, 1_650_000, 500_000, later + 0.1 + TRY_WINDOW_S) == 2_200_000
    assert budget.interval == TRY_INTERVAL_S and budget.tries == 3


def test_failed_tries_back_off_up_to_the_maximum() -> None:
    budget = DownlinkBudget()
    now = 0.0
    budget.budget(500_000, 0, 700_000, 0, now)
    for _ in range(10):
        now += budget.interval
        assert budget.budget(700_000, 0, 500_000, 1_000_000, now) == 1_500_000
        now += 0.5
        assert budget.budget(500_000, 0, 1_500_000, 0, now) == 500_000
    assert budget.interval == MAX_TRY_INTERVAL_S and budget.failed_tries == 10


def test_only_lasting_heavy_loss_pauses_videos() -> None:
    budget = DownlinkBudget()
    a, b = video(order=0), video(order=1)
    level = budget.budget(200_000, 0, 3_000_000, 0, 0.0)  # low (a start value, or noise): lower layers only
    assert level == 200_000 and not budget.pausing
    assert allocate([a, b], level, pause=budget.pausing).layers == (0, 0)
    assert budget.budget(100_000, 0, 300_000, 150_000, 0.5) == 100_000 and not budget.pausing  # it fell
    # Heavy loss (25 % here) for PAUSE_AFTER_S: now videos the budget cannot carry are paused.
    assert budget.budget(5_000_000, 64, 300_000, 150_000, 1.0) == 262_500 and not budget.pausing
    level = budget.budget(5_000_000, 64, 300_000, 150_000, 1.0 + PAUSE_AFTER_S)
    assert budget.pausing and allocate([a, b], 200_000, pause=budget.pausing).layers == (0, None)
    # It stays so until tries brought everything back (nothing left to resume).
    budget.budget(5_000_000, 0, 150_000, 150_000, 10.0)
    assert budget.pausing
    budget.budget(5_000_000, 0, 300_000, 0, 20.0)
    assert not budget.pausing


async def test_one_remb_is_split_across_the_connections_videos() -> None:
    """Wired: the REMB a subscriber sends for its connection (both SSRCs) is one budget. Handed to each
    stream (as before), 1.7 Mbit/s would let both take their 1.5 Mbit/s layer: 3 Mbit/s in all."""
    from sfu.settings import SfuSettings
    from sfu.subscribe import SubscribeConnection
    from sfu.track import Track
    from tests.sfu.test_subscription import FakeSend, make_subscription, make_track

    connection = SubscribeConnection("viewer", SfuSettings(), on_needs_offer=lambda: None)
    try:
        reference = make_track(FakeSend(), ["q", "h", "f"])
        subscriptions = []
        for n, pid in enumerate(("a", "b")):
            track = Track(
                track_id=f"{pid}:1",
                participant_id=pid,
                kind="video",
                source="camera",
                mid="1",
                params=SimpleNamespace(codecs=list(reference.codecs.values()), encodings=[]),
                rtcp_ssrc=42,
                send_rtcp=FakeSend(),
                rids=["q", "h", "f"],
                keyframe_min_interval=0.1,
                keyframe_retry=0.3,
            )
            for i, (rid, size) in enumerate(zip("qhf", ((160, 90), (320, 180), (640, 360)), strict=True)):
                layer = track.layers[rid]
                layer.ssrc = 100 * (n + 1) + i
                layer.width, layer.height = size
                layer.bitrate = SIMULCAST[i]
            subscription = connection._add_subscription(
                connection.pc.addTransceiver("video", direction="sendonly")
            )
            subscription._send = FakeSend()
            subscription._connected = lambda: True
            subscription.params = make_subscription(FakeSend()).params
            subscription.bind(track)
            subscriptions.append(subscription)
        a, b = subscriptions
        assert a.target is a.track.layers["f"] and b.target is b.track.layers["f"]  # type: ignore[union-attr]

        remb = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(1_700_000, [a.ssrc, b.ssrc])
        )
        await connection._on_rtcp([remb], now=10.0)
        assert a.target is a.track.layers["f"]  # type: ignore[union-attr]
        assert b.target is b.track.layers["q"]  # type: ignore[union-attr]
        assert a.allowance + b.allowance <= 1_700_000
        assert not a.paused and not b.paused  # a low estimate lowers layers; it pauses nobody
    finally:
        await connection.close()
