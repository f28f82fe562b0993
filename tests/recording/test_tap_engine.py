"""Acceptance 1 (research/recording.md §5) through the real SFU: aiortc publishers (VP8+Opus, H.264+Opus),
a Router.tap per Track into a Recorder, real ffprobe/ffmpeg on the files."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket

from recording.recorder import Recorder
from recording.track import TrackInfo, TrackSink
from sfu.events import TrackPublished
from sfu.tap import TappedTrack, TapSubscription
from tests.recording.engine_media import (
    decode_errors,
    draw,
    ffprobe_json,
    flash_times_audio,
    flash_times_video,
    pair_offsets,
    read_counter,
    video_frames,
)
from tests.sfu.conftest import Meeting, install_send_loss, random_loss

pytestmark = pytest.mark.timeout(120)

FPS = 30


class FlashVideo(MediaStreamTrack):
    """320x240 at 30 fps in real time from its first frame (as aiortc's own tracks pace): the frame counter
    as blocks, a white frame at each whole second."""

    kind = "video"

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.start = 0.0
        self.started = asyncio.Event()
        self.frames = frames
        self.sent = 0
        self.done = asyncio.Event()

    async def recv(self) -> av.VideoFrame:
        if self.sent >= self.frames:
            self.done.set()
            await asyncio.Event().wait()  # sends nothing more; aiortc stops it on close
        if not self.started.is_set():
            self.start = time.time()
            self.started.set()
        wait = self.start + self.sent / FPS - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = draw(self.sent, 320, 240, flash=self.sent % FPS == 0, colour=(110, 128, 128))
        frame.pts = self.sent * (90000 // FPS)
        frame.time_base = Fraction(1, 90000)
        self.sent += 1
        return frame


class BurstAudio(MediaStreamTrack):
    """48 kHz stereo, 20 ms frames from 340 ms after the video: a 40 ms 1 kHz burst at each whole second."""

    kind = "audio"

    def __init__(self, video: FlashVideo) -> None:
        super().__init__()
        self.video = video
        self.n = 0

    async def recv(self) -> av.AudioFrame:
        import numpy as np

        await self.video.started.wait()
        t = self.video.start + 0.34 + self.n * 0.02
        wait = t - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        since = 0.34 + self.n * 0.02 + np.arange(960) / 48000  # seconds since the video's first frame
        burst = (since - np.floor(since)) < 0.04
        tone = np.where(burst, 12000 * np.sin(2 * np.pi * 1000 * since), 0).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = self.n * 960
        frame.time_base = Fraction(1, 48000)
        self.n += 1
        return frame


def info_of(t: TappedTrack) -> TrackInfo:
    """What yunhui/ does with the TappedTrack a tap hands over."""
    return TrackInfo(t.track_id, t.participant_id, t.kind, t.source, t.codec, t.clock_rate, t.channels)


async def record_publisher(
    tmp: Path, codec: str, seconds: float, loss: float = 0.0, lost: list[int] | None = None
) -> tuple[Recorder, FlashVideo, list[TapSubscription]]:
    meeting = Meeting()
    recorder = Recorder(tmp / "rec")
    taps: list[TapSubscription] = []
    sinks: list[TrackSink] = []

    def on_event(event: object) -> None:
        if isinstance(event, TrackPublished):
            taps.append(
                meeting.router.tap(
                    event.track_id, lambda t: sinks.append(recorder.attach(info_of(t))) or sinks[-1]
                )
            )

    meeting.router.add_listener(on_event)
    peer = await meeting.router.add_peer("alice")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video = FlashVideo(round(seconds * FPS))
    audio = BurstAudio(video)
    pc.addTrack(audio)
    transceiver = pc.addTransceiver(video, direction="sendonly")
    if codec == "h264":
        caps = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType.lower() == "video/h264"])
    try:
        await pc.setLocalDescription(await pc.createOffer())
        sources = {t.mid: ("mic" if t.kind == "audio" else "camera") for t in pc.getTransceivers()}
        answer = await peer.answer_publish(pc.localDescription.sdp, sources)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        if loss:  # on the publisher's uplink, the one leg a tap has: the SFU's NACKs, the publisher's RTX
            install_send_loss(pc, random_loss(loss, 7, lost if lost is not None else [0]))
        await asyncio.wait_for(video.done.wait(), seconds + 15)
        await asyncio.sleep(0.5)  # the last frames in flight
        assert len(taps) == 2, "one tap per Track"
        for tap in taps:
            tap.close()
    finally:
        await pc.close()
        await meeting.close()
    return recorder, video, taps


@pytest.mark.parametrize(
    ("codec", "ext", "seconds", "loss"), [("vp8", "webm", 10.0, 0.05), ("h264", "mkv", 10.0, 0.0)]
)
async def test_per_track_files_hold_every_frame_sent(
    tmp_path: Path, codec: str, ext: str, seconds: float, loss: float
) -> None:
    lost = [0]
    recorder, video, taps = await record_publisher(tmp_path, codec, seconds, loss, lost)
    assert (lost[0] > 10) == bool(loss)
    result = await recorder.close()
    names = sorted(f.name for f in result.files)
    assert len(names) == 2, names  # one file per Track
    video_file = next(tmp_path / "rec" / f.name for f in result.files if f.kind == "video")
    audio_file = next(tmp_path / "rec" / f.name for f in result.files if f.kind == "audio")
    assert video_file.suffix == f".{ext}"
    probe = ffprobe_json(video_file, "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames")
    stream = probe["streams"][0]
    assert stream["codec_name"] == codec
    assert int(stream["nb_read_frames"]) == video.sent, (stream, video.sent)
    assert (
        ffprobe_json(audio_file, "-show_entries", "stream=codec_name")["streams"][0]["codec_name"] == "opus"
    )
    assert decode_errors(video_file) == ""
    assert decode_errors(audio_file) == ""
    frames = video_frames(video_file)
    counters = [read_counter(y) for _, y in frames]
    assert counters == list(range(video.sent)), "decoded counters consecutive, none missing or repeated"
    # Lip sync as an aiortc publisher's sender reports allow: its SR carries the RTP time of the last packet
    # sent, not of the SR's instant (up to a frame interval late); browsers extrapolate. Tight bounds are
    # tested with exact sender reports in test_recording_engine.py.
    offsets = pair_offsets(flash_times_audio(audio_file), flash_times_video(frames))
    assert len(offsets) >= seconds - 2
    offsets.sort()
    assert abs(offsets[len(offsets) // 2]) <= 0.06, offsets
    assert result.dropped_packets == 0
    assert all(tap.track is None for tap in taps)


async def until(predicate: Callable[[], bool], within: float) -> None:
    """Until the tap's state (moved by packets, which signal nothing) holds: checked every 10 ms."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {within} s")
        await asyncio.sleep(0.01)


async def test_simulcast_is_recorded_at_its_best_layer_and_switches_up(tmp_path: Path) -> None:
    from tests.sfu.conftest import read_counter as read_sfu_counter
    from tests.sfu.test_simulcast import SimulcastPublisher

    meeting = Meeting()
    recorder = Recorder(tmp_path / "rec")
    publisher = SimulcastPublisher()
    paused = {"f"}  # the top layer starts later (a browser whose bandwidth estimate is still low)
    send = publisher.hooks.send
    started: list[float] = []

    async def send_unpaused(data: bytes) -> bool:
        if not started:
            started.append(time.monotonic())
        ssrc = int.from_bytes(data[8:12], "big")
        if any(publisher.ssrc[rid] == ssrc for rid in paused):
            return True
        return await send(data)

    async def sender_reports() -> None:
        """What a browser sends beside its layers (this publisher writes RTP by hand): an SR per layer."""
        while True:
            await asyncio.sleep(0.5)
            if not started:
                continue
            elapsed = time.monotonic() - started[0]
            ntp = int((time.time() + 2_208_988_800) * (1 << 32))
            for rid, ssrc in publisher.ssrc.items():
                if rid not in paused:
                    rtp = (publisher.ts_base[rid] + round(elapsed * 90000)) & 0xFFFFFFFF
                    info = RtcpSenderInfo(ntp_timestamp=ntp, rtp_timestamp=rtp, packet_count=0, octet_count=0)
                    await send(bytes(RtcpSrPacket(ssrc=ssrc, sender_info=info)))

    publisher.hooks.send = send_unpaused  # type: ignore[method-assign]
    reports = asyncio.create_task(sender_reports())
    try:
        owner = await meeting.client("pub")
        await publisher.publish(owner)
        await meeting.wait_tracks(1)
        track = next(iter(meeting.router.tracks.values()))
        tap = meeting.router.tap(track.id, lambda t: recorder.attach(info_of(t)))
        await until(lambda: tap.current is track.layers["h"] and tap.packets > 30, within=10)
        paused.clear()
        await until(lambda: tap.current is track.layers["f"], within=10)
        switched_at = tap.packets
        await until(lambda: tap.packets > switched_at + 60, within=10)
        assert track.pauser.active >= {"f"}, "the tap keeps the top layer wanted"
        tap.close()
    finally:
        reports.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reports
        await publisher.close()
        await meeting.close()
    result = await recorder.close()
    (video,) = [tmp_path / "rec" / f.name for f in result.files]
    assert decode_errors(video) == ""
    sizes, counters = [], []
    with av.open(str(video)) as container:
        for frame in container.decode(container.streams.video[0]):
            sizes.append((frame.width, frame.height))
            counters.append(read_sfu_counter(frame))
    assert sizes[0] == (160, 120) and sizes[-1] == (320, 240)
    assert sizes == sorted(sizes), "one switch, up"
    steps = {b - a for a, b in itertools.pairwise(counters)}
    assert steps <= {0, 1}, f"frames lost or repeated at the switch: {sorted(steps)}"
