"""TapInput: a meeting's or encoder's Tracks (packets from sfu.tap) as timed units, in the worker thread.

The event-loop side is TapInputSink (what Router.tap feeds): it only appends to the pipeline's queue. In the
worker thread each Track gets the recorder's reassembly (recording.rtp.FrameAssembler) and timing from its
sender reports (recording.clock; never by counting frames); Opus is decoded to PCM, H.264 passes as it is
(packet copy), VP8 is transcoded to H.264 (recording/live/transcode.py). Frames wait ``settle_ms`` so that the
participant's clock offset is known from what arrived by then, as in the recorder.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from recording.clock import ParticipantClock, StreamClock
from recording.codecs import rules_for
from recording.live.settings import LiveProfile, LiveSettings
from recording.live.sources import TrackDescription
from recording.live.transcode import Vp8Transcoder
from recording.live.units import AudioUnit, Unit, VideoUnit
from recording.rtp import Frame, FrameAssembler

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Report:
    rid: str
    ntp: int
    rtp: int
    arrival: float


class TapInputSink:
    """sfu.tap.TapSink of one Track of one input: appends to the pipeline's queue, never blocks, no I/O."""

    def __init__(
        self,
        input_id: int,
        track: TrackDescription,
        queue: deque[Any],
        limit: int,
        wake: Callable[[], None],
    ) -> None:
        self.input_id = input_id
        self.track_id = track.track_id
        self.participant_id = track.participant_id
        self.kind = track.kind
        self.codec = track.codec
        self.clock_rate = track.clock_rate
        self._queue = queue
        self._limit = limit
        self._wake = wake
        self.keyframe_wanted = False  # set by the worker thread
        self.keyframe_requests = 0
        self.packets = 0
        self.dropped = 0
        self.closed = False

    def packet(  # noqa: PLR0917 (the hot path: plain values)
        self, rid: str, seq: int, ts: int, marker: bool, payload: bytes, arrival: float
    ) -> bool:
        if self.closed:
            return False
        if len(self._queue) >= self._limit:
            self.dropped += 1
        else:
            self._queue.append((self, rid, seq, ts, marker, payload, arrival))
            self.packets += 1
        if self.keyframe_wanted:
            self.keyframe_wanted = False
            self.keyframe_requests += 1
            return True
        return False

    def sender_report(self, rid: str, ntp: int, rtp: int, arrival: float) -> None:
        if not self.closed:
            self._queue.append((self, Report(rid, ntp, rtp, arrival)))

    def ended(self) -> None:
        self.closed = True
        self._wake()


