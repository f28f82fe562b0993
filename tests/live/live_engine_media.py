"""Synthetic sources for the live engine's tests, on an injected clock (research/recording.md §5 media).

A Publisher is what an aiortc publisher sends through the SFU's tap: H.264 (or VP8) frames packetized by
aiortc's own encoders, Opus 20 ms frames, sender reports — each frame a 16-bit counter drawn as blocks, a
white flash plus a 40 ms 1 kHz burst at each whole second. The test moves the clock and calls
``send_until``, so a minute of media takes seconds and a pause (a dead primary) is just time without
packets. A keyframe request (a sink's True) makes the next frame a keyframe, as a publisher answering a PLI
does.

Playlist items are normalised files made with PyAV (H.264 with a keyframe every 2 s, AAC 48 kHz stereo):
one background colour each, so that the order can be read back from the segments.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder

from recording.live.channel import LiveChannel
from recording.live.inputs import TapInputSink
from recording.live.sources import PacketSink, TrackDescription
from tests.recording.engine_media import draw, read_counter, to_ntp

__all__ = ["read_counter"]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Desc:
    track_id: str
    participant_id: str
    kind: str
    codec: str
    clock_rate: int


class _Tapped:
    def __init__(self, sink: PacketSink) -> None:
        self.sink = sink
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sink.ended()


class FakeRouter:
    """Stands in for Router.tap: hands each tapped Track's sink to the test's publishers."""

    def __init__(self) -> None:
        self.tracks: dict[str, Desc] = {}
        self.sinks: dict[str, PacketSink] = {}
        self.taps: list[_Tapped] = []

    def add(self, desc: Desc) -> None:
        self.tracks[desc.track_id] = desc

    def tap(self, track_id: str, sink_for: Callable[[TrackDescription], PacketSink]) -> _Tapped:
        if track_id not in self.tracks:
            raise KeyError(track_id)
        sink = sink_for(self.tracks[track_id])
        self.sinks[track_id] = sink
        tapped = _Tapped(sink)
        self.taps.append(tapped)
        return tapped


@dataclass
class Publisher:
    """One synthetic publisher (camera + microphone) on a FakeRouter."""

    router: FakeRouter
    pid: str = "alice"
    codec: str = "h264"
    width: int = 320
    height: int = 180
    fps: int = 30
    clock_offset: float = 500.0  # its NTP clock minus ours
    delay: float = 0.01
    colour: tuple[int, int, int] = (110, 128, 128)
    audio: bool = True
    frames_sent: list[int] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)  # clock time of each frame sent
    keyframe_requests: int = 0

    def __post_init__(self) -> None:
        self.router.add(Desc(self.video_id, self.pid, "video", self.codec, 90000))
        self.router.add(Desc(self.audio_id, self.pid, "audio", "opus", 48000))
        self._venc: Any = Vp8Encoder() if self.codec == "vp8" else H264Encoder()
        self._aenc = OpusEncoder()
        self._vseq = 65536 - 100
        self._aseq = 65536 - 30
        self._vts0 = (1 << 32) - 90000 * 2
        self._ats0 = (1 << 32) - 48000 * 3
        self._n = 0
        self._a = 0
        self._start: float | None = None
        self._next_sr = 0.0
        self._force = True

    @property
    def video_id(self) -> str:
        return f"{self.pid}:v"

    @property
    def audio_id(self) -> str:
        return f"{self.pid}:a"

    def _sink(self, track: str) -> PacketSink | None:
        return self.router.sinks.get(track)

    def begin(self, at: float) -> None:
        """Start (or resume after a pause) sending at clock time `at`."""
        if self._start is None:
            self._start = at
            self._next_sr = at
        self._resume = at
        self._n_at_resume = self._n

    def send_until(self, now: float) -> None:
        """Send every frame (video, audio, sender reports) due up to clock time `now`."""
        assert self._start is not None
        while True:
            tv = self._resume + (self._n - self._n_at_resume) / self.fps
            ta = self._start + 0.34 + self._a * 0.02
            if self.audio and ta < self._resume:
                self._a = math.ceil((self._resume - self._start - 0.34) / 0.02)
                continue
            t = min(tv, ta) if self.audio else tv
            if self._next_sr <= t and self._next_sr <= now:
                self._sender_reports(self._next_sr)
                self._next_sr += 0.5
                continue
            if t > now:
                return
            if self.audio and ta <= tv:
                self._audio_frame(ta)
            else:
                self._video_frame(tv)

    def _media_ts(self, t: float, rate: int, base: int) -> int:
        assert self._start is not None
        return (base + round((t - self._start) * rate)) & 0xFFFFFFFF

    def _sender_reports(self, t: float) -> None:
        ntp = to_ntp(t + self.clock_offset)
        for track, rate, base in ((self.video_id, 90000, self._vts0), (self.audio_id, 48000, self._ats0)):
            sink = self._sink(track)
            if sink is not None:
                sink.sender_report("", ntp, self._media_ts(t, rate, base), t + self.delay)

    def _video_frame(self, t: float) -> None:
        counter = self._n & 0xFFFF
        assert self._start is not None
        since = t - self._start
        flash = abs(since - round(since)) < 0.5 / self.fps
        frame = draw(counter, self.width, self.height, flash=flash, colour=self.colour)
        frame.pts = self._n
        frame.time_base = Fraction(1, self.fps)
        force, self._force = self._force, False
        payloads, _ = self._venc.encode(frame, force_keyframe=force)
        self._n += 1
        sink = self._sink(self.video_id)
        if not payloads or sink is None:
            return
        self.frames_sent.append(counter)
        self.sent_at.append(t)
        ts = self._media_ts(t, 90000, self._vts0)
        for i, payload in enumerate(payloads):
            if sink.packet("", self._vseq & 0xFFFF, ts, i == len(payloads) - 1, payload, t + self.delay):
                self.keyframe_requests += 1
                self._force = True
            self._vseq += 1

    def _audio_frame(self, t: float) -> None:
        self._a += 1
        sink = self._sink(self.audio_id)
        assert self._start is not None
        since = (t - self._start) + np.arange(960) / 48000
        burst = (since - np.floor(since)) < 0.04
        tone = np.where(burst, 12000 * np.sin(2 * math.pi * 1000 * since), 0).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = round((t - self._start) * 48000)
        frame.time_base = Fraction(1, 48000)
        payloads, _ = self._aenc.encode(frame)
        if sink is None:
            return
        ts = self._media_ts(t, 48000, self._ats0)
        for payload in payloads:
            sink.packet("", self._aseq & 0xFFFF, ts, True, payload, t + self.delay)
            self._aseq += 1


async def run(
    channel: LiveChannel,
    clock: FakeClock,
    until: float,
    publishers: list[Publisher],
    *,
    step: float = 0.1,
    at: Callable[[float], None] | None = None,
) -> None:
    """Move the clock to `until` in steps, sending what each publisher has due and letting the channel's
    worker handle it at each step (`at(now)` is called first: the test's script)."""
    while clock.now < until - 1e-9:
        clock.now = min(clock.now + step, until)
        if at is not None:
            at(clock.now)
        for p in publishers:
            p.send_until(clock.now)
        await channel.drain()


def is_sink(obj: object) -> bool:
    return isinstance(obj, TapInputSink)


# ------------------------------------------------------------------------------------------ playlist items
def make_item(
    path: Path, seconds: float, colour: tuple[int, int, int], *, size: tuple[int, int] = (320, 180)
) -> Path:
    """A normalised item: H.264 (keyframe every 2 s, no B-frames) + AAC, flash and burst each second."""
    fps = 30
    with av.open(str(path), "w", format="mp4") as out:
        v = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "g": "60", "keyint_min": "60",
                                                       "bf": "0", "sc_threshold": "0"})  # fmt: skip
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        a = out.add_stream("aac", rate=48000, layout="stereo")
        frames = round(seconds * fps)
        samples_done = 0
        for n in range(frames):
            frame = draw(n, size[0], size[1], flash=n % fps == 0, colour=colour)
            frame.pts = n
            frame.time_base = Fraction(1, fps)
            for packet in v.encode(frame):
                out.mux(packet)
            # the audio up to this frame's end: the two streams interleaved as a muxer writes them
            while samples_done < round((n + 1) / fps * 48000):
                since = (samples_done + np.arange(1024)) / 48000
                burst = (since - np.floor(since)) < 0.04
                tone = np.where(burst, 0.4 * np.sin(2 * math.pi * 1000 * since), 0).astype(np.float32)
                chunk = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                chunk.sample_rate = 48000
                chunk.pts = samples_done
                chunk.time_base = Fraction(1, 48000)
                samples_done += 1024
                for packet in a.encode(chunk):
                    out.mux(packet)
        for packet in v.encode(None):
            out.mux(packet)
        for packet in a.encode(None):
            out.mux(packet)
    return path


