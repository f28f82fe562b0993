"""Mixer: the audio of one meeting for its SIP legs (research/sip-gateway.md §3.1 "Audio downlink").

Every 20 ms (one owned task): decode, once, the Opus of the K=3 loudest publishers of the Router (taps, so
no second PeerConnection), and for each leg mix everyone but the leg itself, resample and encode in the
leg's codec (PCMU, PCMA, G.722 or Opus, PyAV). The other way: the terminal's G.711/G.722/Opus is decoded,
encoded as Opus and published with its RFC 6464 level (PlainPeer.publish_audio), so the room system can
become the active speaker. A quiet room still gets a frame every 20 ms (silence), so the call stays up.

This is the only decode/encode of the media path; it runs on the event loop, away from the forwarding
hot path (research/sip.md §5.2: about 1-2 % of a core per leg, see docs/benchmarks.md "sip").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import av
import numpy as np

from sfu.events import RouterEvent, TrackPublished, TrackUnpublished
from sfu.router import Router
from sfu.tap import TappedTrack, TapSubscription

log = logging.getLogger(__name__)

LegCodec = Literal["pcmu", "pcma", "g722", "opus"]
FRAME_S = 0.02
LOUDEST = 3
MIX_RATE = 48000
FRAME = 960  # samples per 20 ms at MIX_RATE
QUEUE = 5  # frames kept per publisher (100 ms): older ones are dropped, latency stays bounded
# A leg's send(payload, samples): one encoded 20 ms frame and its RTP clock ticks (PlainPeer.send_audio).
SendAudio = Callable[[bytes, int], None]
# A leg's publish(opus, level): the terminal's voice as Opus, its RFC 6464 level (PlainPeer.publish_audio).
PublishAudio = Callable[[bytes, int], None]


@dataclass(frozen=True, slots=True)
class CodecInfo:
    """How a leg's codec is run by PyAV: its ffmpeg names, sample rate, RTP clock ticks per 20 ms."""

    encoder: str
    decoder: str
    rate: int
    rtp_samples: int


CODECS: dict[str, CodecInfo] = {
    "pcmu": CodecInfo("pcm_mulaw", "pcm_mulaw", 8000, 160),
    "pcma": CodecInfo("pcm_alaw", "pcm_alaw", 8000, 160),
    "g722": CodecInfo("g722", "g722", 16000, 160),  # 16 kHz audio on an 8 kHz RTP clock (RFC 3551)
    "opus": CodecInfo("libopus", "opus", 48000, 960),
}


def codec_of(name: str) -> LegCodec:
    """The LegCodec of an SDP encoding name ("PCMU", "G722", "opus", ...); ValueError otherwise."""
    key = name.lower()
    if key not in CODECS:
        raise ValueError(f"codec {name!r}: the mixer takes PCMU, PCMA, G.722 or Opus")
    return key  # type: ignore[return-value]


def audio_level(pcm: np.ndarray) -> int:
    """RFC 6464 level of 16-bit samples: -dBov, 0 (loudest) .. 127 (silence)."""
    if not len(pcm):
        return 127
    rms = math.sqrt(float(np.mean(np.square(pcm.astype(np.float64)))))
    if rms < 1.0:
        return 127
    return max(0, min(127, round(-20 * math.log10(rms / 32768))))


def _encoder(info: CodecInfo) -> av.AudioCodecContext:
    codec = av.CodecContext.create(info.encoder, "w")
    assert isinstance(codec, av.AudioCodecContext)
    codec.sample_rate = info.rate
    codec.layout = "mono"
    codec.format = "s16"
    if info.encoder == "libopus":
        codec.bit_rate = 32000
    return codec


def _decoder(name: str, rate: int, layout: str = "mono") -> av.AudioCodecContext:
    codec = av.CodecContext.create(name, "r")
    assert isinstance(codec, av.AudioCodecContext)
    codec.sample_rate = rate
    codec.layout = layout
    return codec


def _frame(pcm: np.ndarray, rate: int, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    frame.pts = pts
    return frame


def _mono(frames: list[av.AudioFrame]) -> np.ndarray:
    parts = [f.to_ndarray().reshape(-1) for f in frames]
    return np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, np.int16)


