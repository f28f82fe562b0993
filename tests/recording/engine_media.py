"""Synthetic publishers for the recording engine's tests, fed straight into a Recorder's sinks.

Media as research/recording.md §5 asks: a 16-bit frame counter drawn as blocks, a white flash frame and a
40 ms 1 kHz burst at each whole second of the server's clock, sequence numbers and timestamps starting near
their wrap, audio starting 340 ms after video, each sender's clock offset from ours. Frames are encoded
and packetized by aiortc's own encoders (what an aiortc or browser publisher sends); arrival times are
injected, so minutes of media take seconds. A keyframe request (a sink's True) makes the next frame a
keyframe, as a publisher answering a PLI.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
import subprocess
import time
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

from recording.recorder import Recorder
from recording.track import TrackInfo, TrackSink

BITS = 16


class FakeClock:
    """The recorder's clock, moved by the feeder to each packet's arrival."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def to_ntp(seconds: float) -> int:
    return int(seconds * (1 << 32))


def draw(
    counter: int, width: int, height: int, *, flash: bool, colour: tuple[int, int, int]
) -> av.VideoFrame:
    """A yuv420p frame: background `colour` (Y, U, V) or white when flashing, the counter as blocks on top."""
    y = np.full((height, width), 235 if flash else colour[0], dtype=np.uint8)
    # two rows of eight blocks, a tenth of the width each: big enough that VP8's static-block skipping
    # (aiortc's encoder sets static-thresh and noise sensitivity) never keeps a stale bit
    block = width // 10
    for b in range(BITS):
        row, col = divmod(b, 8)
        y[row * block : (row + 1) * block, col * block : (col + 1) * block] = (
            235 if (counter >> b) & 1 else 16
        )
    u = np.full((height // 2, width // 2), 128 if flash else colour[1], dtype=np.uint8)
    v = np.full((height // 2, width // 2), 128 if flash else colour[2], dtype=np.uint8)
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, data in zip(frame.planes, (y, u, v), strict=True):
        rows = data.shape[0]
        buf = np.zeros((rows, plane.line_size), dtype=np.uint8)
        buf[:, : data.shape[1]] = data
        plane.update(buf.tobytes())
    return frame


def read_counter(y: np.ndarray) -> int:
    """The counter drawn by `draw`, from a decoded luma plane."""
    block = y.shape[1] // 10
    n = 0
    for b in range(BITS):
        row, col = divmod(b, 8)
        if y[row * block + block // 2, col * block + block // 2] > 128:
            n |= 1 << b
    return n


@dataclass
class Participant:
    """One synthetic publisher: a camera (VP8 or H.264) and a microphone (Opus)."""

    pid: str
    codec: str = "vp8"
    width: int = 160
    height: int = 120
    fps: int = 30
    video_start: float = 0.0  # server time (s since the recording's t0) of its first frame
    audio_delay: float = 0.34  # audio starts this much after video
    until: float = 1e9  # server time it stops sending
    clock_offset: float = 1000.0  # its NTP clock minus ours
    colour: tuple[int, int, int] = (110, 128, 128)
    audio: bool = True
    video: bool = True
    counter_start: int = 0
    delay: float = 0.004  # one-way network delay (jitter is added)
    jitter: float = 0.008
    sr_first: float = 0.4  # its first sender report this long after each stream starts
    seed: int = 1
    # filled while feeding
    frames_sent: list[int] = field(default_factory=list)
    keyframe_requests: int = 0
    keyframes_sent: int = 0

    def info(self, kind: str) -> TrackInfo:
        if kind == "video":
            return TrackInfo(f"{self.pid}:v", self.pid, "video", "camera", self.codec, 90000)
        return TrackInfo(f"{self.pid}:a", self.pid, "audio", "mic", "opus", 48000, channels=2)


Drop = Callable[[str, int], bool]  # (kind, seq) -> drop this packet (the first time it is sent)


class Feeder:
    """Plays participants into a recorder on the fake clock, optionally losing and repairing packets."""

    def __init__(self, recorder: Recorder, clock: FakeClock, participants: list[Participant]) -> None:
        self.recorder = recorder
        self.clock = clock
        self.t0 = recorder.t0
        self.participants = participants
        self._net: list[tuple[float, int, Any]] = []
        self._order = itertools.count()
        self.sinks: dict[tuple[str, str], TrackSink] = {}
        self.dropped: list[tuple[str, str, int]] = []
        self.lost_for_good: list[tuple[str, int]] = []

    async def run(
        self,
        duration: float,
        *,
        drop: Drop | None = None,
        repair_after: float | None = 0.05,
        step: float = 0.005,
        drain_every: float = 0.5,
        pace: float | None = None,
    ) -> None:
        """Send `duration` seconds of media (server time from t0); a dropped packet comes again after
        `repair_after` (a NACK answered by RTX) or never (None). `pace`: at most that many times real time."""
        wall = time.monotonic()
        gens = [self._generate(p, duration) for p in self.participants]
        for p in self.participants:
            self._at(p.video_start - 0.01, self._joined(p))
            if p.until < duration:
                self._at(p.until + 0.02, self._left(p))
        pending: list[tuple[float, int, Any]] = []  # media instants (capture time) not yet produced
        for g in gens:
            first = next(g, None)
            if first is not None:
                heapq.heappush(pending, (first[0], next(self._order), (g, first[1])))
        t = 0.0
        next_drain = drain_every
        while pending or self._net:
            t += step
            while pending and pending[0][0] <= t:
                _, _, (g, produce) = heapq.heappop(pending)
                for arrival, call in produce():
                    self._send(arrival, call, drop, repair_after)
                item = next(g, None)
                if item is not None:
                    heapq.heappush(pending, (item[0], next(self._order), (g, item[1])))
            while self._net and self._net[0][0] <= t:
                arrival, _, call = heapq.heappop(self._net)
                self.clock.now = self.t0 + arrival
                call(self.t0 + arrival)
            if pace is not None:
                await asyncio.sleep(max(0.0, wall + t / pace - time.monotonic()))
            if t >= next_drain:
                next_drain += drain_every
                await self.recorder.drain()
            if not pending and not self._net:
                break
        self.clock.now = self.t0 + t
        await self.recorder.drain()

    def _at(self, t: float, call: Any) -> None:
        heapq.heappush(self._net, (max(t, 0.0), next(self._order), call))

    def _joined(self, p: Participant) -> Any:
        def call(now: float) -> None:
            self.recorder.event("joined", participant=p.pid, name=p.pid)

        return call

    def _left(self, p: Participant) -> Any:
        """The participant leaves: its tracks end (what the tap does when a Track is unpublished)."""

        def call(now: float) -> None:
            for kind in ("video", "audio"):
                self.recorder.detach(p.info(kind).track_id)
            self.recorder.event("left", participant=p.pid)

        return call

    def _send(self, arrival: float, call: Any, drop: Drop | None, repair_after: float | None) -> None:
        key = getattr(call, "key", None)
        if drop is not None and key is not None and drop(*key):
            self.dropped.append((key[0], key[2] if len(key) > 2 else "", key[1]))
            if repair_after is None:
                self.lost_for_good.append((key[0], key[1]))
                return
            arrival += repair_after
        heapq.heappush(self._net, (arrival, next(self._order), call))

    def sink(self, p: Participant, kind: str) -> TrackSink:
        key = (p.pid, kind)
        if key not in self.sinks:
            self.sinks[key] = self.recorder.attach(p.info(kind))
        return self.sinks[key]

    def _generate(self, p: Participant, duration: float) -> Any:
        """(capture time, producer) in time order; a producer returns [(arrival, call)]."""
        rng = random.Random(p.seed)
        end = min(duration, p.until)
        streams = []
        if p.video:
            streams.append(self._video(p, rng, end))
        if p.audio:
            streams.append(self._audio(p, rng, end))
        return heapq.merge(*streams, key=lambda x: x[0])

    def _packet_call(  # noqa: PLR0917
        self, sink: TrackSink, p: Participant, kind: str, seq: int, ts: int, marker: bool, payload: bytes
    ) -> Any:
        def call(now: float) -> None:
            if sink.packet("", seq, ts, marker, payload, now) and kind == "video":
                p.keyframe_requests += 1
                p._force = True  # type: ignore[attr-defined]

        call.key = (kind, seq, p.pid)  # type: ignore[attr-defined]
        return call

    def _video(self, p: Participant, rng: random.Random, end: float) -> Any:
        encoder = Vp8Encoder() if p.codec == "vp8" else H264Encoder()
        sink = self.sink(p, "video")
        seq = 65536 - 150  # wraps within seconds
        ts0 = (1 << 32) - 90000 * 3  # wraps after 3 s
        p._force = False  # type: ignore[attr-defined]
        n = 0
        sr_next = p.video_start + p.sr_first
        while True:
            t = p.video_start + n / p.fps
            if t >= end:
                return
            while sr_next <= t:
                yield (
                    sr_next,
                    self._sr(sink, p, sr_next, ts0 + round((sr_next - p.video_start) * 90000), 90000, rng),
                )
                sr_next += 1.0
            counter = (p.counter_start + n) & 0xFFFF
            flash = abs(t - round(t)) < 0.5 / p.fps
            ts = (ts0 + round((t - p.video_start) * 90000)) & 0xFFFFFFFF

            def produce(t: float = t, counter: int = counter, flash: bool = flash, ts: int = ts) -> list[Any]:
                nonlocal seq
                frame = draw(counter, p.width, p.height, flash=flash, colour=p.colour)
                frame.pts = counter
                frame.time_base = Fraction(1, p.fps)
                force = p._force or counter == p.counter_start  # type: ignore[attr-defined]
                p._force = False  # type: ignore[attr-defined]
                payloads, _ = encoder.encode(frame, force_keyframe=force)
                if not payloads:
                    return []
                p.frames_sent.append(counter)
                p.keyframes_sent += force
                base = t + p.delay + 0.002 + rng.random() * p.jitter
                out = []
                for i, payload in enumerate(payloads):
                    marker = i == len(payloads) - 1
                    out.append(
                        (
                            base + i * 0.0002,
                            self._packet_call(sink, p, "video", seq & 0xFFFF, ts, marker, payload),
                        )
                    )
                    seq += 1
                return out

            yield t, produce
            n += 1

    def _audio(self, p: Participant, rng: random.Random, end: float) -> Any:
        encoder = OpusEncoder()
        sink = self.sink(p, "audio")
        start = p.video_start + p.audio_delay if p.video else p.video_start
        seq = 65536 - 40
        ts0 = (1 << 32) - 48000 * 2
        n = 0
        sr_next = start + p.sr_first + 0.3  # an audio SR may come well after its first packet
        while True:
            t = start + n * 0.02
            if t >= end:
                return
            while sr_next <= t:
                yield sr_next, self._sr(sink, p, sr_next, ts0 + round((sr_next - start) * 48000), 48000, rng)
                sr_next += 1.0
            ts = (ts0 + n * 960) & 0xFFFFFFFF

            def produce(t: float = t, ts: int = ts) -> list[Any]:
                nonlocal seq
                samples = np.arange(960) / 48000 + t
                burst = (samples - np.floor(samples)) < 0.04
                tone = np.where(burst, 12000 * np.sin(2 * math.pi * 1000 * samples), 0).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(
                    np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo"
                )
                frame.sample_rate = 48000
                frame.pts = round(t * 48000)
                frame.time_base = Fraction(1, 48000)
                payloads, _ = encoder.encode(frame)
                out = []
                arrival = t + p.delay + rng.random() * p.jitter
                for payload in payloads:
                    out.append(
                        (arrival, self._packet_call(sink, p, "audio", seq & 0xFFFF, ts, True, payload))
                    )
                    seq += 1
                return out

            yield t, produce
            n += 1

    def _sr(  # noqa: PLR0917
        self, sink: TrackSink, p: Participant, t: float, rtp: int, rate: int, rng: random.Random
    ) -> Any:
        def produce() -> list[Any]:
            def call(now: float) -> None:
                sink.sender_report("", to_ntp(t + p.clock_offset), rtp & 0xFFFFFFFF, now)

            return [(t + p.delay + rng.random() * p.jitter, call)]

        return produce


# ------------------------------------------------------------------------------------------ reading files
def ffprobe_json(path: Path, *args: str) -> dict[str, Any]:
    import json

    out = subprocess.run(
        ["ffprobe", "-v", "error", *args, "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=120,
    ).stdout
    return dict(json.loads(out))


def decode_errors(*paths: Path) -> str:
    """What `ffmpeg -v error -f null -` says about the files (empty: clean)."""
    argv = ["ffmpeg", "-nostdin", "-v", "error"]
    for p in paths:
        argv += ["-i", str(p)]
    for i in range(len(paths)):
        argv += ["-map", str(i)]
    argv += ["-f", "null", "-"]
    return subprocess.run(argv, capture_output=True, timeout=120, text=True, check=False).stderr.strip()


def video_frames(path: Path) -> list[tuple[float, np.ndarray]]:
    """(pts seconds, luma plane) of every decoded frame, timestamps as in the file (PyAV decodes)."""
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            out.append((float(frame.pts * frame.time_base), frame.to_ndarray(format="gray")))
    return out


def flash_times_video(frames: list[tuple[float, np.ndarray]]) -> list[float]:
    """The first frame of each run of white frames."""
    times, previous = [], False
    for t, y in frames:
        bright = float(y[y.shape[0] // 2 :].mean()) > 200
        if bright and not previous:
            times.append(t)
        previous = bright
    return times


def flash_times_audio(path: Path, stream_index: int = 0) -> list[float]:
    """The onset of each 1 kHz burst (10 ms windows), timestamps as in the file."""
    times: list[float] = []
    loud_prev = False
    with av.open(str(path)) as container:
        stream = container.streams.audio[stream_index]
        for frame in container.decode(stream):
            raw = frame.to_ndarray()
            threshold = 1500.0 if raw.dtype.kind == "i" else 0.05
            data = raw.astype(np.float64)
            if data.ndim == 2 and frame.format.is_planar:
                data = data.mean(axis=0)
            else:
                data = data.reshape(-1, frame.layout.nb_channels).mean(axis=1)
            rate = frame.sample_rate
            start = float(frame.pts * frame.time_base)
            window = rate // 200
            for i in range(0, len(data) - window + 1, window):
                loud = float(np.sqrt(np.mean(data[i : i + window] ** 2))) > threshold
                if loud and not loud_prev:
                    times.append(start + i / rate)
                loud_prev = loud
    return times


def pair_offsets(audio: list[float], video: list[float], tolerance: float = 0.45) -> list[float]:
    """audio − video for each video flash with an audio burst within `tolerance`."""
    out = []
    for v in video:
        near = [a for a in audio if abs(a - v) <= tolerance]
        if near:
            out.append(min(near, key=lambda a: abs(a - v)) - v)
    return out
