"""Acceptance 13 (research/recording.md §5): the hot standby. The primary (a copied H.264 publisher) stops:
the standby (a looping normalised video) is on air within standby_after_s + one segment and the playlist
never goes 2 × target without a new segment; the primary comes back and takes over after the hold; the
manual override pins either. Injected clock: 40 s of channel in a few seconds."""

from __future__ import annotations

import itertools
from pathlib import Path

import m3u8  # type: ignore[import-untyped]
import numpy as np
import pytest

from recording.live.channel import LiveChannel, MeetingSource, PlaylistSource
from recording.live.settings import LiveSettings
from tests.live.live_engine_media import FakeClock, FakeRouter, Publisher, decode, joined, make_item, run

pytestmark = pytest.mark.timeout(120)

BLUE = (41, 240, 110)


def is_standby(u: np.ndarray) -> bool:
    return float(u[u.shape[0] // 2 :].mean()) > 200


async def test_standby_takes_over_and_hands_back(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = LiveSettings(window_segments=60, standby_after_s=3.0, standby_hold_s=10.0)
    channel = LiveChannel(tmp_path / "ch", settings, clock=clock)
    router = FakeRouter()
    primary = Publisher(router, width=160, height=96)
    backup = make_item(tmp_path / "backup.mp4", 4.0, BLUE, size=(160, 96))
    listed: list[float] = []
    channel.on_segment(lambda segment, path: listed.append(clock.now))
    changes: list[tuple[float, str]] = []
    start = clock.now
    dies, returns = start + 8.0, start + 20.0

    def script(now: float) -> None:
        on_air = channel.status().on_air
        if not changes or changes[-1][1] != on_air:
            changes.append((now, on_air))

    try:
        channel.set_source(MeetingSource(router.tap, primary.video_id, (primary.audio_id,)))
        channel.set_standby(PlaylistSource((backup,), loop=True, label="backup"))
        channel.go_live()
        primary.begin(start)
        await run(channel, clock, dies, [primary], at=script, step=0.2)
        await run(channel, clock, returns, [], at=script, step=0.2)  # the primary is silent
        primary.begin(returns)
        await run(channel, clock, start + 36.0, [primary], at=script, step=0.2)
        if changes[0][1] == "none":  # until the primary's first keyframe
            changes.pop(0)
        roles = [(round(t - start, 2), role) for t, role in changes]
        assert [r for _, r in roles] == ["primary", "standby", "primary"], roles
        standby_at = changes[1][0]
        assert standby_at - dies <= settings.standby_after_s + settings.segment_seconds, roles
        assert standby_at - dies >= settings.standby_after_s - 0.2, roles
        back_at = changes[2][0]
        assert settings.standby_hold_s <= back_at - returns <= settings.standby_hold_s + 1.0, roles
        # The playlist never went 2 × target without a new segment.
        gaps = [b - a for a, b in itertools.pairwise(listed)]
        assert max(gaps) < 2 * 2, gaps

        # The manual override: on pins the standby (the primary is healthy), auto hands back after the hold.
        channel.standby_override("on")
        await run(channel, clock, start + 39.0, [primary], step=0.2)
        assert channel.status().on_standby and channel.status().override == "on"
        channel.standby_override("off")
        await run(channel, clock, start + 41.0, [primary], step=0.2)
        assert channel.status().on_air == "primary"
        await channel.end()

        playlist = m3u8.load(str(tmp_path / "ch" / "event.m3u8"))
        assert all(s.duration <= playlist.target_duration for s in playlist.segments)
        assert sum(1 for s in playlist.segments if s.discontinuity) >= 4  # every switch marked
        names = [s.uri for s in playlist.segments]
        video = decode(joined(tmp_path / "ch", names, tmp_path / "all.ts")).video
        on_air: list[tuple[str, float, float]] = []
        for t, y, u in video:
            if float(y[y.shape[0] // 2 :].mean()) > 200:
                continue  # a flash (white): either source's
            kind = "standby" if is_standby(u) else "primary"
            if not on_air or on_air[-1][0] != kind:
                on_air.append((kind, t, t))
            else:
                on_air[-1] = (kind, on_air[-1][1], t)
        kinds = [k for k, _, _ in on_air]
        assert kinds == ["primary", "standby", "primary", "standby", "primary"], on_air
        # In the output: the standby's first frame ≤ standby_after + 1 segment after the primary's last.
        assert on_air[1][1] - on_air[0][2] <= settings.standby_after_s + settings.segment_seconds
    finally:
        await channel.close()
