"""TrackRecording: one Track's packets to its file, in the writer thread (reassembly, timing, muxing).

Its queue is filled by a TrackSink on the event loop (``packet`` only appends; a full queue drops and counts,
and the hole it leaves restarts the recording from a keyframe). A simulcast switch starts the new layer's own
reassembly and its own sender-report mapping; the file goes on.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recording.clock import ParticipantClock, StreamClock
from recording.codecs import CodecRules, rules_for
from recording.errors import RecordingError
from recording.rtp import Frame, FrameAssembler
from recording.settings import RecordingSettings
from recording.timeline import TimelineEvent
from recording.writer import TrackFile, extension

log = logging.getLogger(__name__)

PART = ".part"  # a file still being written (or left by a crash): "<stem>.part.<ext>"


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """A Track to record, as the wiring knows it (sfu.tap.TappedTrack's values plus who it is)."""

    track_id: str
    participant_id: str
    kind: str  # "audio" or "video"
    source: str  # "mic", "camera", "screen"
    codec: str  # lower-case: "opus", "vp8", "h264", ...
    clock_rate: int
    channels: int = 0
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class _Report:
    rid: str
    ntp: int
    rtp: int
    arrival: float


@dataclass(frozen=True, slots=True)
class _End:
    at: float


class TrackSink:
    """The event-loop side of one recorded Track (what sfu.tap.TapSink asks for): never blocks, no I/O."""

    def __init__(self, info: TrackInfo, limit: int, wake: Callable[[], None]) -> None:
        self.info = info
        self.queue: deque[Any] = deque()
        self._limit = limit
        self._wake = wake
        self.keyframe_wanted = False  # set by the writer thread, read here
        self.packets = 0
        self.dropped = 0  # packets refused because the writer thread fell behind
        self.keyframe_requests = 0
        self.closed = False

    def packet(  # noqa: PLR0917 (the hot path: plain values, no object per packet)
        self, rid: str, seq: int, ts: int, marker: bool, payload: bytes, arrival: float
    ) -> bool:
        if self.closed:
            return False
        if len(self.queue) >= self._limit:
            self.dropped += 1
        else:
            self.queue.append((rid, seq, ts, marker, payload, arrival))
            self.packets += 1
        if self.keyframe_wanted:
            self.keyframe_wanted = False
            self.keyframe_requests += 1
            return True
        return False

    def sender_report(self, rid: str, ntp: int, rtp: int, arrival: float) -> None:
        if not self.closed:
            self.queue.append(_Report(rid, ntp, rtp, arrival))

    def ended(self) -> None:
        self.end(0.0)

    def end(self, at: float) -> None:
        """No more packets; `at` (the recorder's clock, 0: at the writer's next tick) ends the track there."""
        if not self.closed:
            self.closed = True
            self.queue.append(_End(at))
            self._wake()


def file_stem(index: int, info: TrackInfo) -> str:
    """A file name that says whose track it is, safe on any file system."""
    who = re.sub(r"[^A-Za-z0-9_-]+", "_", info.participant_id)[:40] or "participant"
    return f"{index:02d}-{who}-{info.source}-{info.kind}"


class TrackRecording:
    """Writer-thread state of one Track. ``step`` drains its queue; ``finish`` closes its file."""

    def __init__(
        self,
        sink: TrackSink,
        *,
        directory: Path,
        index: int,
        participant: ParticipantClock,
        settings: RecordingSettings,
        t0: float,
        emit: Callable[[TimelineEvent], None],
    ) -> None:
        self.sink = sink
        self.info = sink.info
        self.rules: CodecRules = rules_for(self.info.codec)
        self.stem = file_stem(index, self.info)
        self.name = f"{self.stem}.{extension(self.info.codec)}"
        self.part = directory / f"{self.stem}{PART}.{extension(self.info.codec)}"
        self._participant = participant
        self._settings = settings
        self._t0 = t0
        self._emit = emit
        self._rid: str | None = None
        self._assembler: FrameAssembler | None = None
        self._clocks: dict[str, StreamClock] = {}
        self._held: list[list[Any]] = []  # [rid, frame, observed] in arrival order
        self.file: TrackFile | None = None
        self.ended = False
        self.arrival_timed = 0  # frames timed by arrival (no sender report in time)
        self.holes = 0
        self.frames_before_file = 0
        self.superseded = 0  # frames of a layer switched away from, replaced by the new layer's

    # ------------------------------------------------------------------------------ queue
    def step(self, now: float) -> None:
        """Take everything queued, then let holes time out at `now`."""
        queue = self.sink.queue
        while queue:
            item = queue.popleft()
            if type(item) is tuple:
                self._packet(*item)
            elif isinstance(item, _Report):
                self._clock(item.rid).report(item.ntp, item.rtp)
            elif isinstance(item, _End):
                self.finish(item.at or now)
                return
        if self._assembler is not None:
            self._frames(self._rid or "", self._assembler.poll(now))
        self._release(now)

    def _clock(self, rid: str) -> StreamClock:
        clock = self._clocks.get(rid)
        if clock is None:
            clock = self._clocks[rid] = StreamClock(self.info.clock_rate)
        return clock

    def _packet(  # noqa: PLR0917 (the queued tuple as it is)
        self, rid: str, seq: int, ts: int, marker: bool, payload: bytes, arrival: float
    ) -> None:
        if self.ended:
            return
        if rid != self._rid or self._assembler is None:
            self._rid = rid  # a simulcast switch (always at a keyframe): the new layer's own numbering
            self._assembler = FrameAssembler(
                self.rules,
                max_wait=self._settings.max_wait_ms / 1000,
                keyframe_after=self._settings.hole_keyframe_ms / 1000,
                audio_wait=self._settings.audio_wait_ms / 1000,
            )
        assembler = self._assembler
        holes = assembler.holes
        frames = assembler.push(seq, ts, marker, payload, arrival)
        if assembler.keyframe_wanted():
            self.sink.keyframe_wanted = True
        if assembler.holes != holes:
            self.holes += 1
        self._frames(rid, frames)

    # ------------------------------------------------------------------------------ timing and muxing
    def _frames(self, rid: str, frames: list[Frame]) -> None:
        if not frames:
            return
        if any(entry[0] != rid for entry in self._held):
            # A layer switch: the new layer starts at a keyframe of an instant the old layer may already
            # have sent (a publisher sends its layers one after the other); the old layer's frames of that
            # instant and later go, or two frames would share one time.
            start = frames[0]
            self._held = [
                entry
                for entry in self._held
                if entry[0] == rid or self._before(entry[0], entry[1], rid, start)
            ]
        self._held.extend([rid, f, False] for f in frames)
        self._release(frames[-1].arrival)

    def _before(self, rid: str, frame: Frame, other_rid: str, other: Frame) -> bool:
        """Whether `frame` was taken before `other`: by the sender's clock when both layers map to it, else by
        arrival (a publisher sends its layers' frames of one instant within milliseconds of each other)."""
        a, b = self._clocks.get(rid), self._clocks.get(other_rid)
        if a is not None and b is not None and a.mapped and b.mapped:
            if a.sender_time(frame.ts) < b.sender_time(other.ts) - 0.001:
                return True
        elif frame.arrival < other.arrival - 0.010:
            return True
        self.superseded += 1
        return False

    def _release(self, now: float) -> None:
        """Write the held frames that are old enough: `settle_ms` once their stream has a sender report (the
        participant's offset is the least over everything that arrived by then), or by arrival past the
        sender report wait."""
        held = self._held
        if not held:
            return
        for entry in held:
            if not entry[2]:
                clock = self._clocks.get(entry[0])
                if clock is not None and clock.mapped:
                    entry[2] = True
                    self._participant.observe(clock.sender_time(entry[1].ts), entry[1].arrival)
        settle = self._settings.settle_ms / 1000
        wait = self._settings.sender_report_wait_ms / 1000
        ready = 0
        for _, frame, mapped in held:
            if now - frame.arrival < (settle if mapped else wait):
                break
            ready += 1
        if not ready:
            return
        batch, self._held = held[:ready], held[ready:]
        for rid, frame, mapped in batch:
            clock = self._clocks.get(rid)
            if mapped and clock is not None and self._participant.offset is not None:
                local = self._participant.local(clock.sender_time(frame.ts))
            else:
                local = frame.arrival
                self.arrival_timed += 1
            self._write(frame, round((local - self._t0) * 1000))

    def _write(self, frame: Frame, pts_ms: int) -> None:
        if self.file is None:
            if self.rules.video and (not frame.keyframe or self.rules.size(frame.data) is None):
                self.frames_before_file += 1
                return
            size = self.rules.size(frame.data) or (0, 0)
            try:
                self.file = TrackFile(
                    self.part,
                    self.info.codec,
                    width=size[0],
                    height=size[1],
                    sample_rate=self.info.clock_rate,
                    channels=self.info.channels or 2,
                    cluster_ms=self._settings.cluster_ms,
                )
            except RecordingError:
                log.exception("track %s: not recorded", self.info.track_id)
                self.ended = True
                return
            info = self.info
            self._emit(
                TimelineEvent(
                    max(pts_ms, 0),
                    "track_started",
                    {
                        "track": info.track_id,
                        "participant": info.participant_id,
                        "name": info.display_name,
                        "source": info.source,
                        "kind": info.kind,
                        "codec": info.codec,
                        "file": self.name,
                        "width": size[0],
                        "height": size[1],
                    },
                )
            )
        self.file.write(frame.data, max(pts_ms, 0), frame.keyframe)

    def finish(self, at: float) -> None:
        """Write what is complete, close the file and note the end in the timeline (idempotent)."""
        if self.ended:
            return
        self._release(float("inf"))
        self.ended = True
        if self.file is not None:
            self.file.close()
            end = max(round((at - self._t0) * 1000), (self.file.last_pts or 0))
            self._emit(
                TimelineEvent(
                    end,
                    "track_ended",
                    {"track": self.info.track_id, "file": self.name, "frames": self.file.frames},
                )
            )
