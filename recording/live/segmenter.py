"""Segmenter: H.264 access units and PCM audio in, 2 s MPEG-TS segments out (PyAV, in the worker thread).

MPEG-TS rather than fMP4 (research/recording.md §3.1): every segment stands alone (no init segment to change
with EXT-X-MAP when a source switch brings another SPS or size), it takes the Annex B the RTP depayloader
already gives, hls.js and Safari both play it, and E4 measured it. Video is copied (``add_mux_stream``, no
codec context); audio is encoded to AAC here by one encoder that lives as long as the channel, so the audio
timeline stays continuous across segments and source switches (its packets get ADTS headers, which the TS
muxer wants for AAC).

A segment is cut at the first keyframe once it is ``segment_seconds − keyframe_lead_s`` long; the source is
asked for that keyframe from then on (``keyframe_due``). A segment is written under a temporary name and
renamed when complete, then handed to ``on_segment`` (the playlist lists it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from recording.codecs import h264_size
from recording.errors import RecordingError
from recording.live.playlist import Segment
from recording.live.settings import LiveProfile, LiveSettings

log = logging.getLogger(__name__)

VIDEO_RATE = 90000
VIDEO_TB = Fraction(1, VIDEO_RATE)
_SPS, _PPS, _IDR = 7, 8, 5


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit (start codes removed)."""
    out = []
    for part in data.split(b"\x00\x00\x01"):
        nal = part.rstrip(b"\x00")
        if nal:
            out.append(nal)
    return out


def adts_header(length: int, extradata: bytes) -> bytes:
    """The 7-byte ADTS header of one raw AAC frame of `length` bytes (from the AudioSpecificConfig)."""
    aot = extradata[0] >> 3
    rate_index = ((extradata[0] & 7) << 1) | (extradata[1] >> 7)
    channels = (extradata[1] >> 3) & 15
    n = length + 7
    return bytes(
        (
            0xFF,
            0xF1,
            ((aot - 1) << 6) | (rate_index << 2) | (channels >> 2),
            ((channels & 3) << 6) | (n >> 11),
            (n >> 3) & 0xFF,
            ((n & 7) << 5) | 0x1F,
            0xFC,
        )
    )


class ParameterSets:
    """The last SPS and PPS seen; put in front of a keyframe that comes without them."""

    def __init__(self) -> None:
        self.sps: bytes | None = None
        self.pps: bytes | None = None

    def complete(self, data: bytes, keyframe: bool) -> bytes:
        nals = nal_units(data)
        types = {n[0] & 0x1F for n in nals}
        for nal in nals:
            if nal[0] & 0x1F == _SPS:
                self.sps = nal
            elif nal[0] & 0x1F == _PPS:
                self.pps = nal
        if keyframe and _SPS not in types and self.sps is not None and self.pps is not None:
            return b"\x00\x00\x00\x01" + self.sps + b"\x00\x00\x00\x01" + self.pps + data
        return data