class _Source:
    """One publisher's audio Track as tapped: its queued Opus frames and its decoder."""

    def __init__(self, info: TappedTrack) -> None:
        self.info = info
        self.participant_id = info.participant_id
        self.queue: deque[bytes] = deque(maxlen=QUEUE)
        self.decoder = _decoder("opus", 48000, "stereo" if info.channels == 2 else "mono")
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=MIX_RATE)
        self.tap: TapSubscription | None = None
        self.finished = False
        self.decoded = 0

    # TapSink: enqueue only (it runs inside the publisher's receive path)
    def packet(  # noqa: PLR0917 (TapSink's signature)
        self, rid: str, seq: int, ts: int, marker: bool, payload: bytes, arrival: float
    ) -> bool:
        self.queue.append(payload)
        return False

    def sender_report(self, rid: str, ntp: int, rtp: int, arrival: float) -> None:
        return None

    def ended(self) -> None:
        self.finished = True

    def decode(self, payload: bytes) -> np.ndarray:
        """One Opus frame as 960 16-bit samples at 48 kHz (silence if it does not decode)."""
        pcm = np.zeros(FRAME, np.int16)
        try:
            frames = self.decoder.decode(av.Packet(payload))
            out = _mono([r for f in frames for r in self.resampler.resample(f)])
        except (av.error.FFmpegError, ValueError):
            return pcm
        self.decoded += 1
        n = min(FRAME, len(out))
        pcm[:n] = out[:n]
        return pcm