class _TrackState:
    """Worker-thread state of one tapped Track."""

    def __init__(
        self, sink: TapInputSink, settings: LiveSettings, profile: LiveProfile, participant: ParticipantClock
    ) -> None:
        self.sink = sink
        self.video = sink.kind == "video"
        self.rules = rules_for(sink.codec)
        self.settings = settings
        self.profile = profile
        self.participant = participant
        self.rid: str | None = None
        self.assembler: FrameAssembler | None = None
        self.clocks: dict[str, StreamClock] = {}
        self.held: list[list[Any]] = []  # [rid, frame, mapped]
        self.decoder: Any = None
        self.transcoder: Vp8Transcoder | None = None
        if sink.codec == "opus":
            self.decoder = av.CodecContext.create("opus", "r")
        elif sink.codec == "vp8":
            self.transcoder = Vp8Transcoder(profile, settings)
        elif sink.codec != "h264" and self.video:
            raise ValueError(f"{sink.codec}: cannot go live (h264, vp8)")
        self.last_video: float | None = None  # local time of the last video frame released

    def clock(self, rid: str) -> StreamClock:
        clock = self.clocks.get(rid)
        if clock is None:
            clock = self.clocks[rid] = StreamClock(self.sink.clock_rate)
        return clock

    def packet(  # noqa: PLR0917
        self, rid: str, seq: int, ts: int, marker: bool, payload: bytes, arrival: float
    ) -> None:
        if rid != self.rid or self.assembler is None:
            self.rid = rid  # a simulcast switch: the new layer's own numbering
            s = self.settings
            self.assembler = FrameAssembler(
                self.rules,
                max_wait=s.max_wait_ms / 1000,
                keyframe_after=s.hole_keyframe_ms / 1000,
                audio_wait=s.audio_wait_ms / 1000,
            )
        frames = self.assembler.push(seq, ts, marker, payload, arrival)
        if self.assembler.keyframe_wanted():
            self.sink.keyframe_wanted = True
        self.held.extend([rid, f, False] for f in frames)

    def poll(self, now: float) -> None:
        if self.assembler is not None:
            self.held.extend([self.rid or "", f, False] for f in self.assembler.poll(now))

    def release(self, now: float) -> list[Unit]:
        held = self.held
        if not held:
            return []
        for entry in held:
            if not entry[2]:
                clock = self.clocks.get(entry[0])
                if clock is not None and clock.mapped:
                    entry[2] = True
                    self.participant.observe(clock.sender_time(entry[1].ts), entry[1].arrival)
        settle = self.settings.settle_ms / 1000
        wait = self.settings.sender_report_wait_ms / 1000
        ready = 0
        for _, frame, mapped in held:
            if now - frame.arrival < (settle if mapped else wait):
                break
            ready += 1
        batch, self.held = held[:ready], held[ready:]
        out: list[Unit] = []
        for rid, frame, mapped in batch:
            clock = self.clocks.get(rid)
            if mapped and clock is not None and self.participant.offset is not None:
                t = self.participant.local(clock.sender_time(frame.ts))
            else:
                t = frame.arrival
            out.extend(self._units(t, frame))
        return out

    def _units(self, t: float, frame: Frame) -> list[Unit]:
        if self.video:
            self.last_video = t
            if self.transcoder is not None:
                return list(self.transcoder.transcode(t, frame.data, frame.keyframe))
            return [VideoUnit(t, frame.data, frame.keyframe)]
        if self.decoder is None:
            return []
        try:
            decoded = self.decoder.decode(av.Packet(frame.data))
        except av.FFmpegError:
            return []
        out: list[Unit] = []
        for audio in decoded:
            pcm = audio.to_ndarray()
            if not audio.format.is_planar:
                pcm = pcm.reshape(-1, audio.layout.nb_channels).T
            out.append(AudioUnit(t, np.asarray(pcm, dtype=np.float32), self.sink.track_id))
            t += audio.samples / (audio.sample_rate or 48000)
        return out

    def close(self) -> None:
        if self.transcoder is not None:
            self.transcoder.close()


class TapInput:
    """One meeting or encoder source's Tracks in the worker thread."""

    kind = "tap"

    def __init__(self, input_id: int, settings: LiveSettings, profile: LiveProfile, label: str) -> None:
        self.input_id = input_id
        self.settings = settings
        self.profile = profile
        self.label = label
        self.tracks: dict[int, _TrackState] = {}  # by id(sink)
        self.participants: dict[str, ParticipantClock] = {}
        self.failed = 0

    def _state(self, sink: TapInputSink) -> _TrackState | None:
        state = self.tracks.get(id(sink))
        if state is None:
            try:
                participant = self.participants.setdefault(sink.participant_id, ParticipantClock())
                state = self.tracks[id(sink)] = _TrackState(sink, self.settings, self.profile, participant)
            except ValueError as exc:
                self.failed += 1
                if self.failed == 1:
                    log.warning("live input %s: %s", self.label, exc)
                sink.closed = True
                return None
        return state

    def item(self, sink: TapInputSink, item: tuple[Any, ...]) -> None:
        """One queued item of `sink`: a packet's values or a Report."""
        state = self._state(sink)
        if state is None:
            return
        if len(item) == 1:
            report = item[0]
            state.clock(report.rid).report(report.ntp, report.rtp)
        else:
            state.packet(*item)

    def pull(self, now: float) -> list[Unit]:
        """The units that are ready at `now`, in time order."""
        out: list[Unit] = []
        for state in self.tracks.values():
            state.poll(now)
            out.extend(state.release(now))
        out.sort(key=lambda u: u.t)
        return out

    @property
    def video_sinks(self) -> list[TapInputSink]:
        return [s.sink for s in self.tracks.values() if s.video and not s.sink.closed]

    @property
    def transcoding(self) -> bool:
        return any(s.transcoder is not None for s in self.tracks.values() if not s.sink.closed)

    def request_keyframe(self) -> None:
        for sink in self.video_sinks:
            sink.keyframe_wanted = True

    def start(self, now: float) -> None:
        """Going on air: a copied video starts at a keyframe, asked for now."""
        self.request_keyframe()

    def close(self) -> None:
        for state in self.tracks.values():
            state.close()
        self.tracks.clear()