class AudioEncoder:
    """PCM (float32 planar, the profile's rate and channels) placed on the output timeline, encoded to AAC.

    The output timeline is counted in samples: audio placed a little early or late (≤ 20 ms) is taken as
    continuous; a later start is filled with silence, an earlier one loses its overlap. So the AAC stream
    never has a gap or an overlap, and its timestamps stay where the sources put them (lip sync).
    """

    TOLERANCE = 0.02

    def __init__(self, profile: LiveProfile) -> None:
        self.rate = profile.audio_rate
        self.channels = profile.audio_channels
        ctx: Any = av.CodecContext.create("aac", "w")
        ctx.sample_rate = self.rate
        ctx.layout = "stereo" if self.channels == 2 else "mono"
        ctx.format = "fltp"
        ctx.bit_rate = profile.audio_bitrate_k * 1000
        ctx.time_base = Fraction(1, self.rate)
        ctx.open()
        self._ctx = ctx
        self.frame_size = int(ctx.frame_size or 1024)
        self.extradata = bytes(ctx.extradata or b"\x11\x90")
        self.cursor = 0  # samples placed so far (the output timeline's audio end)
        self._pending = np.zeros((self.channels, 0), dtype=np.float32)
        self._encoded = 0  # samples handed to the encoder
        self.filled = 0  # samples of silence filled in
        self.dropped = 0  # samples dropped as overlap

    def place(self, t: float, pcm: np.ndarray) -> list[tuple[int, bytes]]:
        """Put `pcm` (channels × n) at output time `t`; the AAC frames now complete: (pts, ADTS frame)."""
        start = round(t * self.rate)
        gap = start - self.cursor
        tol = round(self.TOLERANCE * self.rate)
        if gap > tol:
            self._silence(gap)
        elif gap < -tol:
            cut = min(-gap, pcm.shape[1])
            self.dropped += cut
            pcm = pcm[:, cut:]
        if pcm.shape[1]:
            self._append(pcm)
        return self._encode()

    def fill_to(self, t: float) -> list[tuple[int, bytes]]:
        """Silence up to output time `t` (no audio source, or it stalled)."""
        end = round(t * self.rate)
        if end > self.cursor:
            self._silence(end - self.cursor)
        return self._encode()

    def flush(self) -> list[tuple[int, bytes]]:
        out = self._encode()
        try:
            packets = self._ctx.encode(None)
        except av.FFmpegError:
            return out
        return out + self._packets(packets)

    def _silence(self, n: int) -> None:
        self.filled += n
        self._append(np.zeros((self.channels, n), dtype=np.float32))

    def _append(self, pcm: np.ndarray) -> None:
        if pcm.shape[0] != self.channels:
            pcm = np.repeat(pcm[:1], self.channels, axis=0) if pcm.shape[0] == 1 else pcm[: self.channels]
        self._pending = np.concatenate((self._pending, pcm.astype(np.float32, copy=False)), axis=1)
        self.cursor += pcm.shape[1]

    def _encode(self) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        size = self.frame_size
        while self._pending.shape[1] >= size:
            chunk, self._pending = self._pending[:, :size], self._pending[:, size:]
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk), format="fltp", layout=self._ctx.layout.name
            )
            frame.sample_rate = self.rate
            frame.pts = self._encoded
            frame.time_base = Fraction(1, self.rate)
            self._encoded += size
            out += self._packets(self._ctx.encode(frame))
        return out

    def _packets(self, packets: Any) -> list[tuple[int, bytes]]:
        out = []
        for p in packets:
            raw = bytes(p)
            if p.pts is not None and raw:
                out.append((int(p.pts), adts_header(len(raw), self.extradata) + raw))
        return out


