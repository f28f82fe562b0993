"""Transcoder: a camera a room terminal cannot take (VP8, or H.264 in a mode it did not offer) as H.264.

The only re-encode of video in the SFU, and only for SIP legs (DESIGN.md: "transcoded only when codecs cannot
match"). One Transcoder per source Track and terminal format (size limit, packetization mode), shared by every
terminal of the Router that needs that format and closed when the last one lets go (``Transcodes``). It taps
the source like a recorder (sfu/tap.py), decodes and encodes with PyAV (libx264 Constrained Baseline) in its
own thread, off the event loop, and hands the access units back to the loop, where they are packetized and
fanned out to the terminals' Subscriptions as the packets of an unpublished Track (``output``): the
Subscription's switch (keyframe gating, one SSRC, continuous numbers) works on it as on any camera, and its
keyframe requests make the encoder's next picture an IDR.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import av
from aiortc.codecs import depayload
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters

from sfu import fanout
from sfu.metrics import METRICS
from sfu.plain_tracks import KEYFRAME_INTERVAL_S, h264_payloads
from sfu.rtp import RTP_HEADER, RtpHeader, abs_send_time, parse_rtp, split_payload
from sfu.track import Track

if TYPE_CHECKING:
    from sfu.router import Router
    from sfu.tap import TappedTrack, TapSubscription

log = logging.getLogger(__name__)

DECODABLE = ("vp8", "h264")
QUEUE_FRAMES = 8  # access units waiting for the worker; a slower worker drops (and asks for a keyframe)
STOP_WAIT_S = 5.0  # bound on the worker's exit (it finishes the frame in hand)
MAX_NAL_MODE_0 = 1100  # libx264 slice-max-size: every NAL fits one RTP packet (RFC 6184 mode 0)


@dataclass(frozen=True, slots=True)
class TranscodeFormat:
    """What one terminal can take: its negotiated H.264 codec (payload type, profile, mode) and size."""

    codec: RTCRtpCodecParameters
    max_fs: int = 0  # macroblocks per frame (0: up to 720p)
    bitrate: int = 1_000_000

    @property
    def mode(self) -> int:
        return int(str((self.codec.parameters or {}).get("packetization-mode", "0")))

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.mode, self.max_fs, self.bitrate)


def transcodable(track: Track) -> bool:
    return track.kind == "video" and track.codec_name in DECODABLE


def output_size(width: int, height: int, max_fs: int) -> tuple[int, int]:
    """The source's size scaled down (aspect kept, even numbers) to at most 720p and at most `max_fs`
    macroblocks of 16x16 pixels (0: no limit from the terminal), never up."""
    scale = min(1.0, 1280 / max(width, 1), 720 / max(height, 1))
    while True:
        w, h = max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
        if max_fs <= 0 or -(-w // 16) * -(-h // 16) <= max_fs or w <= 16:
            return w, h
        scale *= 0.97


class _Worker:
    """The thread that decodes the source and encodes H.264: only av objects and the queue are its."""

    def __init__(self, codec_name: str, fmt: TranscodeFormat, emit: Any) -> None:
        self._codec_name = codec_name
        self._fmt = fmt
        self._emit = emit  # called in this thread: (rtp timestamp, annex B access unit, keyframe)
        self.inbox: queue.Queue[tuple[int, bytes, bool] | None] = queue.Queue(QUEUE_FRAMES)
        self.cpu_seconds = 0.0
        self.frames = 0
        self._source_size = (0, 0)
        self._thread = threading.Thread(target=self._run, name=f"sfu-transcode-{codec_name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(queue.Full):
            self.inbox.put_nowait(None)
        if self.inbox.full():  # make room for the stop: the frames waiting are of no use any more
            with contextlib.suppress(queue.Empty):
                while True:
                    self.inbox.get_nowait()
            self.inbox.put_nowait(None)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        decoder: Any = av.CodecContext.create(self._codec_name, "r")
        decoder.thread_count = 1  # one core at most per transcode, and its CPU is this thread's
        encoder: Any = None
        while True:
            item = self.inbox.get()
            if item is None:
                return
            ts, data, force = item
            started = time.thread_time()
            try:
                frames = decoder.decode(av.Packet(data))
            except av.error.FFmpegError:
                frames = []
            for frame in frames:
                if encoder is None or (frame.width, frame.height) != self._source_size:
                    encoder = self._encoder(frame.width, frame.height)
                    force = True
                picture = frame.reformat(encoder.width, encoder.height, "yuv420p")
                picture.pts = self.frames
                picture.time_base = encoder.time_base
                picture.pict_type = av.video.frame.PictureType.I if force else av.video.frame.PictureType.NONE
                out = b"".join(bytes(p) for p in encoder.encode(picture))
                self.frames += 1
                if out:
                    self._emit(ts, out, force or b"\x00\x00\x01\x65" in out)
                force = False
            self.cpu_seconds += time.thread_time() - started

    def _encoder(self, width: int, height: int) -> Any:
        self._source_size = (width, height)
        fmt = self._fmt
        out_w, out_h = output_size(width, height, fmt.max_fs)
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = out_w, out_h
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = Fraction(1, 30)
        encoder.bit_rate = fmt.bitrate
        encoder.thread_count = 1
        encoder.gop_size = 600  # keyframes on request (switches, PLI/FIR), not by the clock
        params = "repeat-headers=1:scenecut=0"
        if fmt.mode == 0:
            params += f":slice-max-size={MAX_NAL_MODE_0}"
        encoder.options = {
            "profile": "baseline",
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": params,
        }
        log.info("transcode: %dx%d -> H.264 %dx%d mode %d", width, height, out_w, out_h, fmt.mode)
        return encoder


class Transcoder:
    """One source Track as H.264 in one format; ``output`` is the Track the terminals subscribe to.

    Made and closed by Transcodes; ``close()`` is idempotent and waits for the worker thread.
    """

    def __init__(self, router: Router, source: Track, fmt: TranscodeFormat) -> None:
        self.source = source
        self.format = fmt
        self.output = Track(
            track_id=f"{source.id}:h264",
            participant_id=source.participant_id,
            kind="video",
            source=source.source,
            mid="video",
            params=RTCRtpReceiveParameters(codecs=[fmt.codec]),
            rtcp_ssrc=0,
            send_rtcp=self._keyframe_asked,
            rids=[],
            keyframe_min_interval=KEYFRAME_INTERVAL_S,
            keyframe_retry=KEYFRAME_INTERVAL_S,
            keyframe_join_interval=0.1,
        )
        self._layer = self.output.layers[""]
        self._layer.ssrc = random.getrandbits(32) or 1
        self._seq = random.getrandbits(15)
        self._h = RtpHeader()
        self._loop = asyncio.get_running_loop()
        self._want_key = True
        self._frame = bytearray()
        self._frame_ts: int | None = None
        self._next_seq: int | None = None
        self._broken = False
        self.closed = False
        self.frames_in = 0
        self.frames_dropped = 0
        self.keyframes_out = 0
        self._worker = _Worker(source.codec_name, fmt, self._from_worker)
        self._worker.start()
        self._tap: TapSubscription = router.tap(source.id, self._sink)

    def _sink(self, info: TappedTrack) -> Transcoder:
        return self

    @property
    def cpu_seconds(self) -> float:
        """CPU time the worker thread spent decoding and encoding (benchmarks)."""
        return self._worker.cpu_seconds

    # ------------------------------------------------------------------ TapSink: the source, on the loop
    def packet(  # noqa: PLR0917 (TapSink's signature)
        self, rid: str, seq: int, ts: int, marker: bool, payload: bytes, arrival: float
    ) -> bool:
        if self._next_seq is not None and seq != self._next_seq:
            self._broken = True  # a hole: this frame cannot be decoded, nor what refers to it
        self._next_seq = (seq + 1) & 0xFFFF
        if self._frame_ts is not None and ts != self._frame_ts:
            self._frame.clear()  # a frame whose marker was lost
        self._frame_ts = ts
        try:
            self._frame += depayload(self.source.main_codec, payload)
        except Exception:
            self._broken = True
        if not marker:
            return False
        data, self._frame_ts = bytes(self._frame), None
        self._frame.clear()
        if self._broken:
            self._broken = False
            return True  # the decoder needs a fresh keyframe of the source
        try:
            self._worker.inbox.put_nowait((ts, data, self._want_key))
            self._want_key = False
            self.frames_in += 1
        except queue.Full:
            self.frames_dropped += 1
            return True
        return False

    def sender_report(self, rid: str, ntp: int, rtp: int, arrival: float) -> None:
        # The output keeps the source's RTP timestamps, so its sender reports are the source's.
        layer = self._layer
        layer.sr_ntp, layer.sr_rtp, layer.sr_at = ntp, rtp, arrival

    def ended(self) -> None:
        self._want_key = True

    # ------------------------------------------------------------------ the output, back on the loop
    async def _keyframe_asked(self, data: bytes) -> bool:
        """The output Track's keyframe requests (a switch to it, a PLI or FIR): the next picture is an IDR."""
        self._want_key = True
        return True

    def _from_worker(self, ts: int, access_unit: bytes, keyframe: bool) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._send, ts, access_unit, keyframe)

    def _send(self, ts: int, access_unit: bytes, keyframe: bool) -> None:
        if self.closed:
            return
        track, layer, h = self.output, self._layer, self._h
        if self.format.mode == 0:
            payloads = [nal for nal in _nal_units(access_unit) if nal]
        else:
            payloads = h264_payloads(access_unit)
        if keyframe:
            self.keyframes_out += 1
            layer.awaiting_keyframe = False
        now = time.monotonic()
        abs3 = abs_send_time(now)
        pt = int(self.format.codec.payloadType or 96)
        for i, payload in enumerate(payloads):
            self._seq = (self._seq + 1) & 0xFFFF
            marker = 0x80 if i == len(payloads) - 1 else 0
            data = RTP_HEADER.pack(0x80, marker | pt, self._seq, ts, layer.ssrc) + payload
            if not parse_rtp(data, h):
                continue
            h.arrival = now
            layer.ring[h.seq % len(layer.ring)] = data
            layer.packets += 1
            layer.octets += len(payload)
            if not track.subscriptions:
                continue
            split_payload(data, h, "h264")
            slow = fanout.fan_out(track.subscriptions, layer, data, h, abs3)
            for subscription in slow or ():
                try:
                    if subscription.forward_now(layer, data, h, None, abs3):
                        self._want_key = True
                except Exception:
                    METRICS.hook_errors += 1

    async def close(self) -> None:
        """Stop tapping the source, let the terminals go, stop the worker and wait for it (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._tap.close()
        for subscription in self.output.subscriptions:
            subscription.unbind()
        self.output.closed = True
        self._worker.stop()
        await asyncio.to_thread(self._worker.join, STOP_WAIT_S)


def _nal_units(access_unit: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit (start codes removed)."""
    out: list[bytes] = []
    for chunk in access_unit.split(b"\x00\x00\x01"):
        if chunk:
            out.append(chunk[:-1] if chunk.endswith(b"\x00") else chunk)
    return out


