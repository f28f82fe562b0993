"""Acceptance 10 (research/recording.md §5), functional half, through the real SFU and Router.tap: an H.264
aiortc publisher goes on air by packet copy (nothing transcoded); a VP8 publisher is transcoded to H.264
with a keyframe every segment (2 s). The CPU of a 720p30 transcode is measured in bench/live.py (a suite on
a shared 2-core machine is no place for it); here the 360p transcode's CPU is read from /proc too and must
stay far below a core."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from fractions import Fraction
from pathlib import Path

import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from recording.live.channel import LiveChannel, MeetingSource
from recording.live.settings import LiveProfile, LiveSettings
from sfu.events import TrackPublished
from tests.live.live_engine_media import decode, ffprobe, joined, read_counter, wait_for
from tests.recording.engine_media import draw
from tests.recording.test_tap_engine import BurstAudio, FlashVideo
from tests.sfu.conftest import Meeting

pytestmark = pytest.mark.timeout(120)

SECONDS = 6.0


class SizedVideo(FlashVideo):
    """FlashVideo at another size (the counter blocks scale with it)."""

    def __init__(self, frames: int, width: int, height: int) -> None:
        super().__init__(frames)
        self.width, self.height = width, height

    async def recv(self) -> av.VideoFrame:
        frame = await super().recv()
        n = self.sent - 1
        sized = draw(n, self.width, self.height, flash=n % 30 == 0, colour=(110, 128, 128))
        sized.pts, sized.time_base = frame.pts, Fraction(1, 90000)
        return sized


def thread_cpu_seconds(name: str) -> float:
    """utime + stime of our thread called `name` (/proc/self/task/TID/stat)."""
    thread = next(t for t in threading.enumerate() if t.name == name)
    with open(f"/proc/self/task/{thread.native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def publish_live(
    tmp: Path, codec: str, width: int, height: int
) -> tuple[LiveChannel, FlashVideo, float]:
    meeting = Meeting()
    tracks: dict[str, str] = {}

    def on_event(event: object) -> None:
        if isinstance(event, TrackPublished):
            tracks[event.kind] = event.track_id

    meeting.router.add_listener(on_event)
    profile = LiveProfile(width=width, height=height, fps=30, video_bitrate_k=800)
    channel = LiveChannel(tmp / "ch", LiveSettings(window_segments=20), profile=profile, channel_id=codec)
    peer = await meeting.router.add_peer("alice")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video = SizedVideo(round(SECONDS * 30), width, height)
    pc.addTrack(BurstAudio(video))
    transceiver = pc.addTransceiver(video, direction="sendonly")
    if codec == "h264":
        caps = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType.lower() == "video/h264"])
    cpu = 0.0
    try:
        await pc.setLocalDescription(await pc.createOffer())
        sources = {t.mid: ("mic" if t.kind == "audio" else "camera") for t in pc.getTransceivers()}
        answer = await peer.answer_publish(pc.localDescription.sdp, sources)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await meeting.wait_event(lambda: len(tracks) == 2)
        channel.set_source(MeetingSource(meeting.router.tap, tracks["video"], (tracks["audio"],)))
        channel.go_live()
        before = thread_cpu_seconds(f"live:{codec}")
        await asyncio.wait_for(video.done.wait(), SECONDS + 30)
        await wait_for(lambda: channel.status().segments >= 2, 10)
        await asyncio.sleep(0.5)  # the last frames in flight (bounded; nothing signals their arrival)
        cpu = thread_cpu_seconds(f"live:{codec}") - before
        await channel.end()
    finally:
        await pc.close()
        await meeting.close()
        await channel.close()
    return channel, video, cpu


def assert_frames_in_order(tmp: Path, names: list[str], sent: int) -> int:
    """The frames on air are the publisher's in order, none repeated, and most of them: the tap opens after
    the publisher started, and on this shared 2-core machine a loaded loopback loses packets that a hole
    gives up (each costs frames up to the keyframe it asks for). Every frame fed is counted exactly in
    test_live_hls_engine.py, on an injected clock."""
    video = decode(joined(tmp / "ch", names, tmp / "all.ts")).video
    counters = [read_counter(y) for _, y, _ in video]
    assert not [(a, b) for a, b in itertools.pairwise(counters) if b <= a], counters
    assert counters[-1] >= sent - 3 and len(counters) >= 0.8 * sent, (len(counters), sent, counters)
    return len(counters)


def keyframe_times(path: Path) -> tuple[list[float], int]:
    frames = ffprobe(
        path, "-select_streams", "v:0", "-show_frames", "-show_entries", "frame=key_frame,pts_time"
    )
    times = [float(f["pts_time"]) for f in frames["frames"] if f["key_frame"] == 1]
    return times, len(frames["frames"])


async def test_h264_publisher_is_copied(tmp_path: Path) -> None:
    channel, video, _ = await publish_live(tmp_path, "h264", 320, 180)
    status = channel.status()
    assert not status.transcoding and status.public_segments >= 2
    names = sorted(p.name for p in (tmp_path / "ch").glob("seg-*.ts"))
    assert_frames_in_order(tmp_path, names, video.sent)
    for name in sorted(p.name for p in (tmp_path / "ch").glob("seg-*.ts")):
        first = ffprobe(
            tmp_path / "ch" / name,
            "-select_streams", "v:0", "-show_frames", "-read_intervals", "%+#1",
            "-show_entries", "frame=key_frame",
        )["frames"][0]  # fmt: skip
        assert first["key_frame"] == 1, name


async def test_vp8_publisher_is_transcoded_with_a_keyframe_every_2_s(tmp_path: Path) -> None:
    channel, video, cpu = await publish_live(tmp_path, "vp8", 640, 360)
    assert channel.status().public_segments >= 2
    probe = ffprobe(tmp_path / "ch" / "index.m3u8", "-show_entries", "stream=codec_name,width,height")
    video_stream = next(s for s in probe["streams"] if s["codec_name"] == "h264")
    assert (video_stream["width"], video_stream["height"]) == (640, 360)
    keys, frames = keyframe_times(tmp_path / "ch" / "index.m3u8")
    names = sorted(p.name for p in (tmp_path / "ch").glob("seg-*.ts"))
    assert frames == assert_frames_in_order(tmp_path, names, video.sent)
    gaps = [b - a for a, b in itertools.pairwise(keys)]
    assert gaps and all(abs(g - 2.0) <= 0.1 for g in gaps), keys
    # decode + x264 veryfast at 360p30 in the channel's worker thread, over the real-time run
    assert cpu / SECONDS <= 0.5, cpu