class _Encoding:
    """A mix on its way out in one codec: resampler and encoder state, one 20 ms frame per call."""

    def __init__(self, codec: LegCodec) -> None:
        self.info = CODECS[codec]
        self.encoder = _encoder(self.info)
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=self.info.rate)
        self.pts = 0  # in samples at the codec's rate
        self.buffer = np.zeros(0, np.int16)
        self.frames = 0

    def encode(self, pcm: np.ndarray) -> list[bytes]:
        """Resample to the codec's rate and encode exactly one 20 ms frame (the resampler's own delay is
        made up with leading silence once, so every call gives one frame of the same duration)."""
        info = self.info
        if info.rate != MIX_RATE:
            pcm = _mono(self.resampler.resample(_frame(pcm, MIX_RATE, self.pts * MIX_RATE // info.rate)))
        count = info.rate // 50
        buffered = np.concatenate((self.buffer, pcm))
        if len(buffered) < count:
            buffered = np.concatenate((np.zeros(count - len(buffered), np.int16), buffered))
        chunk, self.buffer = buffered[:count], buffered[count:]
        out = [bytes(p) for p in self.encoder.encode(_frame(chunk, info.rate, self.pts))]
        self.pts += count
        self.frames += 1
        return out


class _Leg:
    """One SIP leg: its own encoding of the mix (used while its voice is in the mix), its decoder and Opus
    encoder for what it says."""

    def __init__(self, leg_id: str, codec: LegCodec, send: SendAudio, publish: PublishAudio | None) -> None:
        self.id = leg_id
        self.codec = codec
        self.info = CODECS[codec]
        self.send = send
        self.publish = publish
        self.own = _Encoding(codec)
        self.frames_sent = 0
        # The other way: the terminal's audio to Opus at 48 kHz, 20 ms frames.
        self.decoder = _decoder(self.info.decoder, self.info.rate)
        self.up_resampler = av.AudioResampler(format="s16", layout="mono", rate=MIX_RATE)
        self.up_encoder = _encoder(CODECS["opus"])
        self.up_buffer = np.zeros(0, np.int16)
        self.up_pts = 0
        self.frames_published = 0
        self.level = 127


class Mixer:
    """The N−1 mixes of one meeting (owned by the gateway, one per Router with SIP legs).

    `run=False` leaves the clock to the caller (``tick()`` per 20 ms frame: tests and benchmarks).
    """

    def __init__(self, router: Router, *, run: bool = True, loudest: int = LOUDEST) -> None:
        self._router = router
        self._run_clock = run
        self._loudest = loudest
        self._sources: dict[str, _Source] = {}  # by track id
        self._legs: dict[str, _Leg] = {}
        self._shared: dict[str, _Encoding] = {}  # by codec: the mix of legs whose voice is not in it
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        self.ticks = 0
        router.add_listener(self._on_event)
        for track in list(router.tracks.values()):
            if track.kind == "audio":
                self._tap(track.id)

    @property
    def legs(self) -> tuple[str, ...]:
        return tuple(self._legs)

    # ------------------------------------------------------------------------------------- legs
    def add_leg(
        self, leg_id: str, codec: LegCodec, send: SendAudio, publish: PublishAudio | None = None
    ) -> None:
        """Mix for `leg_id` (the leg's participant id: its own published audio is left out) into `send`;
        `publish` gets the leg's own voice as Opus (from ``receive``). Again with the same id: replaced."""
        if self.closed:
            raise RuntimeError("mixer is closed")
        if codec not in CODECS:
            raise ValueError(f"codec {codec!r}: not one of {sorted(CODECS)}")
        self._legs[leg_id] = _Leg(leg_id, codec, send, publish)
        if self._run_clock and self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"sip-mixer:{self._router.meeting_id}")

    def remove_leg(self, leg_id: str) -> None:
        """Stop mixing for `leg_id` (unknown: no-op)."""
        self._legs.pop(leg_id, None)

    def receive(self, leg_id: str, payload: bytes, pt: int, timestamp: int) -> None:
        """The terminal's audio packet (PlainPeer.on_audio): decoded, re-encoded as Opus, published."""
        leg = self._legs.get(leg_id)
        if leg is None or leg.publish is None or not payload:
            return
        try:
            frames = leg.decoder.decode(av.Packet(payload))
            pcm = _mono([r for f in frames for r in leg.up_resampler.resample(f)])
        except (av.error.FFmpegError, ValueError):
            return
        leg.up_buffer = np.concatenate((leg.up_buffer, pcm))
        while len(leg.up_buffer) >= FRAME:
            chunk, leg.up_buffer = leg.up_buffer[:FRAME], leg.up_buffer[FRAME:]
            leg.level = audio_level(chunk)
            for packet in leg.up_encoder.encode(_frame(chunk, MIX_RATE, leg.up_pts)):
                leg.publish(bytes(packet), leg.level)
                leg.frames_published += 1
            leg.up_pts += FRAME

    # ------------------------------------------------------------------------------------- the clock
    def tick(self) -> None:
        """One 20 ms frame: decode the loudest publishers once, send every leg its N−1 mix."""
        self.ticks += 1
        for track_id in [t for t, s in self._sources.items() if s.finished]:
            self._sources.pop(track_id, None)
        ready = [s for s in self._sources.values() if s.queue]
        if len(ready) > self._loudest:
            scores = self._router.audio_scores()
            ready.sort(key=lambda s: scores.get(s.participant_id, 0.0), reverse=True)
            for skipped in ready[self._loudest :]:
                skipped.queue.popleft()  # not heard this frame; its decoder catches up from the next
            ready = ready[: self._loudest]
        decoded = {s.participant_id: s.decode(s.queue.popleft()).astype(np.int32) for s in ready}
        total = np.zeros(FRAME, np.int32)
        for pcm in decoded.values():
            total += pcm
        everyone = np.clip(total, -32768, 32767).astype(np.int16)
        # Legs not in the mix all hear the same thing: encoded once per codec this frame, the bytes shared
        # (a leg moves to its own encoding while it is one of the loudest, and back).
        shared: dict[str, list[bytes]] = {}
        for leg in list(self._legs.values()):
            own = decoded.get(leg.id)
            try:
                if own is not None:
                    payloads = leg.own.encode(np.clip(total - own, -32768, 32767).astype(np.int16))
                elif leg.codec in shared:
                    payloads = shared[leg.codec]
                else:
                    encoding = self._shared.get(leg.codec)
                    if encoding is None:
                        encoding = self._shared[leg.codec] = _Encoding(leg.codec)
                    payloads = shared[leg.codec] = encoding.encode(everyone)
                for payload in payloads:
                    leg.send(payload, leg.info.rtp_samples)
                    leg.frames_sent += 1
            except Exception:
                log.exception("mixer %s: leg %s failed", self._router.meeting_id, leg.id)

    async def _run(self) -> None:
        """The media clock: one tick per 20 ms of wall time, catching up (not drifting) after a slow tick."""
        next_at = time.monotonic()
        while True:
            next_at += FRAME_S
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.2:  # far behind (a stalled loop): start the clock again rather than burst
                next_at = time.monotonic()
            try:
                self.tick()
            except Exception:
                log.exception("mixer %s: tick failed", self._router.meeting_id)

    # ------------------------------------------------------------------------------------- sources
    def _on_event(self, event: RouterEvent) -> None:
        if self.closed:
            return
        if isinstance(event, TrackPublished) and event.kind == "audio":
            self._tap(event.track_id)
        elif isinstance(event, TrackUnpublished):
            source = self._sources.pop(event.track_id, None)
            if source is not None and source.tap is not None:
                source.tap.close()

    def _tap(self, track_id: str) -> None:
        if track_id in self._sources:
            return
        holder: list[_Source] = []

        def sink_for(info: TappedTrack) -> _Source:
            holder.append(_Source(info))
            return holder[0]

        try:
            tap = self._router.tap(track_id, sink_for)
        except Exception:
            log.exception("mixer %s: cannot tap %s", self._router.meeting_id, track_id)
            return
        holder[0].tap = tap
        self._sources[track_id] = holder[0]

    async def close(self) -> None:
        """Stop the clocked task, untap every publisher and drop every leg (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for source in self._sources.values():
            if source.tap is not None:
                source.tap.close()
        self._sources.clear()
        self._legs.clear()
