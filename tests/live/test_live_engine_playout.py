"""Acceptance 12, playout half (research/recording.md §5): normalised items play in order by packet copy, an
ID colour each, with a gap per switch of at most one segment; reordering and skipping take effect at item
boundaries and the callbacks report every item. Injected clock: 10 s of playout in about a second."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import m3u8  # type: ignore[import-untyped]
import pytest

from recording.live.channel import LiveChannel, PlaylistSource
from recording.live.settings import LiveSettings
from recording.live.sources import PlaylistEvent
from tests.live.live_engine_media import FakeClock, decode, ffprobe, joined, make_item, read_counter, run

pytestmark = pytest.mark.timeout(120)

# Background colours (Y, U, V) told apart by their chroma.
COLOURS = {"red": (81, 90, 240), "green": (145, 54, 34), "blue": (41, 240, 110)}


def colour_of(u: float) -> str:
    return min(COLOURS, key=lambda name: abs(COLOURS[name][1] - u))


def runs(decoded_video: list[tuple[float, Any, Any]]) -> list[tuple[str, float, float, list[int]]]:
    """(colour, first pts, last pts, counters) of each item played: a new one where the counter starts over,
    named by the chroma of its frames (below the counter blocks; flashes are white and say nothing)."""
    groups: list[tuple[list[str], float, float, list[int]]] = []
    for t, y, u in decoded_video:
        counter = read_counter(y)
        if not groups or counter < groups[-1][3][-1]:
            groups.append(([], t, t, []))
        names, first, _, counters = groups[-1]
        if float(y[y.shape[0] // 2 :].mean()) <= 200:
            names.append(colour_of(float(u[u.shape[0] // 2 :].mean())))
        groups[-1] = (names, first, t, [*counters, counter])
    return [(max(set(n), key=n.count) if n else "?", a, b, c) for n, a, b, c in groups]


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("items")
    return {name: make_item(root / f"{name}.mp4", 3.0, colour) for name, colour in COLOURS.items()}


async def test_three_items_play_in_order_without_a_gap(tmp_path: Path, items: dict[str, Path]) -> None:
    clock = FakeClock()
    settings = LiveSettings(window_segments=30)
    channel = LiveChannel(tmp_path / "ch", settings, clock=clock)
    events: list[PlaylistEvent] = []
    try:
        channel.set_source(
            PlaylistSource((items["red"], items["green"], items["blue"]), on_event=events.append)
        )
        channel.go_live()
        await run(channel, clock, clock.now + 11.0, [])
        assert channel.status().playlist_item is None  # all played
        await channel.end()
        await asyncio.sleep(0)  # the callbacks run on the loop
        assert [(e.index, e.event) for e in events] == [
            (0, "started"), (0, "ended"), (1, "started"), (1, "ended"), (2, "started"), (2, "ended"),
        ]  # fmt: skip
        playlist = m3u8.load(str(tmp_path / "ch" / "event.m3u8"))
        assert all(s.duration <= playlist.target_duration for s in playlist.segments)
        assert sum(1 for s in playlist.segments if s.discontinuity) == 2  # one per item switch
        names = [s.uri for s in playlist.segments]
        for name in names:
            first = ffprobe(
                tmp_path / "ch" / name,
                "-select_streams", "v:0", "-show_frames", "-read_intervals", "%+#1",
                "-show_entries", "frame=key_frame",
            )["frames"][0]  # fmt: skip
            assert first["key_frame"] == 1, name
        decoded = decode(joined(tmp_path / "ch", names, tmp_path / "all.ts"))
        assert decoded.video_codec == "h264" and decoded.audio_codec == "aac"
        played = runs(decoded.video)
        assert [r[0] for r in played] == ["red", "green", "blue"], [(r[0], r[1], r[2]) for r in played]
        for r in played:
            assert r[3] == list(range(90)), (r[0], r[3][:5], len(r[3]))  # every frame of each item, in order
        for before, after in itertools.pairwise(played):
            gap = after[1] - before[2]
            assert gap <= settings.segment_seconds, (before[0], after[0], gap)
            assert gap < 0.05  # in fact one frame interval: the next item starts where the last one ended
    finally:
        await channel.close()


async def test_reorder_and_skip_take_effect_at_item_boundaries(
    tmp_path: Path, items: dict[str, Path]
) -> None:
    clock = FakeClock()
    channel = LiveChannel(tmp_path / "ch", LiveSettings(window_segments=30), clock=clock)
    events: list[PlaylistEvent] = []
    start = clock.now

    def script(now: float) -> None:
        if abs(now - (start + 1.0)) < 1e-6:  # during red: green and blue swapped
            channel.playlist_set([items["blue"], items["green"]])
        if abs(now - (start + 4.0)) < 1e-6:  # 1 s into blue: skip to green
            channel.playlist_skip()

    try:
        channel.set_source(
            PlaylistSource((items["red"], items["green"], items["blue"]), on_event=events.append)
        )
        channel.go_live()
        await run(channel, clock, start + 9.0, [], at=script)
        await channel.end()
        await asyncio.sleep(0)
        started = [e.path.stem for e in events if e.event == "started"]
        assert started == ["red", "blue", "green"]
        skipped = next(e for e in events if e.event == "ended" and e.path.stem == "blue")
        assert 0.8 <= skipped.position <= 1.2, skipped
        names = [s.uri for s in m3u8.load(str(tmp_path / "ch" / "event.m3u8")).segments]
        played = runs(decode(joined(tmp_path / "ch", names, tmp_path / "all.ts")).video)
        assert [r[0] for r in played] == ["red", "blue", "green"]
        assert len(played[0][3]) == 90 and 25 <= len(played[1][3]) <= 35 and len(played[2][3]) == 90
    finally:
        await channel.close()
