"""Pipeline: the worker-thread half of a LiveChannel — inputs, the switcher, the audio mix, the segmenter.

Everything here runs in the channel's worker thread (LiveChannel calls ``step(now)`` every tick and runs
the commands it queues), except ``tap_sink`` and ``status``, which only make or read plain objects.

Output time is the channel's clock minus its start plus ``shift``: sources are all timed on the channel's
clock (tapped Tracks by their sender reports, playlist items from when they started), so the output follows
real time; a switch to a source whose first frame would land before the last frame written moves
``shift`` forward, so timestamps never go back. Each switch cuts a segment at the new source's first
keyframe and marks a DISCONTINUITY.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recording.live.ingest import RtmpIngestInput
from recording.live.inputs import TapInput, TapInputSink
from recording.live.mix import AudioMix
from recording.live.playlist import PlaylistWriter, Previous, Segment
from recording.live.playout import PlayoutInput
from recording.live.segmenter import Segmenter
from recording.live.settings import LiveProfile, LiveSettings
from recording.live.sources import (
    PlaylistEvent,
    PlaylistSource,
    RtmpIngestSource,
    Source,
    TrackDescription,
)
from recording.live.switcher import Override, Role, Switcher
from recording.live.units import AudioUnit, VideoUnit

log = logging.getLogger(__name__)

Input = TapInput | PlayoutInput | RtmpIngestInput
ROLES: tuple[Role, ...] = ("primary", "standby")
Notify = Callable[[Callable[[PlaylistEvent], None], PlaylistEvent], None]


class Pipeline:
    def __init__(
        self,
        directory: Path,
        settings: LiveSettings,
        profile: LiveProfile,
        *,
        clock: Callable[[], float],
        wall: Callable[[], float],
        notify: Notify,
    ) -> None:
        self.directory = directory
        self.settings = settings
        self.profile = profile
        self._clock = clock
        self.t0 = clock()
        self.wall0 = wall()
        self._notify = notify
        self.queue: deque[Any] = deque()
        self._next_id = 0
        self.inputs: dict[Role, Input | None] = {"primary": None, "standby": None}
        self._input_ids: dict[Role, int] = {"primary": -1, "standby": -1}
        self.switcher = Switcher(settings.standby_after_s, settings.standby_hold_s, self.t0)
        self.playlists = PlaylistWriter(
            directory, segment_seconds=settings.segment_seconds, window=settings.window_segments
        )
        self.segmenter = Segmenter(
            directory, settings, profile, wall0=self.wall0, on_segment=self._on_segment
        )
        self.mix = AudioMix(profile.audio_rate, profile.audio_channels)
        self.state = "rehearsal"
        self.on_air: Role = "none"
        self._air: Input | None = None  # the input whose units are written
        self._pending: Input | None = None  # switching to it at its first keyframe
        self.shift = 0.0
        self._last_out: float | None = None  # output time of the last video frame written
        self._last_request = -1e9
        self.segment_listeners: list[Callable[[Segment, Path], None]] = []
        self.last_segment_at: float | None = None
        self._wall = wall
        self.errors = 0
        self.dropped_stale = 0
        self.closed = False

    # ------------------------------------------------------------------------------ event-loop side
    def new_input_id(self, role: str) -> int:
        self._next_id += 1
        return self._next_id

    def tap_sink(self, input_id: int, track: TrackDescription, wake: Callable[[], None]) -> TapInputSink:
        return TapInputSink(input_id, track, self.queue, self.settings.queue_packets, wake)

    def status(self) -> dict[str, Any]:
        segments = self.playlists.segments
        public = self.playlists.public
        _, sequence, _ = self.playlists.live_window()
        air = self._air
        item = air.index if isinstance(air, PlayoutInput) else None
        return {
            "state": self.state,
            "on_air": self.on_air,
            "source": air.label if air is not None else "",
            "on_standby": self.on_air == "standby",
            "override": self.switcher.override,
            "segments": len(segments),
            "public_segments": len(public),
            "media_sequence": sequence,
            "last_segment_at": self.last_segment_at,
            "duration_s": round(sum(s.duration for s in segments), 3),
            "public_duration_s": round(sum(s.duration for s in public), 3),
            "playlist_item": item,
            "transcoding": isinstance(air, TapInput) and air.transcoding,
            "dropped_packets": self.dropped_stale,
        }

    # ------------------------------------------------------------------------------ commands (worker thread)
    def set_input(self, role: Role, input_id: int, source: Source | None) -> None:
        old = self.inputs[role]
        new: Input | None = None
        if isinstance(source, PlaylistSource):
            new = PlayoutInput(input_id, source, self.settings, self.profile, notify=self._notify)
        elif isinstance(source, RtmpIngestSource):
            new = RtmpIngestInput(input_id, source, self.settings, self.profile, clock=self._clock)
        elif source is not None:
            new = TapInput(input_id, self.settings, self.profile, source.label)
        self.inputs[role] = new
        self._input_ids[role] = input_id
        now = self._clock_now()
        if role == "primary":
            self.switcher.primary_changed(new is not None, now)
        else:
            self.switcher.standby_changed(new is not None)
        if old is not None:
            if old is self._air:
                self._air = None
                self.on_air = "none"
            if old is self._pending:
                self._pending = None
            old.close()

    def set_override(self, mode: Override) -> None:
        self.switcher.override = mode

    def playlist_edit(self, role: Role, action: str, items: tuple[Path, ...] | None) -> None:
        target = self.inputs.get(role)
        if isinstance(target, PlayoutInput):
            now = self._clock_now()
            if action == "skip":
                target.skip(now)
            elif items is not None:
                target.set_upcoming(items)

    def resume(self, previous: Previous) -> None:
        """Continue a crashed run's playlists (before the first step): the same EVENT playlist, the same
        sequence numbers, a DISCONTINUITY before the first new segment; a live run stays public."""
        self.playlists.resume(previous)
        if previous.segments:
            self.segmenter.sequence = previous.segments[-1].sequence
            self.segmenter.discontinuity()
        if previous.public:
            self.state = "live"
            self.segmenter.public = True

    def go_live(self) -> None:
        if self.state == "rehearsal":
            self.state = "live"
            self.segmenter.public = True
            self.segmenter.cut_next()
            self._request_keyframe(self._clock_now(), force=True)

    def end(self) -> None:
        if self.state == "ended":
            return
        self._drain_queue()
        air = self._air
        if isinstance(air, TapInput | RtmpIngestInput):  # what arrived is written: settling frames go out now
            role: Role = "primary" if air is self.inputs["primary"] else "standby"
            self._units(role, air, air.pull(float("inf")))
        for role in ROLES:
            current = self.inputs[role]
            if current is not None:
                current.close()
                self.inputs[role] = None
        self.segmenter.close()
        self.state = "ended"
        self.playlists.end()
        self.last_segment_at = self._wall()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for role in ROLES:
            current = self.inputs[role]
            if current is not None:
                current.close()
        if self.state != "ended":
            self.segmenter.close()

    # ------------------------------------------------------------------------------ the tick
    def _clock_now(self) -> float:
        return self._clock()

    def step(self, now: float) -> None:
        """Handle what was queued, decide what is on air, write the units that are due at `now`."""
        if self.state == "ended" or self.closed:
            self.queue.clear()
            return
        self._drain_queue()
        self._switch(now)
        for role in ROLES:
            current = self.inputs[role]
            if current is None:
                continue
            live = isinstance(current, TapInput | RtmpIngestInput)  # pulled off air too: its health
            if current is self._air or current is self._pending or live:
                self._units(role, current, current.pull(now))
        self._flush_if_silent(now)

    def _drain_queue(self) -> None:
        queue = self.queue
        ids = {i.input_id: i for i in self.inputs.values() if isinstance(i, TapInput)}
        while queue:
            entry = queue.popleft()
            sink: TapInputSink = entry[0]
            target = ids.get(sink.input_id)
            if target is None:
                self.dropped_stale += 1  # a source replaced since
                continue
            target.item(sink, entry[1:])

    def _switch(self, now: float) -> None:
        role = self.switcher.decide(now)
        wanted = self.inputs.get(role) if role != "none" else None
        if wanted is self._air and self._pending is None:
            self.on_air = role
            return
        if wanted is None:
            self._air = self._pending = None
            self.on_air = "none"
            return
        if wanted is not self._pending and wanted is not self._air:
            self._pending = wanted
            wanted.start(now)
            self._switch_role = role
        elif wanted is self._air:
            self._pending = None

    def _units(self, role: Role, source: Input, units: list[VideoUnit | AudioUnit]) -> None:
        for unit in units:
            if isinstance(unit, VideoUnit):
                self.switcher.video(role, unit.t)
                if source is self._pending and unit.keyframe:
                    self._take_air(role, source, unit.t)
            if source is not self._air:
                continue
            out = unit.t - self.t0 + self.shift
            if isinstance(unit, VideoUnit):
                if unit.discontinuity and self.playlists.segments:
                    self.segmenter.discontinuity()
                self.segmenter.video(
                    out,
                    unit.data,
                    unit.keyframe,
                    dts=None if unit.dts is None else unit.dts - self.t0 + self.shift,
                )
                self._last_out = max(out, self._last_out or out)
                self._audio(self.mix.advance(out - 0.1))
                if self.segmenter.keyframe_due(out):
                    self._request_keyframe(unit.t)
            else:
                self._audio(self.mix.add(unit.track, out, unit.pcm))

    def _audio(self, blocks: list[tuple[float, Any]]) -> None:
        for t, pcm in blocks:
            self.segmenter.audio_pcm(t, pcm)

    def _take_air(self, role: Role, source: Input, t: float) -> None:
        """The pending source's first keyframe: it goes on air from this frame on."""
        self._pending = None
        was = self._air
        self._air = source
        self.on_air = role
        if self._last_out is not None:
            candidate = t - self.t0 + self.shift
            floor = self._last_out + 1 / self.profile.fps
            if candidate < floor:
                self.shift += floor - candidate
        if was is not None or self.segmenter.is_open or self.playlists.segments:
            self.segmenter.discontinuity()
        self.mix.reset()
        if isinstance(was, PlayoutInput):
            was.stop(t)

    def _request_keyframe(self, now: float, *, force: bool = False) -> None:
        if not force and now - self._last_request < 0.5:
            return
        self._last_request = now
        air = self._pending or self._air
        if air is not None:
            air.request_keyframe()

    def _flush_if_silent(self, now: float) -> None:
        """Close the open segment when no video came for 3/4 of a segment (the source stopped), so that the
        playlist does not wait for the next source's keyframe (research/recording.md §5 item 13)."""
        if not self.segmenter.is_open or self._last_out is None:
            return
        if now - self.t0 + self.shift - self._last_out >= 0.75 * self.settings.segment_seconds:
            self._audio(self.mix.advance(self._last_out))
            self.segmenter.flush()

    def _on_segment(self, segment: Segment) -> None:
        self.playlists.add(segment)
        self.last_segment_at = self._wall()
        path = self.directory / segment.name
        for listener in self.segment_listeners:
            try:
                listener(segment, path)
            except Exception:
                log.exception("live %s: a segment listener failed", self.directory.name)
