"""Test media for the load generator: generated once, sent pre-encoded, tagged for latency.

The video is 720p30 H.264 (constrained baseline, 2 Mb/s, an IDR every 2 s) and the audio Opus 32 kb/s in 20 ms
packets, both encoded once with PyAV's bundled libx264/libopus and cached on disk. Publishers hand the encoded
access units to aiortc as ``av.Packet`` objects, so aiortc only packetizes them: no encoder runs while we
measure.

Every video access unit gets one extra SEI NAL (user data unregistered) in front of its first slice carrying
the publisher's wall-clock send time, the frame number and a keyframe flag, in ASCII so no emulation
prevention is needed. An SFU forwards payload untouched, so the subscriber finds the tag in the first RTP
packet of each frame and measures one-way latency and join → first keyframe without depacketizing or decoding.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from aiortc import MediaStreamTrack

VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000
FPS = 30
GOP_FRAMES = 60
SECONDS = 10
TAG_MAGIC = b"YUNHUIBENCHTAG01"  # 16 bytes: the SEI uuid_iso_iec_11578
# Offsets inside the tag body that follows TAG_MAGIC: frame number, send time in ns, keyframe flag.
_FRAME_DIGITS, _TIME_DIGITS = 10, 20
TAG_LENGTH = len(TAG_MAGIC) + _FRAME_DIGITS + _TIME_DIGITS + 1

PROFILE = "42e01f"  # constrained baseline 3.1, what x264's baseline profile writes at 720p30
VIDEO_FILE = "video720p30_2M_g60.h264"
AUDIO_FILE = "audio_opus_32k_20ms.ogg"


@dataclass(frozen=True)
class AccessUnit:
    data: bytes  # Annex B
    keyframe: bool
    slice_offset: int  # where the first VCL NAL's start code begins: the tag goes here


def ensure_media(cache_dir: Path) -> tuple[Path, Path]:
    """Encode the test video and audio into cache_dir unless they are there already."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    video, audio = cache_dir / VIDEO_FILE, cache_dir / AUDIO_FILE
    if not video.exists():
        _encode_video(video)
    if not audio.exists():
        _encode_audio(audio)
    return video, audio


def _source(name: str, args: str, fmt_filter: str, fmt_args: str, sink: str) -> av.filter.Graph:
    graph = av.filter.Graph()
    src = graph.add(name, args)
    fmt = graph.add(fmt_filter, fmt_args)
    out = graph.add(sink)
    src.link_to(fmt)
    fmt.link_to(out)
    graph.configure()
    return graph


