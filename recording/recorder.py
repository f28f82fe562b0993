"""Recorder: one recorded meeting — a file per Track, the timeline, one writer thread.

Wiring (yunhui/): for each Track to record, ``router.tap(track_id, sink_for)`` where ``sink_for`` turns the
sfu.tap.TappedTrack it is given into ``recorder.attach(TrackInfo(...))``; the tap ends the track's file by
itself when the Track is unpublished. Meeting events go to ``recorder.event(...)``. On stop: close the taps,
then ``await recorder.close()`` (the files are finalised: duration, Cues, checksums). At start-up, call
``recording.finalize.recover(directory)`` for each unfinished recording directory.

Nothing here touches a file on the event loop: sinks append to deques, the writer thread (woken every
``tick_ms``) drains them, reassembles frames, times them from sender reports and muxes them; it also
writes the timeline with an fsync per event.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recording.clock import ParticipantClock
from recording.codecs import rules_for
from recording.errors import RecordingError
from recording.finalize import RecordingResult, finalise, needs_recovery
from recording.settings import RecordingSettings
from recording.timeline import EVENTS, TIMELINE, TimelineEvent, TimelineWriter
from recording.track import TrackInfo, TrackRecording, TrackSink

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class Recorder:
    """Records one meeting into `directory` (made if missing; it must not hold another recording).

    `clock` is the SFU's packet arrival clock (time.monotonic); `wall` gives recording_started its date.
    """

    def __init__(
        self,
        directory: Path,
        settings: RecordingSettings | None = None,
        *,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
        meeting_id: str = "",
    ) -> None:
        self.directory = directory
        self.settings = settings = settings or RecordingSettings()
        self._clock = clock
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordingError(f"{directory}: cannot be created: {exc}") from exc
        if (directory / TIMELINE).exists() or needs_recovery(directory):
            raise RecordingError(f"{directory}: already holds a recording")
        self.t0 = clock()
        self._sinks: dict[str, TrackSink] = {}
        self._tracks: list[TrackRecording] = []
        self._participants: dict[str, ParticipantClock] = {}
        self._events: deque[TimelineEvent] = deque()
        self._barriers: deque[concurrent.futures.Future[None]] = deque()
        self._wake = threading.Event()
        self._stop = False
        self._closed = False
        self._result: RecordingResult | None = None
        self.errors = 0
        try:  # opened here, once, so that an unwritable directory is the caller's clear error
            self._timeline = TimelineWriter(directory)
        except OSError as exc:
            raise RecordingError(f"{directory}: the timeline cannot be written: {exc}") from exc
        self._thread = threading.Thread(target=self._run, name=f"recorder:{directory.name}", daemon=True)
        self.event("recording_started", meeting=meeting_id, wall=wall())
        self._thread.start()

    # ------------------------------------------------------------------------------ event loop side
    def attach(self, info: TrackInfo) -> TrackSink:
        """Start recording a Track; the returned sink is what ``Router.tap`` feeds (sfu.tap.TapSink).

        RecordingError for a codec that cannot be recorded or a Track attached twice.
        """
        if self._closed:
            raise RecordingError("the recorder is closed")
        previous = self._sinks.get(info.track_id)
        if previous is not None and not previous.closed:
            raise RecordingError(f"track {info.track_id!r} is already recorded")
        try:
            rules_for(info.codec)
        except ValueError as exc:
            raise RecordingError(str(exc)) from exc
        sink = TrackSink(info, self.settings.queue_packets, self._wake.set)
        self._sinks[info.track_id] = sink
        participant = self._participants.setdefault(info.participant_id, ParticipantClock())
        emit = self._events.append
        index = len(self._tracks) + 1
        # Made here (cheap, no I/O) so the thread finds it with its queue; its file opens at the first frame.
        self._tracks.append(
            TrackRecording(
                sink,
                directory=self.directory,
                index=index,
                participant=participant,
                settings=self.settings,
                t0=self.t0,
                emit=emit,
            )
        )
        return sink

    def detach(self, track_id: str) -> None:
        """Stop recording a Track now (its file is closed by the writer thread). Unknown or ended: no-op."""
        sink = self._sinks.get(track_id)
        if sink is not None:
            sink.end(self._clock())

    def event(self, event: str, **fields: Any) -> None:
        """Note a meeting event in the timeline at this instant: joined, left, muted, unmuted, speaker,
        screen_share, layout (participant=..., name=..., and what else the event says; JSON values)."""
        if event not in EVENTS:
            raise RecordingError(f"event: {event!r} is not one of {sorted(EVENTS)}")
        if self._closed:
            return
        self._events.append(TimelineEvent(self.elapsed_ms(), event, fields))
        self._wake.set()

    def elapsed_ms(self) -> int:
        return round((self._clock() - self.t0) * 1000)

    @property
    def stats(self) -> dict[str, int]:
        """Counters over all tracks (packets, dropped packets, holes, keyframe requests, writer errors)."""
        return {
            "tracks": len(self._tracks),
            "packets": sum(t.sink.packets for t in self._tracks),
            "dropped_packets": sum(t.sink.dropped for t in self._tracks),
            "keyframe_requests": sum(t.sink.keyframe_requests for t in self._tracks),
            "holes": sum(t.holes for t in self._tracks),
            "errors": self.errors,
        }

    async def drain(self) -> None:
        """Wait until the writer thread has handled everything queued before this call."""
        if not self._thread.is_alive():
            return
        barrier: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._barriers.append(barrier)
        self._wake.set()
        await asyncio.wrap_future(barrier)

    async def close(self) -> RecordingResult:
        """Stop: end every track, stop the writer thread, finalise the files (idempotent: the same result)."""
        if self._result is not None:
            return self._result
        if not self._closed:
            self._closed = True
            now = self._clock()
            for sink in self._sinks.values():
                sink.end(now)
            self._events.append(TimelineEvent(self.elapsed_ms(), "recording_stopped", {"reason": "stopped"}))
            self._stop = True
            self._wake.set()
            await asyncio.to_thread(self._thread.join)
        result = await finalise(self.directory, self.settings)
        stats = self.stats
        self._result = RecordingResult(
            result.directory,
            result.files,
            result.timeline,
            result.duration_s,
            False,
            dropped_packets=stats["dropped_packets"],
            holes=stats["holes"],
            keyframe_requests=stats["keyframe_requests"],
        )
        return self._result

    # ------------------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        tick = self.settings.tick_ms / 1000
        try:
            while True:
                self._wake.wait(tick)
                self._wake.clear()
                barriers = len(self._barriers)
                stop = self._stop
                self._pass()
                for _ in range(barriers):
                    self._barriers.popleft().set_result(None)
                if stop:
                    break
        finally:
            self._pass()
            for track in list(self._tracks):
                self._guard(track.finish, self._clock())
            self._write_events()
            self._timeline.close()
            while self._barriers:
                self._barriers.popleft().set_result(None)

    def _pass(self) -> None:
        now = self._clock()
        for track in list(self._tracks):
            if not track.ended or track.sink.queue:
                self._guard(track.step, now)
        self._write_events()

    def _guard(self, step: Callable[[float], None], now: float) -> None:
        try:
            step(now)
        except Exception:
            self.errors += 1
            if self.errors <= 10:  # a bug must not end the recording of every other track
                log.exception("recording %s: the writer failed", self.directory)

    def _write_events(self) -> None:
        events = self._events
        while events:
            event = events.popleft()
            try:
                self._timeline.write(event)
            except OSError:
                self.errors += 1
                log.exception("recording %s: timeline event %s lost", self.directory, event.event)
