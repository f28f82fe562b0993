"""Research/recording.md §5 item 11, its last clause: a composite rendering at nice 19 leaves a concurrent
meeting's frames complete.

The composite of a 3-person recording renders (Debian ffmpeg, one thread, nice 19) while another meeting runs
in this process through the real SFU: an aiortc publisher whose every frame a tap records. Every frame it sent
must be in that recording, none late enough for the recorder to give it up.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from recording.composite import render
from recording.recorder import Recorder
from recording.settings import RecordingSettings
from tests.recording.engine_media import FakeClock, Feeder, Participant, read_counter, video_frames
from tests.recording.test_composite_engine import BLUE, GREEN, RED
from tests.recording.test_tap_engine import record_publisher

pytestmark = pytest.mark.timeout(180)

MEETING_SECONDS = 6.0


def ffmpeg_nice() -> list[int]:
    """The nice values of this process's rendering ffmpeg children: not a `nice` about to exec it, nor the
    recorder's own remux of the concurrent meeting (an ffmpeg at nice 0 that writes no ``.rendering.mp4``)."""
    values = []
    for task in os.listdir("/proc/self/task"):
        try:
            children = Path(f"/proc/self/task/{task}/children").read_text().split()
        except OSError:
            continue
        for pid in children:
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() != "ffmpeg":
                    continue
                if b".rendering.mp4" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            values.append(int(stat.rsplit(")", 1)[1].split()[16]))
    return values


async def test_a_render_at_nice_19_leaves_a_concurrent_meetings_frames_complete(tmp_path: Path) -> None:
    clock = FakeClock()
    directory = tmp_path / "finished"
    recorder = Recorder(directory, RecordingSettings(), clock=clock)
    people = [
        Participant("alice", colour=RED, video_start=0.0, seed=1),
        Participant("bob", colour=GREEN, video_start=0.5, seed=2),
        Participant("carol", colour=BLUE, video_start=1.0, seed=3),
    ]
    await Feeder(recorder, clock, people).run(8.0)
    await recorder.close()

    nice_seen: list[int] = []
    meeting_over = asyncio.Event()
    renders = 0

    async def render_throughout() -> None:
        # Rendered again and again until the meeting is over: whatever the machine's speed, a render runs
        # during every moment of the meeting.
        nonlocal renders
        while not meeting_over.is_set():
            await render(
                directory,
                "grid",
                tmp_path / f"composite-{renders}.mp4",
                lambda _: nice_seen.extend(ffmpeg_nice()),
            )
            renders += 1

    rendering = asyncio.create_task(render_throughout())
    try:
        live, video, _ = await record_publisher(tmp_path / "live", "vp8", MEETING_SECONDS)
        assert not rendering.done()
        meeting_over.set()
        result = await live.close()
    finally:
        meeting_over.set()
        await rendering  # every render must also succeed
    assert renders >= 1 and set(nice_seen) == {19}, (renders, nice_seen)
    video_file = next(tmp_path / "live" / "rec" / f.name for f in result.files if f.kind == "video")
    assert [read_counter(y) for _, y in video_frames(video_file)] == list(range(video.sent))
    assert video.sent == round(MEETING_SECONDS * 30)
    assert result.dropped_packets == 0