def _encode_video(path: Path) -> None:
    graph = _source(
        "testsrc2", f"size=1280x720:rate={FPS}:duration={SECONDS}", "format", "pix_fmts=yuv420p", "buffersink"
    )
    tmp = path.with_suffix(".part")
    with av.open(str(tmp), "w", format="h264") as out:
        # Every IDR carries SPS/PPS (repeat-headers) because publishers jump between IDRs on PLI.
        options = {
            "profile": "baseline",
            "preset": "veryfast",
            "tune": "zerolatency",
            "x264-params": f"keyint={GOP_FRAMES}:min-keyint={GOP_FRAMES}:scenecut=0:bframes=0:"
            "vbv-maxrate=2500:vbv-bufsize=2000:repeat-headers=1",
        }
        stream = out.add_stream("libx264", rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.bit_rate = 2_000_000
        stream.codec_context.gop_size = GOP_FRAMES
        for n, frame in enumerate(_drain(graph)):
            frame.pts = n
            frame.time_base = fractions.Fraction(1, FPS)
            # lavfi marks its frames as I pictures and libx264 honours that: every frame would be an IDR.
            frame.pict_type = av.video.frame.PictureType.NONE
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    tmp.rename(path)


def _encode_audio(path: Path) -> None:
    graph = _source(
        "sine",
        f"frequency=440:sample_rate={AUDIO_CLOCK}:duration={SECONDS}",
        "aformat",
        "sample_fmts=s16:channel_layouts=stereo",
        "abuffersink",
    )
    tmp = path.with_suffix(".part")
    with av.open(str(tmp), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=AUDIO_CLOCK)
        stream.bit_rate = 32_000
        stream.layout = "stereo"
        stream.options = {"frame_duration": "20", "application": "voip"}
        for frame in _drain(graph):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    tmp.rename(path)


def _drain(graph: av.filter.Graph) -> list[Any]:
    frames: list[Any] = []
    while True:
        try:
            frames.append(graph.pull())
        except (av.error.EOFError, av.error.BlockingIOError):
            return frames


def _nal_starts(data: bytes) -> list[tuple[int, int]]:
    """(offset of the start code, NAL type) for every NAL unit of an Annex B access unit."""
    out = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(data):
        start = i - 1 if i > 0 and data[i - 1] == 0 else i
        out.append((start, data[i + 3] & 0x1F))
        i = data.find(b"\x00\x00\x01", i + 3)
    return out


def load_video(path: Path) -> list[AccessUnit]:
    units = []
    with av.open(str(path), format="h264") as container:
        for packet in container.demux(video=0):
            if not packet.size:
                continue
            data = bytes(packet)
            nals = _nal_starts(data)
            slices = [start for start, kind in nals if kind in (1, 5)]
            # The demuxer flags every unit with SPS/PPS as a keyframe; only an IDR slice (type 5) is one.
            units.append(AccessUnit(data, any(kind == 5 for _, kind in nals), slices[0] if slices else 0))
    return units


def load_audio(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(audio=0) if p.size]


def make_tag(frame_no: int, sent_ns: int, keyframe: bool) -> bytes:
    body = TAG_MAGIC + b"%010d%020d%d" % (frame_no, sent_ns, 1 if keyframe else 0)
    # SEI NAL (type 6), payload type 5 = user_data_unregistered, one-byte size, rbsp trailing bits.
    return b"\x00\x00\x00\x01\x06\x05" + bytes([len(body)]) + body + b"\x80"


def read_tag(payload: bytes, start: int) -> tuple[int, bool] | None:
    """(sent_ns, keyframe) of the tag whose magic starts at ``start``, or None when it is cut off."""
    body = start + len(TAG_MAGIC)
    if len(payload) < start + TAG_LENGTH:
        return None
    sent_ns = int(payload[body + _FRAME_DIGITS : body + _FRAME_DIGITS + _TIME_DIGITS])
    return sent_ns, payload[body + _FRAME_DIGITS + _TIME_DIGITS] == 0x31


class _PacedTrack(MediaStreamTrack):
    """Hands out one item per interval on the loop clock without drifting."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self._interval = interval
        self._count = 0
        self._start: float | None = None

    async def _next(self) -> int:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        delay = self._start + self._count * self._interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        self._count += 1
        return self._count - 1


class VideoFileTrack(_PacedTrack):
    """Loops the access units at 30 fps; a keyframe request jumps to the next IDR (rate limited).

    ``speed`` plays the file that many times faster (the soak: many packets in little time); the timestamps
    still follow the wall clock at 90 kHz, as a camera's would.
    """

    kind = "video"

    def __init__(
        self, units: list[AccessUnit], *, keyframe_min_interval: float = 0.1, speed: float = 1.0
    ) -> None:
        super().__init__(1 / (FPS * speed))
        self._ticks = round(VIDEO_CLOCK / (FPS * speed))
        self._units = units
        self._keyframes = [i for i, unit in enumerate(units) if unit.keyframe]
        self._index = 0
        self._keyframe_wanted = False
        self._last_keyframe = -1e9
        self._min_interval = keyframe_min_interval
        self.keyframes_sent = 0
        self.keyframe_requests = 0

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._keyframe_wanted = True

    async def recv(self) -> av.Packet[Any]:
        frame_no = await self._next()
        now = time.monotonic()
        if self._keyframe_wanted and now - self._last_keyframe >= self._min_interval:
            later = [i for i in self._keyframes if i >= self._index]
            self._index = later[0] if later else self._keyframes[0]
        unit = self._units[self._index]
        self._index = (self._index + 1) % len(self._units)
        if unit.keyframe:
            self._keyframe_wanted = False
            self._last_keyframe = now
            self.keyframes_sent += 1
        tag = make_tag(frame_no, time.time_ns(), unit.keyframe)
        packet = av.Packet(unit.data[: unit.slice_offset] + tag + unit.data[unit.slice_offset :])
        packet.pts = frame_no * self._ticks
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return packet


class AudioFileTrack(_PacedTrack):
    kind = "audio"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__(0.02)
        self._packets = packets

    async def recv(self) -> av.Packet[Any]:
        n = await self._next()
        packet = av.Packet(self._packets[n % len(self._packets)])
        packet.pts = n * (AUDIO_CLOCK // 50)
        packet.time_base = fractions.Fraction(1, AUDIO_CLOCK)
        return packet
