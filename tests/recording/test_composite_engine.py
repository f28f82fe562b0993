"""The composite (research/recording.md §5 items 4, 11 and the composite's A/V sync): per-track files made by
the Recorder from synthetic publishers, rendered by Debian's ffmpeg, checked frame by frame."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

from recording.composite import render
from recording.errors import RenderError
from recording.layout import composite_argv, grid, plan
from recording.recorder import Recorder
from recording.settings import RecordingSettings
from recording.timeline import TimelineEvent, read_timeline
from tests.recording.engine_media import FakeClock, Feeder, Participant, flash_times_audio, pair_offsets

pytestmark = pytest.mark.timeout(120)

SETTINGS = RecordingSettings(composite_width=640, composite_height=360)
FPS = SETTINGS.composite_fps
# (Y, U, V) per participant, far apart in chroma
RED, GREEN, BLUE = (81, 90, 240), (145, 54, 34), (41, 240, 110)


def composite_frames(path: Path) -> list[tuple[float, np.ndarray]]:
    """(pts seconds, yuv444 image at 64x36) of every frame of the composite."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            small = frame.reformat(width=64, height=36, format="yuv444p")
            out.append((float(frame.pts * frame.time_base), small.to_ndarray()))
    return out


def present(image: np.ndarray, colour: tuple[int, int, int]) -> bool:
    """Whether a tile of that colour shows (more than 3 % of the frame within the colour's chroma)."""
    u, v = image[1].astype(int), image[2].astype(int)
    near = (abs(u - colour[1]) < 24) & (abs(v - colour[2]) < 24)
    return float(near.mean()) > 0.03


def child_nice() -> list[int]:
    """The nice values of this process's children (the render's ffmpeg)."""
    values = []
    for task in os.listdir("/proc/self/task"):
        try:
            children = Path(f"/proc/self/task/{task}/children").read_text().split()
        except OSError:
            continue
        for pid in children:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            values.append(int(stat.rsplit(")", 1)[1].split()[16]))
    return values


async def test_the_composite_follows_the_timeline(tmp_path: Path) -> None:
    clock = FakeClock()
    directory = tmp_path / "rec"
    recorder = Recorder(directory, SETTINGS, clock=clock)
    people = [
        Participant("alice", colour=RED, video_start=0.0, seed=1),
        Participant("bob", colour=GREEN, video_start=1.5, until=4.4, seed=2, clock_offset=-50.0),
        Participant("carol", colour=BLUE, video_start=2.7, seed=3, clock_offset=7.0),
    ]
    await Feeder(recorder, clock, people).run(6.0)
    await recorder.close()
    events = read_timeline(directory)
    starts = {
        e.fields["participant"]: e.t
        for e in events
        if e.event == "track_started" and e.fields["kind"] == "video"
    }
    files = {e.fields["file"]: e.fields["participant"] for e in events if e.event == "track_started"}
    ends = {
        files[e.fields["file"]]: e.t
        for e in events
        if e.event == "track_ended" and "video" in e.fields["file"]
    }
    stopped = next(e.t for e in events if e.event == "recording_stopped")

    progress: list[float] = []
    nice_seen: list[int] = []

    def on_progress(value: float) -> None:
        progress.append(value)
        nice_seen.extend(child_nice())

    out = tmp_path / "composite.mp4"
    result = await render(directory, "grid", out, on_progress, settings=SETTINGS)
    assert result.path == out and out.is_file()
    assert result.duration_s == pytest.approx(stopped / 1000, abs=0.5)
    with av.open(str(out)) as c:
        assert c.duration / 1e6 == pytest.approx(stopped / 1000, abs=0.5)
    assert progress[0] == 0.0 and progress[-1] == 100.0
    assert progress == sorted(set(progress)), "progress only grows"
    assert nice_seen and set(nice_seen) == {19}, nice_seen

    frames = composite_frames(out)
    assert len(frames) == round(stopped * FPS / 1000)
    for person, colour in (("alice", RED), ("bob", GREEN), ("carol", BLUE)):
        shown = [i for i, (_, image) in enumerate(frames) if present(image, colour)]
        assert shown, f"{person} never shown"
        appear = round(starts[person] * FPS / 1000)
        assert abs(shown[0] - appear) <= 1, (person, shown[0], appear)
        end = ends.get(person, stopped)
        assert abs(shown[-1] + 1 - round(end * FPS / 1000)) <= 1, (person, shown[-1], end)


