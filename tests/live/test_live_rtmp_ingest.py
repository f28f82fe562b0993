"""RTMP ingest (issue #18): a real ffmpeg pushes a lavfi testsrc + sine over RTMP into a channel's listener.

A wrong stream key is refused (the push fails, nothing reaches the channel); the right one is copied into the
segmenter without a transcode; the encoder disconnects and reconnects, and the second connection starts
after a DISCONTINUITY. The playlists parse (m3u8), every segment starts with a keyframe, and ffprobe through
the replay playlist counts every frame pushed. Real time: the encoder pushes at its own pace (-re).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import m3u8  # type: ignore[import-untyped]
import pytest

from recording.live.channel import EVENT, INDEX, LiveChannel
from recording.live.ingest import RtmpIngestInput, is_idr, listen_argv
from recording.live.settings import LiveSettings
from recording.live.sources import RtmpIngestSource
from tests.live.live_engine_media import ffprobe, wait_for

pytestmark = pytest.mark.timeout(120)

KEY = "k3y-0123456789abcdef"
FPS = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def push(port: int, key: str, seconds: float, pattern: str = "testsrc") -> int:
    """An encoder: H.264 with a keyframe every 2 s and AAC over RTMP; its exit code."""
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-v", "error", "-re",
        "-f", "lavfi", "-i", f"{pattern}=size=640x360:rate={FPS}",
        "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", str(2 * FPS),
        "-keyint_min", str(2 * FPS), "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-threads", "1",
        "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{port}/live/{key}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return await asyncio.wait_for(proc.wait(), 60)


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port` (read from /proc: a probe connection would be the
    listener's one connection)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and int(local.split(":")[1], 16) == port:
            return True
    return False


async def push_when_listening(port: int, key: str, seconds: float, pattern: str = "testsrc") -> int:
    """The listener restarts after each connection: an encoder waits until it is back (as OBS retries)."""
    await wait_for(lambda: listening(port), 20)
    return await push(port, key, seconds, pattern)


def test_listener_argv_and_keyframes() -> None:
    argv = listen_argv("ffmpeg", RtmpIngestSource(1935, "abc", bind="0.0.0.0"))
    assert argv[argv.index("-listen") + 1] == "1"
    assert "rtmp://0.0.0.0:1935/live/abc" in argv and argv[argv.index("-c") + 1] == "copy"
    assert "abc" not in repr(RtmpIngestSource(1935, "abc"))  # the key stays out of logs
    assert is_idr(b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x65\x88")
    assert not is_idr(b"\x00\x00\x00\x01\x41\x9a")


async def test_rtmp_ingest_wrong_key_refused_copy_and_reconnect(tmp_path: Path) -> None:
    port = free_port()
    channel = LiveChannel(tmp_path / "ch", LiveSettings(), channel_id="rtmp")
    try:
        channel.set_source(RtmpIngestSource(port, KEY))
        channel.go_live()
        await channel.drain()
        ingest = channel._pipeline.inputs["primary"]
        assert isinstance(ingest, RtmpIngestInput)

        assert await push_when_listening(port, "wrong-key", 1.5) != 0  # dropped at publish
        await wait_for(lambda: ingest.refused == 1, 10)
        assert ingest.connections == 0 and channel.status().segments == 0

        assert await push_when_listening(port, KEY, 4.0) == 0
        assert await push_when_listening(port, KEY, 3.0, "testsrc2") == 0  # the encoder reconnects
        await wait_for(lambda: ingest.connections == 2, 10)
        await asyncio.sleep(0)  # let the worker pull what is due
        await wait_for(lambda: not ingest._units, 10)
        status = await channel.end()
    finally:
        await channel.close()
    assert not status.transcoding

    directory = tmp_path / "ch"
    event = m3u8.load(str(directory / EVENT))
    live = m3u8.load(str(directory / INDEX))
    assert event.is_endlist and live.is_endlist
    # RFC 8216 4.3.3.1: each EXTINF rounded to the nearest integer is at most the target duration (the
    # segment before the reconnect also spans the gap up to the next connection's first keyframe)
    assert all(round(s.duration) <= event.target_duration for s in event.segments), event.dumps()
    flags = [s.discontinuity for s in event.segments]
    assert flags.count(True) == 1 and not flags[0], flags  # the reconnect, and only it
    for segment in event.segments:
        first = ffprobe(directory / segment.uri, "-select_streams", "v", "-show_frames",
                        "-read_intervals", "%+#1", "-show_entries", "frame=key_frame")  # fmt: skip
        assert first["frames"][0]["key_frame"] == 1, segment.uri
    probe = ffprobe(directory / EVENT, "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames")
    counts = {s["codec_name"]: int(s["nb_read_frames"]) for s in probe["streams"]}
    assert counts["h264"] == 7 * FPS, counts  # every frame pushed, copied
    assert counts["aac"] > 0
    errors = await asyncio.to_thread(
        subprocess.run, ["ffmpeg", "-v", "error", "-i", str(directory / EVENT), "-f", "null", "-"],
        check=False, capture_output=True, timeout=60,
    )  # fmt: skip
    assert errors.stderr.decode() == ""
