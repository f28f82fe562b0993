"""The live engine's pure parts: playlists, the switcher's rules, the audio mix, AAC framing (no media)."""

from __future__ import annotations

from pathlib import Path

import m3u8  # type: ignore[import-untyped]
import numpy as np
import pytest

from recording.errors import RecordingError
from recording.live.channel import LiveChannel
from recording.live.mix import AudioMix
from recording.live.playlist import PlaylistWriter, Segment, render, target_duration
from recording.live.segmenter import ParameterSets, adts_header
from recording.live.switcher import Switcher


def seg(n: int, *, public: bool, disc: bool = False) -> Segment:
    return Segment(n, f"seg-{n:06d}.ts", 2.0, 1_800_000_000.0 + 2 * n, disc, public, 2.0 * n)


def test_live_window_starts_at_go_live_and_counts_what_slid_out(tmp_path: Path) -> None:
    writer = PlaylistWriter(tmp_path, segment_seconds=2.0, window=3)
    for n in range(1, 5):  # rehearsal
        writer.add(seg(n, public=False, disc=n == 3))
    assert not (tmp_path / "event.m3u8").exists()
    window = m3u8.load(str(tmp_path / "index.m3u8"))
    assert [s.uri for s in window.segments] == ["seg-000002.ts", "seg-000003.ts", "seg-000004.ts"]
    assert window.media_sequence == 2 and window.discontinuity_sequence == 0
    writer.add(seg(5, public=True))  # the first public segment: the window starts there
    window = m3u8.load(str(tmp_path / "index.m3u8"))
    assert [s.uri for s in window.segments] == ["seg-000005.ts"]
    assert window.media_sequence == 5 and window.discontinuity_sequence == 1
    for n in range(6, 10):
        writer.add(seg(n, public=True, disc=n == 7))
    window = m3u8.load(str(tmp_path / "index.m3u8"))
    assert window.media_sequence == 7 and window.discontinuity_sequence == 1
    assert [s.discontinuity for s in window.segments] == [True, False, False]
    replay = m3u8.load(str(tmp_path / "event.m3u8"))
    assert replay.playlist_type == "event" and not replay.is_endlist
    assert replay.segments[0].uri == "seg-000005.ts" and len(replay.segments) == 5
    writer.end()
    writer.end()
    assert m3u8.load(str(tmp_path / "event.m3u8")).is_endlist
    assert m3u8.load(str(tmp_path / "index.m3u8")).is_endlist
    assert not list(tmp_path.glob(".*.tmp")), "written by rename, nothing left behind"


def test_render_dates_every_segment_and_rounds_the_target_up() -> None:
    text = render([seg(1, public=True)], target=2, media_sequence=1, discontinuity_sequence=0)
    assert "#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:02.000Z" in text
    assert "#EXT-X-ENDLIST" not in text
    assert target_duration(2.0) == 2 and target_duration(2.5) == 3 and target_duration(0.5) == 1


def test_switcher_goes_to_standby_after_silence_and_back_after_the_hold() -> None:
    s = Switcher(standby_after=3.0, hold=10.0, now=0.0)
    s.primary_changed(True, 0.0)
    s.standby_changed(True)
    assert s.decide(2.9) == "primary"  # a new primary gets standby_after to send its first frame
    for k in range(0, 50):  # 30 fps until 1.666 s
        s.video("primary", k / 30)
    assert s.decide(4.6) == "primary"
    assert s.decide(4.7) == "standby"  # 3 s after its last frame
    s.video("primary", 10.0)  # back, but not for long enough
    assert s.decide(10.0) == "standby"
    for k in range(0, 300):
        s.video("primary", 10.0 + k / 30)
    assert s.decide(19.9) == "standby"
    s.video("primary", 20.0)
    assert s.decide(20.0) == "primary"  # healthy for the hold
    s.override = "on"
    assert s.decide(20.1) == "standby"
    s.override = "off"
    assert s.decide(40.0) == "primary"  # pinned even though silent
    s.override = "auto"
    s.standby_changed(False)
    assert s.decide(40.0) == "primary"  # no standby: the primary stays, silent or not
    s.primary_changed(False, 40.0)
    assert s.decide(40.0) == "none"


def test_a_stall_restarts_the_primarys_healthy_time() -> None:
    s = Switcher(standby_after=3.0, hold=10.0, now=0.0)
    s.primary_changed(True, 0.0)
    s.standby_changed(True)
    assert s.decide(3.0) == "standby"  # it never sent anything
    for k in range(0, 180):
        s.video("primary", 5.0 + k / 30)  # 5–11 s
    for k in range(0, 180):
        s.video("primary", 12.5 + k / 30)  # 1.5 s stall, then 12.5–18.5 s
    assert s.decide(14.9) == "standby"
    s.video("primary", 22.5)  # and more (a 4 s stall: starts over again)
    assert s.decide(22.5) == "standby"


def test_mix_places_tracks_by_time_and_fills_silence() -> None:
    mix = AudioMix(48000, 2)
    one = np.full((2, 960), 0.25, np.float32)
    assert mix.add("a", 1.0, one) == []  # the first block: nothing is complete yet
    mix.add("a", 1.0201, one)  # 0.1 ms late: taken as continuous
    mix.add("b", 1.0, one)  # a second voice at the same time: summed
    blocks = mix.advance(1.1)
    pcm = np.concatenate([b for _, b in blocks], axis=1)
    assert blocks[0][0] == pytest.approx(1.0)
    assert pcm.shape == (2, 4800)
    assert np.allclose(pcm[:, :960], 0.5) and np.allclose(pcm[:, 960:1920], 0.25)
    assert np.allclose(pcm[:, 1920:], 0.0)  # nobody spoke: silence, no gap
    assert mix.advance(1.05) == []
    mix.add("a", 1.0, one)  # already released: dropped and counted
    assert mix.late == 960


def test_adts_header_and_parameter_sets() -> None:
    header = adts_header(100, b"\x11\x90")  # AAC LC, 48 kHz, stereo
    assert header[:2] == b"\xff\xf1" and ((header[3] & 3) << 11 | header[4] << 3 | header[5] >> 5) == 107
    sets = ParameterSets()
    sps, pps, idr = b"\x67\x42\x00\x1f", b"\x68\xce", b"\x65\x88"
    first = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps + b"\x00\x00\x00\x01" + idr
    assert sets.complete(first, True) == first
    bare = b"\x00\x00\x00\x01" + idr
    assert sets.complete(bare, True).startswith(b"\x00\x00\x00\x01" + sps)


async def test_one_directory_one_channel_and_bad_calls_are_clear_errors(tmp_path: Path) -> None:
    channel = LiveChannel(tmp_path / "ch", channel_id="x")
    try:
        with pytest.raises(RecordingError, match="on, off or auto"):
            channel.standby_override("maybe")  # type: ignore[arg-type]
        with pytest.raises(RecordingError, match="not a meeting"):
            channel.select_video("t")
        (tmp_path / "ch" / "index.m3u8").write_text("#EXTM3U\n")
        with pytest.raises(RecordingError, match="already holds"):
            LiveChannel(tmp_path / "ch")
        status = await channel.end()
        assert status.state == "ended" and status.segments == 0
        assert not (tmp_path / "ch" / "event.m3u8").exists()  # never live: no replay
        with pytest.raises(RecordingError, match="ended"):
            channel.go_live()
    finally:
        await channel.close()
        await channel.close()
