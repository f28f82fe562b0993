"""Acceptance 7 (engine half) and 8 of research/recording.md §5: HLS out of a copied H.264 publisher, and the
replay at the end. The publisher is synthetic (aiortc's packetizers, injected clock: 14 s of media in a few
seconds); the segments and playlists are read with m3u8, ffprobe and PyAV."""

from __future__ import annotations

import time
from pathlib import Path

import m3u8  # type: ignore[import-untyped]
import pytest

from recording.live.channel import LiveChannel, MeetingSource
from recording.live.playlist import Segment
from recording.live.settings import LiveSettings
from tests.live.live_engine_media import (
    FakeClock,
    FakeRouter,
    Publisher,
    av_offsets,
    decode,
    ffprobe,
    joined,
    read_counter,
    run,
)

pytestmark = pytest.mark.timeout(120)

SECONDS = 14.0


async def test_hls_of_a_copied_publisher_every_frame_keyframe_starts_listed_in_time(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = LiveSettings(window_segments=20)
    channel = LiveChannel(tmp_path / "ch", settings, clock=clock, channel_id="t7")
    router = FakeRouter()
    alice = Publisher(router)
    listed: list[tuple[Segment, float]] = []
    channel.on_segment(lambda segment, path: listed.append((segment, clock.now)))
    try:
        channel.set_source(MeetingSource(router.tap, alice.video_id, (alice.audio_id,)))
        channel.go_live()
        start = clock.now
        alice.begin(start + 0.05)
        await run(channel, clock, start + SECONDS, [alice])
        await run(channel, clock, start + SECONDS + 2.0, [])  # nothing more is sent: the last segment closes
        status = channel.status()
        assert status.state == "live" and status.on_air == "primary" and not status.transcoding
        playlist = m3u8.load(str(tmp_path / "ch" / "index.m3u8"))
        names = [s.uri for s in playlist.segments]
        assert playlist.target_duration == 2
        assert len(names) >= 6, names
        assert all(s.duration <= playlist.target_duration for s in playlist.segments), [
            s.duration for s in playlist.segments
        ]
        assert all(s.program_date_time is not None for s in playlist.segments)
        assert not playlist.is_endlist
        # Every segment starts with a keyframe.
        for name in names:
            first = ffprobe(
                tmp_path / "ch" / name,
                "-select_streams", "v:0", "-show_frames", "-read_intervals", "%+#1",
                "-show_entries", "frame=key_frame,pict_type",
            )["frames"][0]  # fmt: skip
            assert first["key_frame"] == 1, (name, first)
        # ffprobe through the playlist counts every frame fed (once it has ENDLIST: a live playlist makes
        # ffprobe wait for more); the counters come back in order.
        await channel.end()
        probe = ffprobe(
            tmp_path / "ch" / "index.m3u8",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,nb_read_frames",
        )
        codecs = {s["codec_name"]: int(s.get("nb_read_frames", 0)) for s in probe["streams"]}
        assert codecs.get("h264") == len(alice.frames_sent), (codecs, len(alice.frames_sent))
        assert "aac" in codecs
        decoded = decode(joined(tmp_path / "ch", names, tmp_path / "all.ts"))
        assert [read_counter(y) for _, y, _ in decoded.video] == alice.frames_sent
        # Lip sync in the HLS output (one decode of both streams): ≤ 40 ms.
        offsets = sorted(av_offsets(decoded))
        assert len(offsets) >= SECONDS - 3, offsets
        assert abs(offsets[len(offsets) // 2]) <= 0.040, offsets
        # Each segment was listed ≤ 1 s (of the clock) after its last frame was fed.
        # (the last one, after the publisher stopped, waits 3/4 of a segment for more video first).
        assert len(listed) == len(names)
        for i, (segment, at) in enumerate(listed):
            end = channel.t0 + segment.start + segment.duration
            last = max(t for t in alice.sent_at if t + alice.delay < end)
            bound = 1.0 if i < len(listed) - 1 else 0.75 * settings.segment_seconds + 0.2
            assert at - (last + alice.delay) <= bound, (segment, at - last)
        assert alice.keyframe_requests >= len(names) - 1  # a keyframe asked for every segment
    finally:
        await channel.close()


async def test_replay_has_endlist_within_5_s_and_every_segment(tmp_path: Path) -> None:
    clock = FakeClock()
    channel = LiveChannel(tmp_path / "ch", LiveSettings(window_segments=3), clock=clock, channel_id="t8")
    router = FakeRouter()
    alice = Publisher(router)
    try:
        channel.set_source(MeetingSource(router.tap, alice.video_id, (alice.audio_id,)))
        start = clock.now
        alice.begin(start)
        await run(channel, clock, start + 4.0, [alice])  # rehearsal
        rehearsal = channel.status().segments
        assert rehearsal >= 1 and not (tmp_path / "ch" / "event.m3u8").exists()
        channel.go_live()
        live_from = clock.now
        await run(channel, clock, start + 4.0 + SECONDS, [alice])
        ended_at = time.monotonic()
        status = await channel.end()
        assert time.monotonic() - ended_at <= 5.0
        assert status.state == "ended"
        replay = m3u8.load(str(tmp_path / "ch" / "event.m3u8"))
        assert replay.is_endlist and replay.playlist_type == "event"
        sequences = [replay.media_sequence + i for i in range(len(replay.segments))]
        assert [int(s.uri[4:10]) for s in replay.segments] == sequences, "no segment missing"
        assert sequences[0] > rehearsal, "the replay starts after the rehearsal"
        assert all((tmp_path / "ch" / s.uri).exists() for s in replay.segments)
        duration = sum(s.duration for s in replay.segments)
        assert abs(duration - (clock.now - live_from)) <= 2.0, (duration, clock.now - live_from)
        window = m3u8.load(str(tmp_path / "ch" / "index.m3u8"))
        assert window.is_endlist and len(window.segments) == 3
        assert window.media_sequence == sequences[-3]
    finally:
        await channel.close()
