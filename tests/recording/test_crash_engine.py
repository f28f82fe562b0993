"""Acceptance 6 (research/recording.md §5): kill -9 a real recorder process after N s; its files decode to
at least N - 1 s, and the finaliser at the next start gives them a duration and Cues."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from recording.errors import RecordingError
from recording.finalize import needs_recovery, recover
from recording.recorder import Recorder
from recording.timeline import read_timeline
from tests.recording.engine_media import decode_errors, ffprobe_json, video_frames

pytestmark = pytest.mark.timeout(120)

N = 4  # seconds of media before the kill
ROOT = Path(__file__).resolve().parents[2]
CUES = b"\x1c\x53\xbb\x6b"  # the Matroska Cues element's ID


async def test_kill_9_loses_under_a_second_and_recover_finalises(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    root = ROOT
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.recording.engine_crash_child", str(directory),
        cwd=root, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert child.stdout is not None
    try:
        while True:
            line = await asyncio.wait_for(child.stdout.readline(), 60)
            assert line, "the recorder process ended before it was killed"
            if line.decode().strip() == f"fed {N}":
                break
        child.send_signal(signal.SIGKILL)
        await child.wait()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode == -signal.SIGKILL
    parts = sorted(p for p in directory.iterdir() if ".part." in p.name)
    assert len(parts) == 2, parts
    video_part = next(p for p in parts if "video" in p.name)
    frames = video_frames(video_part)  # decodes what was written up to the kill
    first, last = frames[0][0], frames[-1][0]
    assert last - first >= N - 1, f"only {last - first:.2f} s decodable of {N} s"
    assert ffprobe_json(video_part, "-show_entries", "format=duration")["format"].get("duration") in (
        None,
        "N/A",
    )
    assert needs_recovery(directory)
    with pytest.raises(RecordingError, match="already holds a recording"):
        Recorder(directory)

    result = await recover(directory)
    assert result is not None and result.recovered
    assert not [p for p in directory.iterdir() if ".part." in p.name]
    assert not needs_recovery(directory)
    assert await recover(directory) is None, "a second start finds nothing to do"
    video = directory / next(f.name for f in result.files if f.kind == "video")
    assert decode_errors(video) == ""
    duration = float(ffprobe_json(video, "-show_entries", "format=duration")["format"]["duration"])
    assert duration >= N - 1
    assert CUES in video.read_bytes()
    argv = ["ffmpeg", "-v", "error", "-ss", str(N / 2), "-i", str(video), "-frames:v", "1", "-f", "null", "-"]
    middle = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=60, check=False
    )
    assert middle.returncode == 0 and middle.stderr == ""
    events = read_timeline(directory)
    assert [e.fields.get("reason") for e in events if e.event == "recording_stopped"] == ["crash"]
    assert sum(1 for e in events if e.event == "track_ended" and e.fields.get("recovered")) == 2
