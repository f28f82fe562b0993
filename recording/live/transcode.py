"""Vp8Transcoder: a VP8 publisher's frames to H.264 of the channel profile (PyAV, in the worker thread).

Only the stream on air is transcoded, and only when the publisher sends VP8 (research/recording.md §3.2: the
SDK prefers H.264 in live mode, so this is the exception). libvpx's decoder and x264 ``veryfast``
``zerolatency`` without B-frames and in one thread (``threads=1``: it must not take the cores a meeting needs;
measured ≤ 0.75 core at 720p30, docs/benchmarks.md): zerolatency gives each frame back at once, so its time is
the VP8 frame's. A keyframe is forced every ``segment_seconds`` of source time, so every segment can start
with one (WebRTC encoders make keyframes only when asked).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av

from recording.live.settings import LiveProfile, LiveSettings
from recording.live.units import VideoUnit

log = logging.getLogger(__name__)

RATE = 90000


class Vp8Transcoder:
    def __init__(self, profile: LiveProfile, settings: LiveSettings) -> None:
        self.profile = profile
        self.settings = settings
        self._decoder: Any = av.CodecContext.create("vp8", "r")
        self._encoder: Any = None
        self._next_key: float | None = None
        self._times: dict[int, float] = {}
        self.frames_in = 0
        self.frames_out = 0
        self.errors = 0

    def _open(self) -> Any:
        p = self.profile
        enc: Any = av.CodecContext.create("libx264", "w")
        enc.width, enc.height = p.width, p.height
        enc.pix_fmt = "yuv420p"
        enc.time_base = Fraction(1, RATE)
        enc.framerate = Fraction(p.fps, 1)
        enc.bit_rate = p.video_bitrate_k * 1000
        gop = str(max(1, round(p.fps * self.settings.segment_seconds)))
        enc.options = {
            "preset": p.preset,
            "tune": "zerolatency",
            "bf": "0",
            "g": gop,
            "keyint_min": gop,
            "threads": "1",
            "forced-idr": "1",
            "sc_threshold": "0",  # no scene-cut keyframes between the forced ones: segments stay 2 s
            "profile": "main",
        }
        enc.open()
        return enc

    def transcode(self, t: float, data: bytes, keyframe: bool) -> Iterator[VideoUnit]:
        """One VP8 frame at local time `t`; the H.264 access units it gives (zero latency: that frame)."""
        try:
            frames = self._decoder.decode(av.Packet(data))
        except av.FFmpegError as exc:
            self.errors += 1
            if self.errors <= 3:
                log.warning("vp8 transcode: a frame could not be decoded: %s", exc)
            return
        p = self.profile
        for decoded in frames:
            frame = decoded
            self.frames_in += 1
            if self._encoder is None:
                self._encoder = self._open()
            if frame.width != p.width or frame.height != p.height or frame.format.name != "yuv420p":
                frame = frame.reformat(width=p.width, height=p.height, format="yuv420p")
            pts = round(t * RATE)
            frame.pts = pts
            frame.time_base = Fraction(1, RATE)
            if self._next_key is None or t >= self._next_key - 0.5 / p.fps:
                frame.pict_type = av.video.frame.PictureType.I
                self._next_key = (
                    t if self._next_key is None else self._next_key
                ) + self.settings.segment_seconds
                if self._next_key <= t:
                    self._next_key = t + self.settings.segment_seconds
            else:
                frame.pict_type = av.video.frame.PictureType.NONE
            self._times[pts] = t
            try:
                packets = self._encoder.encode(frame)
            except av.FFmpegError as exc:
                self.errors += 1
                log.warning("vp8 transcode: a frame could not be encoded: %s", exc)
                continue
            for packet in packets:
                at = self._times.pop(int(packet.pts), t) if packet.pts is not None else t
                self.frames_out += 1
                yield VideoUnit(at, bytes(packet), bool(packet.is_keyframe))
            if len(self._times) > 64:  # never more than zerolatency's none; bounded anyway
                self._times.clear()

    def close(self) -> None:
        self._encoder = None
        self._decoder = None
