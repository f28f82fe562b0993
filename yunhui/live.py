"""Live channels wired into the process: one engine per running channel, the sampler job, the viewer page.

LiveEngines owns one recording.live.LiveChannel per channel in rehearsal or live (the REST API drives it
through web.api.live.LiveService). A meeting source taps the room's meeting's Router in process: the
speaker's camera (followed with a hold, switched at its keyframe) and the audio of everyone — or, for a
channel with an audio participant (an interpreter), that participant's microphone alone, so that two
channels share one meeting's video with different audio. Encoder and playlist channels start without a
primary; the playlist component (#18 uploads) puts its PlaylistSource on air through ``engine()``.

A meeting or encoder source follows its room: a channel started before the room's meeting waits (the
standby on air) and attaches the meeting when its Router opens (Sfu.router_opened); when that Router closes
the channel lets go and attaches the room's next meeting. A "encoder" standby is the room's backup encoder
(the WHIP publisher named ``live.backup_encoder_name``), tapped as the engine's standby.

Each run writes into its own directory (the row's ``directory``); a stopped rehearsal's directory is removed.
A crash leaves channels in rehearsal or live without an engine: at the next start each is resumed in its
directory (the same playlists continued after a DISCONTINUITY); one that cannot be continued goes back to
draft (a rehearsal) or ends, its playlists closed with ENDLIST, so the replay is what was streamed. The
recovery runs once per process at start; a second run in the same process skips the channels it has
engines for. Two processes sharing one live root would each resume the same channels into the same
directory: that needs a cluster-wide lock (#20), not yet taken here.

Viewers' playlist and segment requests are gathered in memory and written once a second (ViewerActivity).
The sampler writes a concurrency sample every 10 s; it is idempotent (rooms/live/store.py: one sample per
channel, phase and 10 s instant), so two processes running it at once write each sample once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from aiohttp import web
from sqlalchemy import select

from recording.errors import RecordingError
from recording.live.channel import EVENT, INDEX, EncoderSource, LiveChannel, MeetingSource, PlaylistSource
from recording.live.settings import LiveSettings
from rooms.database import Database
from rooms.errors import Conflict, RoomsError
from rooms.live import store
from rooms.live.models import LiveChannel as ChannelRow
from rooms.live.videos import NORMAL_NAME, LiveVideo
from rooms.models import Room
from rooms.policy import Kind
from sfu.events import ActiveSpeakerChanged, RouterEvent, TrackPublished, TrackUnpublished
from sfu.router import Router
from sfu.sfu import Sfu
from signaling.server import MeetingServer
from web import ui
from web.api.live import LIVE_SERVICE, EngineStatus
from web.api.live_activity import ACTIVITY, ViewerActivity
from yunhui import live_ingest
from yunhui.jobs import PeriodicJob

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SAMPLE_INTERVAL_S = 10.0
# Viewers' requests are written this often (web/api/live_activity.py); a crash loses at most this much.
ACTIVITY_FLUSH_S = 1.0
# Speaker follow: a new speaker goes on air only after the previous switch is this old (research §3.1).
SPEAKER_HOLD_S = 3.0
OVERRIDES = {"auto": "auto", "primary": "off", "standby": "on"}

LIVE_ENGINES: web.AppKey[LiveEngines] = web.AppKey("live_engines")
LIVE_SAMPLER = web.AppKey("live_sampler_job", PeriodicJob)
LIVE_ACTIVITY_JOB = web.AppKey("live_activity_job", PeriodicJob)


@dataclass
class _Run:
    channel_id: int
    engine: LiveChannel
    directory: Path
    router: Router | None = None
    audio_participant: str = ""
    video_track: str | None = None
    switched_at: float = 0.0
    closed: bool = False
    audio: tuple[str, ...] = field(default_factory=tuple)
    standby: Path | None = None
    meeting_id: int | None = None
    encoder: bool = False  # an encoder source: the room's WHIP publishers only
    room_id: int | None = None  # a meeting or encoder source's room: its meetings are attached as they start
    backup_encoder: bool = False  # the standby is the room's backup encoder (settings.backup_encoder_name)
    backup: tuple[str | None, tuple[str, ...]] | None = None  # the backup encoder's tracks on the standby


class LiveEngines:
    """The engines of the live channels running in this process (web.api.live.LiveService)."""

    def __init__(
        self,
        settings: LiveSettings,
        *,
        database: Database,
        sfu: Sfu,
        meetings: MeetingServer,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        assert settings.root_dir is not None, "the composition root fills in live.root_dir"
        self.settings = settings
        self.root: Path = settings.root_dir
        self._db = database
        self._sfu = sfu
        self._meetings = meetings
        self._clock = clock
        self._monotonic = monotonic
        self._runs: dict[int, _Run] = {}
        self._closing = False
        self.activity = ViewerActivity()
        # Meetings that start or end while a channel runs: attach / let go (the standby plays meanwhile).
        sfu.router_opened.append(self._router_opened)
        sfu.router_closed.append(self._router_closed)
        self._tasks: set[asyncio.Task[None]] = set()
        # Pre-recorded videos (yunhui/live_videos.py): <live root>/videos unless set.
        self._videos_root: Path = settings.videos.root_dir or self.root / "videos"

    # --- web.api.live.LiveService -------------------------------------------------------------------------

    async def start(self, channel: ChannelRow, *, resume: bool = False) -> tuple[str, int | None]:
        """resume: continue the run in the channel's directory (after a crash), else a new run."""
        if self._closing:
            raise Conflict("the server is restarting; try again shortly", code="unavailable")
        if channel.id in self._runs:
            raise Conflict("the channel's engine is already running", code="bad_state")
        tapped = channel.source_kind in ("meeting", "encoder")
        # A room whose meeting has not started yet: the channel waits for it (standby on air meanwhile).
        router, meeting_id = self._live_meeting(channel.room_id) if tapped else (None, None)
        name = f"{channel.id}-{self._clock():%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        if resume and channel.directory:
            name = channel.directory
        try:
            engine = LiveChannel(
                self.root / name,
                self.settings,
                channel_id=str(channel.id),
                rtmp_url=channel.rtmp_url or None,
                resume=resume,
            )
        except RecordingError as exc:
            log.error("live channel %s: the engine did not start: %s", channel.id, exc)
            raise Conflict("the live storage is not available", code="unavailable") from None
        encoder = channel.source_kind == "encoder"
        run = _Run(channel.id, engine, self.root / name, router, channel.audio_participant,
                   meeting_id=meeting_id, encoder=encoder,
                   room_id=channel.room_id if tapped else None)  # fmt: skip
        run.backup_encoder = tapped and channel.standby_kind == "encoder"
        self._runs[channel.id] = run
        try:
            if router is not None:
                router.add_listener(functools.partial(self._on_router_event, run))
                self._put_meeting_on_air(run)
            if channel.source_kind == "rtmp":  # an encoder pushing RTMP to the channel's listener
                engine.set_source(live_ingest.source_of(channel, self.settings))
            engine.standby_override(OVERRIDES.get(channel.standby_override, "auto"))  # type: ignore[arg-type]
            await self._put_standby(run, channel)
            await engine.start_rtmp()
        except (RecordingError, OSError) as exc:
            await (self._let_go(run) if resume else self._discard(run))
            raise Conflict(f"the channel could not start: {exc}", code="unavailable") from None
        except Conflict:  # the RTMP port taken, no stream key
            await (self._let_go(run) if resume else self._discard(run))
            raise
        log.info("live channel %s: engine started in %s (meeting %s)", channel.id, name, meeting_id)
        return name, meeting_id

    async def go_live(self, channel: ChannelRow) -> None:
        run = self._run(channel.id)
        try:
            run.engine.go_live()
        except RecordingError as exc:
            raise Conflict(str(exc), code="bad_state") from None

    async def stop(self, channel: ChannelRow, *, end: bool) -> None:
        run = self._runs.get(channel.id)
        if run is None:
            if end and channel.directory:  # no engine here (a restart): close the files ourselves
                await asyncio.to_thread(end_playlists, self.root / channel.directory)
            return
        if end:
            await self._end(run)
        else:
            await self._discard(run)

    async def reconfigure(self, channel: ChannelRow) -> None:
        run = self._runs.get(channel.id)
        if run is None:
            return
        try:
            run.engine.standby_override(OVERRIDES.get(channel.standby_override, "auto"))  # type: ignore[arg-type]
            tapped = channel.source_kind in ("meeting", "encoder")
            run.backup_encoder = tapped and channel.standby_kind == "encoder"
            await self._put_standby(run, channel)
            if channel.source_kind in ("meeting", "encoder"):
                router, meeting_id = self._live_meeting(channel.room_id)
                run.room_id = channel.room_id
                run.audio_participant = channel.audio_participant
                run.encoder = channel.source_kind == "encoder"
                if router is not None and router is not run.router:
                    self._attach(run, router, meeting_id)
                elif router is None:
                    self._detach(run)
                else:
                    self._put_meeting_on_air(run, force=True)
            else:
                run.room_id = None
            if channel.source_kind == "rtmp":  # a rotated key: the listener restarts with it
                run.engine.set_source(live_ingest.source_of(channel, self.settings, check_port=False))
        except RecordingError as exc:
            raise Conflict(str(exc), code="bad_state") from None

    def status(self, channel_id: int) -> EngineStatus | None:
        run = self._runs.get(channel_id)
        if run is None:
            return None
        s = run.engine.status()
        return EngineStatus(
            on_air=s.on_air,
            source=s.source,
            segments=s.segments,
            public_segments=s.public_segments,
            duration_s=s.duration_s,
            public_duration_s=s.public_duration_s,
            transcoding=s.transcoding,
            rtmp=s.rtmp,
        )

    async def remove_files(self, directory: str) -> None:
        path = self.root / directory
        if path.parent == self.root and directory and not directory.startswith("."):
            await asyncio.to_thread(shutil.rmtree, path, True)

    # --- for the playlist component and the tests -----------------------------------------------------------

    def engine(self, channel_id: int) -> LiveChannel | None:
        """The running engine of a channel (to put a PlaylistSource or a standby on air), or None."""
        run = self._runs.get(channel_id)
        return run.engine if run is not None else None

    # --- the hot standby ------------------------------------------------------------------------------------

    async def _put_standby(self, run: _Run, channel: ChannelRow) -> None:
        """A "video" standby loops the channel's backup video (a ready, normalised upload); else none."""
        path = None
        if channel.standby_kind == "video" and channel.standby_video_id is not None:
            async with self._db.session() as session:
                video = await session.get(LiveVideo, channel.standby_video_id)
            if video is not None and video.state == "ready":
                path = self._videos_root / video.directory / NORMAL_NAME
        if path == run.standby:
            return
        if path is None and run.backup_encoder:
            run.standby = None
            return  # the backup encoder is put on the standby with the meeting's tracks
        run.standby = path
        run.backup = None
        run.engine.set_standby(PlaylistSource((path,), loop=True, label="standby") if path else None)

    # --- meeting sources ------------------------------------------------------------------------------------

    def _live_meeting(self, room_id: int | None) -> tuple[Router | None, int | None]:
        """The Router and meeting id of the room's meeting that is live here, or (None, None)."""
        for conference in self._meetings.conferences():
            if conference.room.room_id == room_id and conference.meeting_id is not None:
                router = self._sfu.routers.get(str(conference.meeting_id))
                if router is not None:
                    return router, conference.meeting_id
        return None, None

    def _attach(self, run: _Run, router: Router, meeting_id: int | None) -> None:
        """Put a meeting that started (or a new meeting of the room) on air as the channel's primary."""
        run.router, run.meeting_id = router, meeting_id
        run.video_track, run.audio = None, ()
        router.add_listener(functools.partial(self._on_router_event, run))
        self._put_meeting_on_air(run, force=True)
        log.info("live channel %s: meeting %s attached", run.channel_id, meeting_id)
        self._remember_meeting(run.channel_id, meeting_id)

    def _detach(self, run: _Run) -> None:
        """The meeting ended: no primary, so the standby (if any) takes over after standby_after_s."""
        if run.router is None:
            return
        run.router, run.meeting_id, run.video_track, run.audio = None, None, None, ()
        if not run.closed:
            run.engine.set_source(None)
            self._put_backup(run)
            log.info("live channel %s: its meeting ended; waiting for the room's next one", run.channel_id)

    def _router_opened(self, router: Router) -> None:
        # Called inside Sfu.router(): attach on the next loop turn, once the caller has the Router.
        asyncio.get_running_loop().call_soon(self._attach_waiting)

    def _router_closed(self, router: Router) -> None:
        for run in list(self._runs.values()):
            if run.router is router:
                try:
                    self._detach(run)
                except RecordingError as exc:
                    log.warning("live channel %s: detaching failed: %s", run.channel_id, exc)
        self._attach_waiting()

    def _attach_waiting(self) -> None:
        for run in list(self._runs.values()):
            if run.closed or run.room_id is None or run.router is not None:
                continue
            router, meeting_id = self._live_meeting(run.room_id)
            if router is not None:
                try:
                    self._attach(run, router, meeting_id)
                except RecordingError as exc:
                    log.warning("live channel %s: attaching failed: %s", run.channel_id, exc)

    def _remember_meeting(self, channel_id: int, meeting_id: int | None) -> None:
        """Write the meeting a running channel shows into its row (in the background; owned, awaited)."""

        async def write() -> None:
            try:
                async with self._db.writer() as session:  # SQLite: one writer, taken up front
                    row = await session.get(ChannelRow, channel_id)
                    if row is not None and row.state in ("rehearsal", "live"):
                        row.meeting_id = meeting_id
                        await session.commit()
            except Exception:
                log.exception("live channel %s: the meeting id was not written", channel_id)

        task = asyncio.get_running_loop().create_task(write(), name=f"live-meeting-{channel_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _choose(self, run: _Run) -> tuple[str | None, tuple[str, ...]]:
        """The video on air (the speaker's camera, else the first camera, else a screen) and the audio."""
        assert run.router is not None
        tracks = list(run.router.tracks.values())
        if run.encoder:
            # The room's WHIP publishers (OBS, a hardware encoder), not the people in the meeting.
            conference = self._meetings.conference_by_meeting(run.meeting_id) if run.meeting_id else None
            whip = {p.id for p in conference.participants() if p.kind == Kind.WHIP} if conference else set()
            tracks = [t for t in tracks if t.participant_id in whip]
        backup = self._backup_participants(run)
        tracks = [t for t in tracks if t.participant_id not in backup]
        cameras = [t for t in tracks if t.kind == "video" and t.source == "camera"]
        videos = cameras or [t for t in tracks if t.kind == "video"]
        video = run.video_track if any(t.id == run.video_track for t in videos) else None
        if video is None and videos:
            speaker = run.router.active_speaker
            video = next((t.id for t in videos if t.participant_id == speaker), videos[0].id)
        audio = [t for t in tracks if t.kind == "audio"]
        if run.audio_participant:
            audio = [t for t in audio if t.participant_id == run.audio_participant]
        return video, tuple(t.id for t in audio)

    def _backup_participants(self, run: _Run) -> set[str]:
        """The WHIP publishers of the run's meeting that are its backup encoder (by their token's name)."""
        if not run.backup_encoder or run.meeting_id is None:
            return set()
        conference = self._meetings.conference_by_meeting(run.meeting_id)
        name = self.settings.backup_encoder_name.casefold()
        return {
            p.id for p in (conference.participants() if conference else ())
            if p.kind == Kind.WHIP and p.display_name.casefold() == name
        }  # fmt: skip

    def _put_backup(self, run: _Run) -> None:
        """The backup encoder's tracks on the standby (none while it does not publish)."""
        if run.closed:
            return
        backup = self._backup_participants(run)  # none unless the standby is a backup encoder
        tracks = [t for t in run.router.tracks.values() if t.participant_id in backup] if run.router else []
        video = next((t.id for t in tracks if t.kind == "video"), None)
        wanted = (video, tuple(t.id for t in tracks if t.kind == "audio")) if tracks else None
        if wanted == run.backup:
            return
        run.backup = wanted
        assert run.router is not None or wanted is None
        run.engine.set_standby(
            EncoderSource(run.router.tap, wanted[0], wanted[1], label="backup")
            if wanted is not None and run.router is not None
            else None
        )

    def _put_meeting_on_air(self, run: _Run, *, force: bool = False) -> None:
        if run.closed or run.router is None:
            return
        self._put_backup(run)
        video, audio = self._choose(run)
        if not force and video == run.video_track and audio == run.audio:
            return
        run.video_track, run.audio = video, audio
        run.switched_at = self._monotonic()
        source = EncoderSource if run.encoder else MeetingSource
        run.engine.set_source(source(run.router.tap, video, audio))

    def _on_router_event(self, run: _Run, event: RouterEvent) -> None:
        if run.closed:
            return  # a Router keeps its listeners; an ended run ignores what follows
        try:
            match event:
                case TrackPublished() | TrackUnpublished():
                    self._put_meeting_on_air(run)
                case ActiveSpeakerChanged(participant_id=pid) if pid is not None and not run.encoder:
                    self._follow_speaker(run, pid)
        except RecordingError as exc:
            log.warning("live channel %s: the source did not change: %s", run.channel_id, exc)

    def _follow_speaker(self, run: _Run, participant_id: str) -> None:
        assert run.router is not None
        if self._monotonic() - run.switched_at < SPEAKER_HOLD_S:
            return
        camera = next(
            (t.id for t in run.router.tracks.values()
             if t.participant_id == participant_id and t.kind == "video" and t.source == "camera"),
            None,
        )  # fmt: skip
        if camera is None or camera == run.video_track:
            return
        run.video_track = camera
        run.switched_at = self._monotonic()
        run.engine.select_video(camera)

    # --- ending ---------------------------------------------------------------------------------------------

    def _run(self, channel_id: int) -> _Run:
        run = self._runs.get(channel_id)
        if run is None:
            raise Conflict("the channel's engine is not running in this process", code="not_running")
        return run

    async def _end(self, run: _Run) -> None:
        run.closed = True
        self._runs.pop(run.channel_id, None)
        try:
            await run.engine.end()  # ENDLIST written on return: event.m3u8 is the replay
        finally:
            await run.engine.close()

    async def _let_go(self, run: _Run) -> None:
        """Close a run and keep its files (a resumed run that could not go on: recovery ends it)."""
        run.closed = True
        self._runs.pop(run.channel_id, None)
        await run.engine.close()

    async def _discard(self, run: _Run) -> None:
        run.closed = True
        self._runs.pop(run.channel_id, None)
        await run.engine.close()
        await asyncio.to_thread(shutil.rmtree, run.directory, True)

    async def recover(self) -> None:
        """Channels a previous run left running (a crash) are resumed in their directory: the same EVENT
        playlist continued after a DISCONTINUITY, the same statistics; a meeting source attaches when the
        room's meeting is live here, else the standby plays. Only a run that cannot be continued (its
        files gone or ended) stops: a rehearsal goes back to draft, a live channel ends."""
        for channel in await store.in_states(self._db, ("rehearsal", "live")):
            if channel.id in self._runs:
                continue
            index = self.root / (channel.directory or ".none") / INDEX
            resumable: bool = bool(channel.directory) and await asyncio.to_thread(index.is_file)
            if resumable:
                try:
                    await self.start(channel, resume=True)
                    log.warning("live channel %s was %s when the server stopped: resumed",
                                channel.id, channel.state)  # fmt: skip
                    continue
                except RoomsError as exc:
                    log.error("live channel %s: it could not be resumed: %s", channel.id, exc)
            try:
                if channel.state == "live" and channel.directory:
                    await asyncio.to_thread(end_playlists, self.root / channel.directory)
                elif channel.directory:
                    await asyncio.to_thread(shutil.rmtree, self.root / channel.directory, True)
                await store.act(self._db, channel.id, "stop", now=self._clock())
                log.warning(
                    "live channel %s was %s when the server stopped: stopped", channel.id, channel.state
                )
            except (RoomsError, OSError) as exc:
                log.error("live channel %s: recovery failed: %s", channel.id, exc)

    async def feeds_live(self, meeting_number: str) -> bool:
        """Whether the room of ``meeting_number`` feeds a channel that is set up or running: its meeting page
        then publishes H.264, which the channel copies (a VP8 camera would be transcoded)."""
        async with self._db.session() as session:
            found = await session.scalar(
                select(ChannelRow.id)
                .join(Room, Room.id == ChannelRow.room_id)
                .where(
                    Room.meeting_number == meeting_number,
                    ChannelRow.source_kind == "meeting",
                    ChannelRow.state.in_(("draft", "rehearsal", "live")),
                )
                .limit(1)
            )
        return found is not None

    async def flush(self) -> None:
        await self.activity.flush(self._db)

    async def sample(self) -> None:
        await self.flush()  # the sample counts the requests of the last second too
        await store.sample(self._db, now=self._clock())

    async def close(self) -> None:
        """A shutdown ends the live channels (their replay is complete) and drops rehearsals (idempotent)."""
        self._closing = True
        for listeners, listener in ((self._sfu.router_opened, self._router_opened),
                                    (self._sfu.router_closed, self._router_closed)):  # fmt: skip
            if listener in listeners:
                listeners.remove(listener)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for run in list(self._runs.values()):
            try:
                async with self._db.session() as session:
                    row = await session.get(ChannelRow, run.channel_id)
                if row is not None and row.state == "live":
                    await self._end(run)
                    await store.act(self._db, run.channel_id, "stop", now=self._clock())
                else:
                    await self._discard(run)
                    if row is not None and row.state == "rehearsal":
                        await store.act(self._db, run.channel_id, "stop", now=self._clock())
            except (RecordingError, RoomsError, OSError):
                log.exception("live channel %s: closing failed", run.channel_id)
                await run.engine.close()


def end_playlists(directory: Path) -> None:
    """Append ENDLIST to a run's playlists an engine left open (a crash); idempotent."""
    for name in (INDEX, EVENT):
        path = directory / name
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        if "#EXT-X-ENDLIST" not in text:
            temporary = path.with_suffix(".tmp")
            temporary.write_text(text.rstrip("\n") + "\n#EXT-X-ENDLIST\n", encoding="utf-8")
            temporary.replace(path)


def install(
    app: web.Application,
    api: web.Application,
    settings: LiveSettings,
    *,
    var_dir: Path,
    database: Database,
    sfu: Sfu,
    meetings: MeetingServer,
    clock: Clock,
) -> LiveEngines:
    """Wire live channels into the app: the REST API's engines, the start-up recovery, the
    sampler, and the cleanup that ends them (before the SFU and the database close)."""
    if settings.root_dir is None:
        settings = settings.model_copy(update={"root_dir": var_dir / "live"})
    engines = LiveEngines(settings, database=database, sfu=sfu, meetings=meetings, clock=clock)
    app[LIVE_ENGINES] = engines
    api[LIVE_SERVICE] = engines
    api[ACTIVITY] = engines.activity
    live_ingest.install(api, settings)
    app[ui.LIVE_ROOMS] = engines.feeds_live
    sampler = PeriodicJob("live-sampler", engines.sample, SAMPLE_INTERVAL_S)
    app[LIVE_SAMPLER] = sampler
    flusher = PeriodicJob("live-viewer-activity", engines.flush, ACTIVITY_FLUSH_S)
    app[LIVE_ACTIVITY_JOB] = flusher

    async def live_ctx(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(engines.root.mkdir, parents=True, exist_ok=True)
        await engines.recover()
        sampler.start()
        flusher.start()
        yield
        await sampler.close()
        await flusher.close()
        await engines.flush()
        await engines.close()

    app.cleanup_ctx.append(live_ctx)
    return engines
