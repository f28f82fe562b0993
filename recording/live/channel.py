"""LiveChannel: the engine of one live channel — sources in, HLS segments and playlists (and RTMP) out.

Output layout in the channel's directory (the web side serves these files as they are; docs/live.md):

* ``seg-000001.ts`` … — MPEG-TS segments (H.264 + AAC), each starting with a keyframe, written atomically
  (a temporary name, then a rename) before any playlist lists them; never rewritten.
* ``index.m3u8`` — the live window (the last ``window_segments``). During rehearsal it holds the rehearsal's
  segments, for staff only; from go-live on its window starts at the first public segment (its media
  sequence continues), so it is the public live playlist. At the end it gets ENDLIST.
* ``event.m3u8`` — the EVENT playlist from go-live on (absent before): every public segment; ENDLIST at the
  end, and then it is the replay (VOD).

Both playlists are replaced atomically (``os.replace``) whenever a segment is cut; a reader never sees half a
file. Segment URIs are relative file names (the web side adds its viewer token to them when it serves).

Wiring (yunhui/live.py): ``channel = LiveChannel(dir, settings.live, clock=..., channel_id=...)``;
``channel.set_source(MeetingSource(router.tap, video_track, audio_tracks))`` (or an EncoderSource or a
PlaylistSource), optionally ``channel.set_standby(PlaylistSource((backup,), loop=True))``; the pipeline runs
at once (rehearsal). ``channel.go_live()`` makes it public without a restart; ``await channel.end()`` writes
ENDLIST (the replay is complete when it returns); ``await channel.close()`` releases everything (idempotent;
close without end leaves the playlists without ENDLIST, as after a crash, and the product side ends them).

Threads: the event loop only opens taps and appends packets to a deque; one worker thread per channel
reassembles frames, times them, decodes Opus, encodes AAC, transcodes VP8, muxes segments and writes the
playlists (recording/live/pipeline.py). RTMP push is an ffmpeg subprocess reading the segments
(recording/live/rtmp.py), owned here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from recording.errors import RecordingError
from recording.live.inputs import TapInputSink
from recording.live.pipeline import Pipeline
from recording.live.playlist import Previous, Segment, parse
from recording.live.rtmp import RtmpPush
from recording.live.settings import LiveProfile, LiveSettings
from recording.live.sources import (
    Closable,
    EncoderSource,
    MeetingSource,
    PlaylistEvent,
    PlaylistSource,
    Source,
    TrackDescription,
)

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Override = Literal["on", "off", "auto"]
SourceRole = Literal["primary", "standby"]
INDEX = "index.m3u8"
EVENT = "event.m3u8"


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """A channel's engine as it is now (the console shows it; the web side decides what is public by it)."""

    state: Literal["rehearsal", "live", "ended"]
    on_air: Literal["primary", "standby", "none"]
    source: str  # the label of the source on air ("" when none)
    on_standby: bool
    override: Override
    segments: int  # segments written since the start (rehearsal included)
    public_segments: int  # segments since go-live (the replay's)
    media_sequence: int  # of index.m3u8
    last_segment_at: float | None  # wall time (time.time()) the last segment was listed
    duration_s: float  # media written, rehearsal included
    public_duration_s: float
    playlist_item: int | None  # the index of the playlist item on air
    transcoding: bool  # the video on air is transcoded (a VP8 publisher)
    dropped_packets: int
    rtmp: str | None  # "connecting", "pushing", "waiting" (back-off) or None without RTMP