async def test_flashes_of_two_participants_land_in_the_same_frame_and_audio_within_40_ms(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    directory = tmp_path / "rec"
    recorder = Recorder(directory, SETTINGS, clock=clock)
    # different sender clocks and network delays, the same flash instants on the server's clock
    people = [
        Participant("alice", colour=RED, clock_offset=1000.0, delay=0.004, seed=4),
        Participant("bob", colour=GREEN, clock_offset=-777.0, delay=0.030, seed=5),
    ]
    await Feeder(recorder, clock, people).run(6.0)
    await recorder.close()
    out = tmp_path / "composite.mp4"
    await render(directory, "grid", out, settings=SETTINGS)
    frames = composite_frames(out)
    tiles = grid(2, 64, 36)
    flashes: list[list[int]] = []
    for x, y, w, h in tiles:
        # the tile's middle (its picture is letterboxed; the counter is at its top)
        lum = [
            float(image[0, y + h // 2 : y + h // 2 + h // 6, x + 2 : x + w - 2].mean()) for _, image in frames
        ]
        # from the second second on: the flash at 0 s is the first frame, before some tiles start
        flashes.append([i for i in range(FPS // 2, len(lum)) if lum[i] > 200 and lum[i - 1] <= 200])
    assert len(flashes[0]) >= 5 and len(flashes[0]) == len(flashes[1]), flashes
    assert all(abs(a - b) <= 1 for a, b in zip(*flashes, strict=True)), flashes
    video_times = [frames[i][0] for i in flashes[0]]
    offsets = sorted(pair_offsets(flash_times_audio(out), video_times))
    assert len(offsets) >= 5
    assert abs(offsets[len(offsets) // 2]) <= 0.040, offsets


def test_the_plan_cuts_at_joins_leaves_and_speaker_changes() -> None:
    def started(t: int, who: str, kind: str = "video", source: str = "camera") -> TimelineEvent:
        return TimelineEvent(t, "track_started", {"file": f"{who}-{source}", "participant": who, "kind": kind,
                                                  "source": source})  # fmt: skip

    events = [
        TimelineEvent(0, "recording_started"),
        started(0, "a"),
        started(0, "a", "audio", "mic"),
        started(1000, "b"),
        TimelineEvent(2000, "speaker", {"participant": "b"}),
        started(3000, "b", "video", "screen"),
        TimelineEvent(4000, "track_ended", {"file": "b-camera"}),
        TimelineEvent(5000, "recording_stopped"),
    ]
    g = plan(events, "grid", SETTINGS)
    assert [(i.start, i.end, len(i.tiles)) for i in g.intervals] == [(0, 30, 1), (30, 90, 2), (90, 120, 3),
                                                                      (120, 150, 2)]  # fmt: skip
    s = plan(events, "speaker", SETTINGS)
    shown = [(i.start, i.tiles[0].file) for i in s.intervals]
    assert shown == [(0, "a-camera"), (60, "b-camera"), (90, "b-screen")]
    argv = composite_argv(g, Path("/r"), Path("/o.mp4"), SETTINGS)
    assert argv[:3] == ["nice", "-n", "19"]
    assert argv[argv.index("-filter_complex_threads") + 1] == "1"
    assert argv[argv.index("-c:v") - 1 :].count("-threads") == 1 and argv[argv.index("-movflags") - 1] == "1"
    graph = argv[argv.index("-filter_complex") + 1]
    assert "tpad=start_duration=1.000" in graph and "adelay=delays=0:all=1" in graph


async def test_a_render_that_cannot_succeed_says_why(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="no timeline"):
        await render(tmp_path, "grid", tmp_path / "x.mp4")
    (tmp_path / "timeline.jsonl").write_text('{"t": 0, "event": "recording_started"}\n')
    with pytest.raises(RenderError, match="not finished"):
        await render(tmp_path, "grid", tmp_path / "x.mp4")
    (tmp_path / "timeline.jsonl").write_text(
        '{"t": 0, "event": "recording_started"}\n'
        '{"t": 0, "event": "track_started", "file": "v.webm", "kind": "video", "participant": "a"}\n'
        '{"t": 2000, "event": "recording_stopped"}\n'
    )
    with pytest.raises(RenderError, match=r"files missing: v\.webm"):
        await render(tmp_path, "grid", tmp_path / "x.mp4")
    (tmp_path / "v.webm").write_bytes(b"not a video")
    with pytest.raises(RenderError, match="ffmpeg failed"):
        await render(tmp_path, "grid", tmp_path / "x.mp4")
    left = sorted(p.name for p in tmp_path.iterdir())  # noqa: ASYNC240 (a test's listing)
    assert left == ["timeline.jsonl", "v.webm"], "no half file left"
    with pytest.raises(RenderError, match="layout"):
        await render(tmp_path, "mosaic", tmp_path / "x.mp4")  # type: ignore[arg-type]
