"""TrackFile: one Track's frames muxed into Matroska/WebM written live (no decoding), by the writer thread.

PyAV's ``add_mux_stream`` makes a stream without a codec context; for H.264 PyAV holds packets back until it
has seen SPS/PPS and writes the avcC itself. Opus gets its OpusHead from a libopus encoder that is opened for
its extradata and never fed. Live mode (``live=1``, a cluster every ``cluster_ms``, every packet flushed)
leaves a file a kill -9 cuts at most a cluster short of what was muxed (research/recording.md §2.6); it has
no duration and no Cues until the remux at close (or at the next start after a crash).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from recording.errors import RecordingError

log = logging.getLogger(__name__)

MS = Fraction(1, 1000)

# Container and extension per codec: WebM for what browsers play from it (VP8, Opus), Matroska otherwise.
EXTENSIONS = {"vp8": "webm", "opus": "webm", "h264": "mkv", "pcmu": "mkv", "pcma": "mkv", "g722": "mkv"}
_MUX_NAMES = {"pcmu": "pcm_mulaw", "pcma": "pcm_alaw", "g722": "g722"}


def extension(codec: str) -> str:
    return EXTENSIONS.get(codec, "mkv")


class TrackFile:
    """One open recording file. ``write`` takes frames in order with pts in ms; ``close`` is idempotent."""

    def __init__(
        self,
        path: Path,
        codec: str,
        *,
        width: int = 0,
        height: int = 0,
        sample_rate: int = 48000,
        channels: int = 2,
        cluster_ms: int = 1000,
    ) -> None:
        self.path = path
        self.codec = codec
        self.frames = 0
        self.bytes = 0
        self.first_pts: int | None = None
        self.last_pts: int | None = None
        self.clamped = 0  # frames whose pts had to be moved forward to stay increasing
        fmt = "webm" if extension(codec) == "webm" else "matroska"
        options = {"live": "1", "cluster_time_limit": str(cluster_ms), "flush_packets": "1"}
        try:
            self._container: Any = av.open(str(path), "w", format=fmt, options=options)
            self._stream: Any
            if codec == "opus":
                layout = "stereo" if channels >= 2 else "mono"
                self._stream = self._container.add_stream("libopus", rate=48000, layout=layout)
            elif codec in ("vp8", "h264"):
                self._stream = self._container.add_mux_stream(codec, width=width, height=height)
            else:
                self._stream = self._container.add_mux_stream(
                    _MUX_NAMES.get(codec, codec), rate=sample_rate, layout="mono"
                )
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise RecordingError(f"{path.name}: cannot open for {codec}: {exc}") from exc
        self._closed = False

    def write(self, data: bytes, pts_ms: int, keyframe: bool) -> None:
        """One frame; a pts not after the last one is moved just after it (the muxer refuses it)."""
        if self._closed or not data:
            return
        if self.last_pts is not None and pts_ms <= self.last_pts:
            pts_ms = self.last_pts + 1
            self.clamped += 1
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.time_base = MS
        packet.pts = packet.dts = pts_ms
        packet.is_keyframe = keyframe
        try:
            self._container.mux(packet)
        except av.FFmpegError as exc:  # one bad frame must not end the recording
            log.warning("%s: frame at %d ms not written: %s", self.path.name, pts_ms, exc)
            return
        if self.first_pts is None:
            self.first_pts = pts_ms
        self.last_pts = pts_ms
        self.frames += 1
        self.bytes += len(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except av.FFmpegError as exc:
            log.warning("%s: closing failed: %s", self.path.name, exc)
