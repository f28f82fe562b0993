"""The recording engine fed at volume (research/recording.md §5 items 2, 3, 5 and 16's writer stall):
synthetic publishers with exact sender reports, injected arrival times, real files checked by ffprobe,
ffmpeg and PyAV."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from recording.recorder import Recorder
from recording.settings import RecordingSettings
from recording.writer import TrackFile
from tests.recording.engine_media import (
    FakeClock,
    Feeder,
    Participant,
    decode_errors,
    ffprobe_json,
    flash_times_audio,
    flash_times_video,
    pair_offsets,
    read_counter,
    video_frames,
)

pytestmark = pytest.mark.timeout(120)


def median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def files(result_dir: Path) -> tuple[Path, Path]:
    video = next(result_dir.glob("*-video.*"))
    audio = next(result_dir.glob("*-audio.*"))
    return video, audio


def av_offset(video: Path, audio: Path) -> float:
    """median(audio − video) of the flashes, each file's timestamps as written (no shift to 0)."""
    offsets = pair_offsets(flash_times_audio(audio), flash_times_video(video_frames(video)))
    assert offsets, "no flash found in both files"
    return median(offsets)


@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_av_sync_within_20_ms_and_the_start_at_zero_bug_fails_the_check(
    tmp_path: Path, codec: str
) -> None:
    clock = FakeClock()
    recorder = Recorder(tmp_path / "rec", clock=clock)
    # audio starts 340 ms after video, the sender's clock is 1000 s off ours, numbers wrap within seconds
    alice = Participant("alice", codec=codec, clock_offset=1000.0, video_start=0.2)
    await Feeder(recorder, clock, [alice]).run(8.0)
    await recorder.close()
    video, audio = files(tmp_path / "rec")
    assert decode_errors(video) == "" and decode_errors(audio) == ""
    offset = av_offset(video, audio)
    assert abs(offset) <= 0.020, offset
    assert ffprobe_json(audio, "-show_entries", "format=start_time")["format"]["start_time"].startswith("0.5")
    # The bug the check must catch: each file taken as if it started at 0 (ffmpeg's default shift).
    shifted = []
    for f in (video, audio):
        out = tmp_path / f"zero-{f.name}"
        argv = ["ffmpeg", "-v", "error", "-i", str(f), "-c", "copy", str(out)]
        await asyncio.to_thread(subprocess.run, argv, check=True, timeout=60)
        shifted.append(out)
    bug = av_offset(*shifted)
    assert abs(bug) > 0.020, f"the start-at-0 bug was not caught: {bug}"
    assert bug == pytest.approx(-0.34, abs=0.03)


async def test_five_percent_loss_repaired_keeps_every_frame(tmp_path: Path) -> None:
    clock = FakeClock()
    recorder = Recorder(tmp_path / "rec", clock=clock)
    alice = Participant("alice", jitter=0.02)
    lost = iter(range(10**9))
    # every 20th video packet comes again 60 ms later (a NACK answered by RTX), out of order
    feeder = Feeder(recorder, clock, [alice])
    await feeder.run(
        6.0, drop=lambda kind, seq, pid: kind == "video" and next(lost) % 20 == 7, repair_after=0.06
    )
    result = await recorder.close()
    assert len(feeder.dropped) >= 8
    video, _ = files(tmp_path / "rec")
    counters = [read_counter(y) for _, y in video_frames(video)]
    assert counters == alice.frames_sent
    assert result.holes == 0 and alice.keyframe_requests == 0
    assert decode_errors(video) == ""


async def test_each_unrepaired_hole_asks_one_keyframe_and_decoding_resumes_within_1_s(tmp_path: Path) -> None:
    clock = FakeClock()
    recorder = Recorder(tmp_path / "rec", clock=clock)
    alice = Participant("alice")
    holes_at = [2.0, 5.0, 8.0]  # seconds: one video packet there is never repaired
    dropped_at: list[float] = []

    def drop(kind: str, seq: int, pid: str) -> bool:
        if kind != "video" or not holes_at or clock.now - recorder.t0 < holes_at[0]:
            return False
        dropped_at.append(holes_at.pop(0))
        return True

    # drained every 20 ms: the writer thread answers within a tick, as it does in real time
    await Feeder(recorder, clock, [alice]).run(10.0, drop=drop, repair_after=None, drain_every=0.02)
    result = await recorder.close()
    assert len(dropped_at) == 3
    assert result.holes == 3
    assert result.keyframe_requests == 3 and alice.keyframe_requests == 3, "exactly one request per hole"
    video, _ = files(tmp_path / "rec")
    assert decode_errors(video) == ""
    frames = video_frames(video)
    times = [t for t, _ in frames]
    for hole in dropped_at:
        before = max(t for t in times if t < hole)
        after = min(t for t in times if t > before)
        assert after - before <= 1.0, (hole, before, after)
    counters = [read_counter(y) for _, y in frames]
    assert counters == sorted(set(counters)), "no duplicate, in order"


async def test_no_drift_over_120_s(tmp_path: Path) -> None:
    started = time.monotonic()
    clock = FakeClock()
    recorder = Recorder(tmp_path / "rec", clock=clock)
    alice = Participant("alice", width=80, height=60, video_start=0.0, clock_offset=-3600.0, jitter=0.015)
    await Feeder(recorder, clock, [alice]).run(120.0, step=0.01, drain_every=2.0)
    result = await recorder.close()
    video, audio = files(tmp_path / "rec")
    info = next(f for f in result.files if f.kind == "video")
    assert info.duration_s == pytest.approx(120.0 - 1 / 30, abs=0.1)
    flashes = flash_times_video(video_frames(video))
    assert len(flashes) == 120
    first = flashes[0]
    worst = max(abs(t - (first + k)) for k, t in enumerate(flashes))
    assert worst <= 1 / 30 + 0.002, f"flash times drift by {worst * 1000:.1f} ms"
    assert abs(av_offset(video, audio)) <= 0.020
    assert time.monotonic() - started < 60, "120 s of media must not take 120 s"


async def test_a_blocked_writer_drops_and_counts_and_never_stalls_the_sink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    settings = RecordingSettings(queue_packets=64)
    recorder = Recorder(tmp_path / "rec", settings, clock=clock)
    alice = Participant("alice")
    write = TrackFile.write
    blocked = {"done": False}

    def slow_write(self: TrackFile, data: bytes, pts_ms: int, keyframe: bool) -> None:
        if not blocked["done"] and self.frames == 30:
            blocked["done"] = True
            time.sleep(1.0)  # the disk stalls for a second in the writer thread
        write(self, data, pts_ms, keyframe)

    monkeypatch.setattr(TrackFile, "write", slow_write)
    feeder = Feeder(recorder, clock, [alice])
    sink_times: list[float] = []
    sink = feeder.sink(alice, "video")
    packet = sink.packet

    def timed(*args: object) -> bool:
        t = time.perf_counter()
        try:
            return packet(*args)  # type: ignore[arg-type]
        finally:
            sink_times.append(time.perf_counter() - t)

    sink.packet = timed  # type: ignore[method-assign]
    # no drain barrier while the writer is blocked: the feeder goes on at full speed
    await feeder.run(6.0, drain_every=1e9, pace=3.0)
    result = await recorder.close()
    assert blocked["done"]
    assert result.dropped_packets > 0
    assert max(sink_times) < 0.05, "a sink call waited for the writer"
    video, _ = files(tmp_path / "rec")
    assert decode_errors(video) == ""
    assert alice.keyframe_requests >= 1, "the hole the drops left restarts the recording from a keyframe"