class Segmenter:
    """Cuts the output into MPEG-TS segment files. Times are output seconds (0 = the channel's start)."""

    def __init__(
        self,
        directory: Path,
        settings: LiveSettings,
        profile: LiveProfile,
        *,
        wall0: float,
        on_segment: Callable[[Segment], None],
    ) -> None:
        self.directory = directory
        self.settings = settings
        self.profile = profile
        self.wall0 = wall0  # wall time of output time 0
        self.on_segment = on_segment
        self.audio = AudioEncoder(profile)
        self.parameter_sets = ParameterSets()
        self.sequence = 0  # of the last segment opened
        self._container: Any = None
        self._video: Any = None
        self._audio: Any = None
        self._start = 0.0  # output time of the open segment's first frame
        self._last_video: float | None = None
        self._last_dts: float | None = None
        self.clamped = 0  # frames moved forward to keep the timestamps increasing
        self._frame_interval = 1 / profile.fps
        self._size: tuple[int, int] | None = None
        self._discontinuity = False
        self._cut_next = False  # cut at the next keyframe whatever the length (go-live, a switch)
        self.public = False  # segments opened from now on are public
        self._open_public = False
        self._open_discontinuity = False
        self.frames = 0  # video frames muxed
        self.segment_frames = 0
        self.errors = 0
        self.last_frame_at: float | None = None  # output time of the last video frame muxed

    # ------------------------------------------------------------------------------ feeding
    @property
    def is_open(self) -> bool:
        return self._container is not None

    def keyframe_due(self, t: float) -> bool:
        """Whether the video source should be asked for a keyframe at output time `t`."""
        if self._container is None or self._cut_next:
            return True
        return t - self._start >= self.settings.segment_seconds - self.settings.keyframe_lead_s

    def discontinuity(self) -> None:
        """The next segment follows a source switch: cut at the next keyframe and mark it."""
        self._discontinuity = True
        self._cut_next = True

    def cut_next(self) -> None:
        self._cut_next = True

    def video(self, t: float, data: bytes, keyframe: bool, *, dts: float | None = None) -> None:
        """One H.264 access unit (Annex B) at output time `t` (presentation; `dts` when it differs)."""
        # Times come from sender reports, which move a little as reports come; a frame not after the last one
        # is put just after it, or the muxer would refuse it and the frames after it would not decode.
        last = self._last_video
        # With B-frames (an RTMP encoder: `dts` given) presentation times go back and forth in decode order;
        # only the decode times must increase.
        if last is not None and t <= last and dts is None:
            t = last + 0.001
            self.clamped += 1
        decode_at = t if dts is None else dts
        if self._last_dts is not None and decode_at <= self._last_dts:
            decode_at = self._last_dts + 0.001
        t = max(t, decode_at)
        if keyframe:
            data = self.parameter_sets.complete(data, True)
            size = h264_size(data) or self._size
            if size is None:
                return  # no SPS yet: not decodable
            due = t - self._start >= self.settings.segment_seconds - self.settings.keyframe_lead_s
            if self._container is None or self._cut_next or due or size != self._size:
                if self._size is not None and size != self._size:
                    self._discontinuity = True
                self._cut(t)
                self._open(t, size)
        else:
            self.parameter_sets.complete(data, False)
        if self._container is None:
            return
        if self._last_video is not None and t > self._last_video:
            # The interval seen (for the last segment's duration), bounded: a stall is not a frame.
            self._frame_interval = min(max(t - self._last_video, 1 / 120), 0.1)
        self._last_video = t if dts is None else max(t, self._last_video or t)
        self._last_dts = decode_at
        packet = av.Packet(data)
        packet.stream = self._video
        packet.time_base = VIDEO_TB
        packet.pts = round(t * VIDEO_RATE)
        packet.dts = round(decode_at * VIDEO_RATE)
        packet.is_keyframe = keyframe
        self._mux(packet)
        self.frames += 1
        self.segment_frames += 1
        self.last_frame_at = t

    def audio_pcm(self, t: float, pcm: np.ndarray) -> None:
        """PCM (channels × n float32) at output time `t`."""
        self._audio_packets(self.audio.place(t, pcm))

    def audio_fill(self, t: float) -> None:
        self._audio_packets(self.audio.fill_to(t))

    def _audio_packets(self, packets: list[tuple[int, bytes]]) -> None:
        if self._container is None:
            return
        rate = self.audio.rate
        for pts, data in packets:
            if pts < 0:
                continue
            packet = av.Packet(data)
            packet.stream = self._audio
            packet.time_base = Fraction(1, rate)
            packet.pts = packet.dts = pts
            self._mux(packet)

    def _mux(self, packet: Any) -> None:
        try:
            self._container.mux(packet)
        except av.FFmpegError as exc:  # one bad frame must not end the channel
            self.errors += 1
            if self.errors <= 10:
                log.warning("%s: a packet was not written: %s", self.directory.name, exc)

    # ------------------------------------------------------------------------------ files
    def flush(self) -> Segment | None:
        """Close the open segment at its last frame (the source stopped, or the channel ends)."""
        if self._container is None or self._last_video is None:
            return None
        return self._cut(self._last_video + self._frame_interval)

    def close(self) -> None:
        """Close the open segment (idempotent); the AAC encoder's tail goes into it."""
        if self._container is not None:
            self._audio_packets(self.audio.flush())
        self.flush()

    def _name(self, sequence: int) -> str:
        return f"seg-{sequence:06d}.ts"

    def _open(self, t: float, size: tuple[int, int]) -> None:
        self.sequence += 1
        part = self.directory / f".{self._name(self.sequence)}.part"
        try:
            container: Any = av.open(str(part), "w", format="mpegts")
            self._video = container.add_mux_stream("h264", width=size[0], height=size[1])
            self._audio = container.add_mux_stream("aac", rate=self.audio.rate)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise RecordingError(f"{part}: cannot be opened: {exc}") from exc
        self._container = container
        self._start = t
        self._size = size
        self._open_public = self.public
        self._open_discontinuity = self._discontinuity
        self._discontinuity = False
        self._cut_next = False
        self.segment_frames = 0

    def _cut(self, end: float) -> Segment | None:
        """Close the open segment ending at output time `end`; list it."""
        container, self._container = self._container, None
        if container is None:
            return None
        name = self._name(self.sequence)
        part = self.directory / f".{name}.part"
        try:
            container.close()
            os.replace(part, self.directory / name)
        except (av.FFmpegError, OSError) as exc:
            self.errors += 1
            log.warning("%s: segment %s lost: %s", self.directory.name, name, exc)
            return None
        segment = Segment(
            sequence=self.sequence,
            name=name,
            duration=max(end - self._start, 0.001),
            wall=self.wall0 + self._start,
            discontinuity=self._open_discontinuity and self.sequence > 1,
            public=self._open_public,
            start=self._start,
        )
        self.on_segment(segment)
        return segment