# ------------------------------------------------------------------------------------------ reading output
def ffprobe(path: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", *args, "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=120,
    ).stdout
    return dict(json.loads(out))


def joined(directory: Path, names: list[str], target: Path) -> Path:
    """The segments' bytes one after the other (TS concatenates): one file to decode in one pass."""
    with open(target, "wb") as f:
        for name in names:
            f.write((directory / name).read_bytes())
    return target


@dataclass
class Decoded:
    video: list[tuple[float, np.ndarray, np.ndarray]]  # (pts s, luma, chroma U plane)
    bursts: list[float]  # audio burst onsets (s)
    audio_codec: str = ""
    video_codec: str = ""


def decode(path: Path, fmt: str | None = None) -> Decoded:
    """Video frames and audio burst onsets of a file, both streams in one demux (timestamps as in it)."""
    out = Decoded([], [])
    loud_prev = False
    with av.open(str(path), format=fmt) as container:
        streams = [s for s in (container.streams.video[:1] + container.streams.audio[:1])]
        out.video_codec = container.streams.video[0].codec_context.name if container.streams.video else ""
        out.audio_codec = container.streams.audio[0].codec_context.name if container.streams.audio else ""
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if not isinstance(frame, av.VideoFrame | av.AudioFrame) or frame.pts is None:
                    continue
                assert frame.time_base is not None
                t = float(frame.pts * frame.time_base)
                if isinstance(frame, av.VideoFrame):
                    planes = frame.to_ndarray(format="yuv420p")
                    h = frame.height
                    out.video.append((t, planes[:h], planes[h : h + h // 4]))
                elif isinstance(frame, av.AudioFrame):
                    data = frame.to_ndarray().astype(np.float64)
                    data = data.mean(axis=0) if frame.format.is_planar else data.reshape(-1, 2).mean(axis=1)
                    window = frame.sample_rate // 200
                    for i in range(0, len(data) - window + 1, window):
                        loud = float(np.sqrt(np.mean(data[i : i + window] ** 2))) > 0.05 * (
                            32768 if frame.format.name.startswith("s16") else 1
                        )
                        if loud and not loud_prev:
                            out.bursts.append(t + i / frame.sample_rate)
                        loud_prev = loud
    out.video.sort(key=lambda x: x[0])
    return out


def flashes(video: list[tuple[float, np.ndarray, np.ndarray]]) -> list[float]:
    times, previous = [], False
    for t, y, _ in video:
        bright = float(y[y.shape[0] // 2 :].mean()) > 200
        if bright and not previous:
            times.append(t)
        previous = bright
    return times


def av_offsets(decoded: Decoded, tolerance: float = 0.3) -> list[float]:
    """audio − video per flash with a burst near it."""
    out = []
    for v in flashes(decoded.video):
        near = [a for a in decoded.bursts if abs(a - v) <= tolerance]
        if near:
            out.append(min(near, key=lambda a: abs(a - v)) - v)
    return out


async def wait_for(predicate: Callable[[], bool], within: float, every: float = 0.05) -> None:
    """Until `predicate` holds (a bounded wait on state that signals nothing; only bounds a hang)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"not reached within {within} s")
        await asyncio.sleep(every)