class LiveChannel:
    """One live channel's engine writing into `directory` (made if missing; it must not hold another channel).

    `clock` is the SFU's packet arrival clock (time.monotonic), which also paces playout; `wall` dates the
    segments (PROGRAM-DATE-TIME). `rtmp_url`: push the channel there too (ffmpeg, restarted with back-off).
    """

    def __init__(
        self,
        directory: Path,
        settings: LiveSettings | None = None,
        *,
        profile: LiveProfile | None = None,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
        channel_id: str = "",
        rtmp_url: str | None = None,
        resume: bool = False,
    ) -> None:
        self.directory = directory
        self.settings = settings = settings or LiveSettings()
        self.profile = profile or settings.profile
        self.channel_id = channel_id
        self._clock = clock
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordingError(f"{directory}: cannot be created: {exc}") from exc
        previous = self._previous(directory) if resume else None
        if previous is None and (directory / INDEX).exists():
            raise RecordingError(f"{directory}: already holds a live channel")
        self._commands: deque[Callable[[Pipeline], None]] = deque()
        self._wake = threading.Event()
        self._pipeline = Pipeline(
            directory, settings, self.profile, clock=clock, wall=wall, notify=self._notify
        )
        if previous is not None:
            self._pipeline.resume(previous)
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._taps: dict[SourceRole, list[Closable]] = {"primary": [], "standby": []}
        self._sources: dict[SourceRole, Source | None] = {"primary": None, "standby": None}
        self._barriers: deque[concurrent.futures.Future[None]] = deque()
        self._stop = False
        self._closed = False
        self._ended = False
        self._rtmp = RtmpPush(rtmp_url, directory, settings, clock=clock) if rtmp_url else None
        if self._rtmp is not None:
            self._pipeline.segment_listeners.append(self._segment_for_rtmp)
        self._thread = threading.Thread(
            target=self._run, name=f"live:{channel_id or directory.name}", daemon=True
        )
        self._thread.start()

    @staticmethod
    def _previous(directory: Path) -> Previous | None:
        """What a crashed run of this directory left: the EVENT playlist when it was live, else the live
        window (a rehearsal); None when there is nothing to continue. A playlist that ended is no run to
        resume (RecordingError), nor is one that cannot be read."""
        for name, public in ((EVENT, True), (INDEX, False)):
            try:
                text = (directory / name).read_text(encoding="utf-8")
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise RecordingError(f"{directory / name}: cannot be read: {exc}") from exc
            try:
                previous = parse(text, public=public)
            except ValueError as exc:
                raise RecordingError(f"{directory / name}: {exc}") from exc
            if previous.ended:
                raise RecordingError(f"{directory}: the run has ended (ENDLIST)")
            return previous
        return None

    # ------------------------------------------------------------------------------ sources
    def set_source(self, source: Source | None) -> None:
        """Put `source` on air as the primary (replacing the previous one at its next keyframe, with a
        DISCONTINUITY); None: no primary (the standby, if any, takes over after standby_after_s)."""
        self._set("primary", source)

    def set_standby(self, source: Source | None) -> None:
        """The hot standby: on air when the primary sent no video for standby_after_s, until the primary has
        been healthy for standby_hold_s again (or as the manual override says)."""
        self._set("standby", source)

    def select_video(self, track_id: str) -> None:
        """Speaker follow: the primary meeting source's video becomes this Track (at its next keyframe)."""
        source = self._sources["primary"]
        if not isinstance(source, MeetingSource | EncoderSource):
            raise RecordingError("select_video: the primary source is not a meeting")
        if source.video_track == track_id:
            return
        replaced = MeetingSource(source.tap, track_id, source.audio_tracks, source.label)
        self._set("primary", replaced, keep_audio=True)

    def standby_override(self, mode: Override) -> None:
        """Manual override from the console: "on" keeps the standby on air, "off" keeps the primary on air
        (even when it is silent), "auto" lets the health rule decide."""
        if mode not in ("on", "off", "auto"):
            raise RecordingError(f"standby_override: {mode!r} is not on, off or auto")
        self._command(lambda p: p.set_override(mode))

    def playlist_skip(self, role: SourceRole = "primary") -> None:
        """End the playlist item on air now and go on with the next one."""
        self._command(lambda p: p.playlist_edit(role, "skip", None))

    def playlist_set(self, items: list[Path], role: SourceRole = "primary") -> None:
        """Replace the items after the one on air (insert, remove, reorder); the item on air plays on."""
        frozen = tuple(items)
        self._command(lambda p: p.playlist_edit(role, "set", frozen))

    def _set(self, role: SourceRole, source: Source | None, *, keep_audio: bool = False) -> None:
        if self._closed or self._ended:
            raise RecordingError("the live channel has ended")
        old_taps = self._taps[role]
        self._sources[role] = source
        input_id = self._pipeline.new_input_id(role)
        self._taps[role] = []
        if isinstance(source, MeetingSource | EncoderSource):
            tracks = [t for t in (source.video_track, *source.audio_tracks) if t]
            for track_id in tracks:
                try:
                    self._taps[role].append(source.tap(track_id, self._sink_for(input_id)))
                except Exception as exc:  # a Track that is gone, a router closed: the caller's clear error
                    for tap in self._taps[role]:
                        tap.close()
                    self._taps[role] = old_taps
                    raise RecordingError(
                        f"{source.label}: track {track_id!r} cannot be tapped: {exc}"
                    ) from exc
        for tap in old_taps:
            tap.close()
        self._command(lambda p: p.set_input(role, input_id, source))

    def _sink_for(self, input_id: int) -> Callable[[TrackDescription], TapInputSink]:
        def make(track: TrackDescription) -> TapInputSink:
            return self._pipeline.tap_sink(input_id, track, self._wake.set)

        return make

    # ------------------------------------------------------------------------------ going live and ending
    def go_live(self) -> None:
        """Rehearsal → live: the next segment (cut at once, at the next keyframe) is the first public one."""
        if self._ended:
            raise RecordingError("the live channel has ended")
        self._command(lambda p: p.go_live())

    async def end(self) -> LiveStatus:
        """Stop the sources, close the last segment, write ENDLIST (event.m3u8 is then the replay)."""
        if not self._ended and not self._closed:
            self._ended = True
            self._close_taps()
            self._command(lambda p: p.end())
            await self.drain()
            if self._rtmp is not None:
                await self._rtmp.finish()
        return self.status()

    def status(self) -> LiveStatus:
        status = self._pipeline.status()
        rtmp = self._rtmp.state if self._rtmp is not None else None
        return LiveStatus(**{**status, "rtmp": rtmp})

    @property
    def t0(self) -> float:
        """The clock's time of output time 0 (a segment's ``start`` is counted from it)."""
        return self._pipeline.t0

    def on_segment(self, listener: Callable[[Segment, Path], None]) -> None:
        """Call `listener(segment, path)` for each segment as it is listed (in the worker thread: it must
        only note or enqueue)."""
        self._pipeline.segment_listeners.append(listener)

    async def drain(self) -> None:
        """Wait until the worker thread has handled everything queued before this call."""
        if not self._thread.is_alive():
            return
        barrier: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._barriers.append(barrier)
        self._wake.set()
        await asyncio.wrap_future(barrier)

    async def start_rtmp(self) -> None:
        """Start the RTMP push (when an rtmp_url was given); it follows the segments as they are cut."""
        if self._rtmp is not None:
            await self._rtmp.start()

    async def close(self) -> None:
        """Release the taps, the worker thread and the RTMP push (idempotent). ENDLIST only after end()."""
        if self._closed:
            return
        self._closed = True
        self._close_taps()
        self._stop = True
        self._wake.set()
        await asyncio.to_thread(self._thread.join)
        if self._rtmp is not None:
            await self._rtmp.close()

    def _close_taps(self) -> None:
        for role in self._taps:
            taps, self._taps[role] = self._taps[role], []
            for tap in taps:
                try:
                    tap.close()
                except Exception:
                    log.exception("live %s: a tap failed to close", self.channel_id)

    # ------------------------------------------------------------------------------ worker thread
    def _command(self, command: Callable[[Pipeline], None]) -> None:
        if self._closed:
            raise RecordingError("the live channel is closed")
        self._commands.append(command)
        self._wake.set()

    def _notify(self, callback: Callable[[PlaylistEvent], None], event: PlaylistEvent) -> None:
        """Run a playlist callback on the event loop (called in the worker thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(callback, event)

    def _run(self) -> None:
        tick = self.settings.tick_ms / 1000
        pipeline = self._pipeline
        try:
            while True:
                self._wake.wait(tick)
                self._wake.clear()
                barriers = len(self._barriers)
                stop = self._stop
                while self._commands:
                    self._guard(self._commands.popleft(), pipeline)
                self._guard(lambda p: p.step(self._clock()), pipeline)
                for _ in range(barriers):
                    self._barriers.popleft().set_result(None)
                if stop:
                    break
        finally:
            self._guard(lambda p: p.close(), pipeline)
            while self._barriers:
                self._barriers.popleft().set_result(None)

    def _guard(self, command: Callable[[Pipeline], Any], pipeline: Pipeline) -> None:
        try:
            command(pipeline)
        except Exception:
            pipeline.errors += 1
            if pipeline.errors <= 10:  # a bug must not end the channel
                log.exception("live %s: the worker failed", self.channel_id)

    def _segment_for_rtmp(self, segment: Segment, path: Path) -> None:
        loop, rtmp = self._loop, self._rtmp
        if loop is not None and rtmp is not None and not loop.is_closed():
            loop.call_soon_threadsafe(rtmp.feed, path)


__all__ = [
    "EVENT",
    "INDEX",
    "EncoderSource",
    "LiveChannel",
    "LiveStatus",
    "MeetingSource",
    "PlaylistEvent",
    "PlaylistSource",
]