class Transcodes:
    """The Router's Transcoders, shared by the terminals that need the same source in the same format.

    Owned by the Router's plain peers together: ``acquire`` by a PlainPeer that follows a source it cannot
    take, ``release`` when it follows another one or closes; the last release closes the Transcoder.
    """

    def __init__(self, router: Router) -> None:
        self._router = router
        self._active: dict[tuple[str, tuple[int, int, int]], tuple[Transcoder, set[str]]] = {}

    def acquire(self, source: Track, fmt: TranscodeFormat, user: str) -> Transcoder:
        key = (source.id, fmt.key)
        entry = self._active.get(key)
        if entry is None or entry[0].source is not source or entry[0].closed:
            entry = (Transcoder(self._router, source, fmt), set())
            self._active[key] = entry
            log.info("transcode: %s for %s", source.id, user)
        entry[1].add(user)
        return entry[0]

    async def release(self, transcoder: Transcoder, user: str) -> None:
        key = (transcoder.source.id, transcoder.format.key)
        entry = self._active.get(key)
        if entry is not None and entry[0] is transcoder:
            entry[1].discard(user)
            if entry[1]:
                return
            del self._active[key]
        await transcoder.close()

    def active(self) -> list[Transcoder]:
        return [t for t, _ in self._active.values()]


def transcodes(router: Router) -> Transcodes:
    """The Router's Transcodes (made on first use; the plain peers release theirs as they close)."""
    found: Transcodes | None = getattr(router, "_transcodes", None)
    if found is None:
        found = Transcodes(router)
        router._transcodes = found  # type: ignore[attr-defined]
    return found
