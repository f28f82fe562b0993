"""Recording wired into the process: a Recorder per recorded meeting, the composite renders, the purge job.

Each recorded meeting has one _Session, owned by Recordings: its Recorder (recording/), the recorder
participant it seats in the Conference (signaling/, Role.RECORDER: not counted, does not keep the meeting
alive) and a Router tap per Track (sfu/). The session ends when its recorder leaves — stopped by a moderator,
or the meeting ended — and then the files are finalised, stored in rooms/recordings, and the composite is
rendered (one at a time, niced, one thread: recording/composite.py). Every step is a state of the Recording
row, so a crash at any point is finished at the next start (recover). The purge job is idempotent and safe
to run in two processes at once: it deletes by row state and removes directories that may already be gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import secrets
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from recording.composite import render
from recording.errors import RecordingError
from recording.finalize import RecordingResult, finalise, recover
from recording.recorder import Recorder
from recording.settings import RecordingSettings
from recording.track import TrackInfo
from rooms.database import Database
from rooms.errors import Conflict, RoomsError
from rooms.models import Booking, Meeting, Room, User
from rooms.outbox.store import enqueue
from rooms.recordings import store
from rooms.recordings.models import Recording
from rooms.recordings.rules import safe_name, sign_link
from rooms.recordings.store import FileFact
from sfu.errors import SfuError
from sfu.events import ActiveSpeakerChanged, RouterEvent, TrackPublished
from sfu.router import Router
from sfu.sfu import Sfu
from sfu.tap import TappedTrack, TapSink, TapSubscription
from signaling.conference import Conference
from signaling.errors import ProtocolError
from signaling.messages import LeaveReason
from signaling.participant import Participant
from signaling.recording import RecordingUnavailable
from signaling.server import MeetingServer
from yunhui.jobs import PeriodicJob
from yunhui.recording_timeline import MeetingTimeline

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
RECORDER_NAME = "Recorder"
COMPOSITE = "composite.mp4"
JOIN_TIMEOUT = 10.0
# A stop during shutdown still finalises the files (a remux per track); longer than this, the next start does.
FINISH_TIMEOUT = 30.0

RECORDINGS_JOB = web.AppKey("recordings_purge_job", PeriodicJob)


@dataclass
class _Session:
    recording_id: int
    meeting_id: int
    account_id: int
    directory: Path
    recorder: Recorder
    participant: Participant | None = None
    taps: dict[str, TapSubscription] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # participant id -> display name
    unwatch: Callable[[], None] | None = None
    closed: bool = False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _facts(result: RecordingResult, names: dict[str, str]) -> list[FileFact]:
    facts = [
        FileFact(
            kind="screen" if f.source == "screen" else f.kind,
            name=f.name,
            size_bytes=f.size,
            duration_ms=round(f.duration_s * 1000),
            checksum=f"sha256:{f.sha256}",
            participant=names.get(f.participant_id, f.participant_id),
        )
        for f in result.files
    ]
    timeline = result.directory / result.timeline
    if timeline.is_file():
        facts.append(FileFact(kind="timeline", name=result.timeline, size_bytes=timeline.stat().st_size))
    return facts


class Recordings:
    """Recording in this process (signaling.recording.RecordingPort); owns its sessions and tasks."""

    def __init__(
        self,
        settings: RecordingSettings,
        *,
        database: Database,
        sfu: Sfu,
        meetings: MeetingServer,
        clock: Clock,
        public_url: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        assert settings.root_dir is not None, "the composition root fills in recording.root_dir"
        self._secret_key = secret_key  # signs the e-mail's watch link; None: the e-mail has none
        self.settings = settings
        self.root: Path = settings.root_dir
        self._db = database
        self._sfu = sfu
        self._meetings = meetings
        self._clock = clock
        self._public_url = (public_url or "").rstrip("/")
        self._sessions: dict[int, _Session] = {}
        self._finishing: set[asyncio.Task[None]] = set()
        self._rendering: dict[int, asyncio.Task[None]] = {}
        self._render_slot = asyncio.Semaphore(1)  # one composite at a time: live meetings keep their CPU
        self._closing = False

    # --- signaling.recording.RecordingPort ------------------------------------------------------------

    async def start(self, conference: Conference, *, started_by: str) -> None:
        meeting_id = conference.meeting_id
        if self._closing or meeting_id is None:
            raise RecordingUnavailable("the server is restarting; try again shortly")
        if meeting_id in self._sessions:
            raise RecordingUnavailable("the meeting is already being recorded")
        router = self._sfu.routers.get(str(meeting_id))
        if router is None:
            raise RecordingUnavailable("the meeting's media are not ready")
        now = self._clock()
        name = f"{meeting_id}-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        try:
            recording_id = await store.create(
                self._db,
                account_id=conference.room.account_id,
                meeting_id=meeting_id,
                room_id=conference.room.room_id,
                directory=name,
                started_by=started_by,
                now=now,
            )
        except Conflict as exc:
            raise RecordingUnavailable(exc.message) from None
        try:
            recorder = await asyncio.to_thread(
                Recorder, self.root / name, self.settings, meeting_id=str(meeting_id)
            )
        except RecordingError as exc:
            log.error("meeting %s: the recorder did not start: %s", meeting_id, exc)
            await store.failed(
                self._db, recording_id, f"the recorder did not start: {exc}", now=self._clock()
            )
            raise RecordingUnavailable("the recording storage is not available") from None
        session = _Session(recording_id, meeting_id, conference.room.account_id, self.root / name, recorder)
        # Registered before the recorder joins: if the meeting ends meanwhile, recorder_left finds it.
        self._sessions[meeting_id] = session
        session.participant = participant = conference.join_recorder(RECORDER_NAME)
        try:
            joined = await asyncio.wait_for(participant.wait_joined(), JOIN_TIMEOUT)
        except TimeoutError:
            joined = False
        if not joined:
            await participant.close(LeaveReason.ERROR)
            raise RecordingUnavailable("the recorder could not join the meeting")
        # The layout the composite will use (the room has no live layout choice yet: the setting decides).
        recorder.event("layout", layout=self.settings.composite_layout)
        timeline = MeetingTimeline(recorder, session.names)
        for p in conference.participants():
            timeline.present(p.info())
        session.unwatch = conference.watch(timeline)  # later joins, leaves, mutes and screen shares
        router.add_listener(functools.partial(self._on_router_event, session, conference, router))
        for track_id in list(router.tracks):
            self._tap(session, conference, router, track_id)
        log.info("meeting %s: recording %s started by %r", meeting_id, recording_id, started_by)

    async def stop(self, meeting_id: int) -> None:
        session = self._sessions.get(meeting_id)
        if session is not None and session.participant is not None:
            # Its leave reaches recorder_left, which finishes the recording in a task of its own.
            await session.participant.close(LeaveReason.LEFT)

    def recorder_left(self, meeting_id: int) -> str | None:
        session = self._sessions.pop(meeting_id, None)
        if session is None or session.closed:
            return None
        session.closed = True
        task = asyncio.create_task(self._finish(session), name=f"recording-finish:{session.recording_id}")
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)
        if self._secret_key is None or not self.settings.composite:
            return None
        token, _ = self._watch_token(session.recording_id, session.account_id)
        return f"{self._public_url}/recordings/watch?token={token}"

    def _watch_token(self, recording_id: int, account_id: int) -> tuple[str, datetime]:
        """A token for the composite (rendered later, under its fixed name): the watch page and the
        e-mail's link follow the rendering and then play it, without a session."""
        assert self._secret_key is not None
        return sign_link(
            self._secret_key,
            recording_id=recording_id,
            account_id=account_id,
            file_name=COMPOSITE,
            now=self._clock(),
            ttl=timedelta(seconds=self.settings.email_link_ttl_seconds),
        )

    # --- the session's media ----------------------------------------------------------------------------

    def _tap(self, session: _Session, conference: Conference, router: Router, track_id: str) -> None:
        if session.closed or track_id in session.taps:
            return

        def sink_for(tapped: TappedTrack) -> TapSink:
            owner = conference.participant(tapped.participant_id)
            name = owner.display_name if owner is not None else ""
            session.names.setdefault(tapped.participant_id, name)
            info = TrackInfo(
                tapped.track_id,
                tapped.participant_id,
                tapped.kind,
                tapped.source,
                tapped.codec,
                tapped.clock_rate,
                tapped.channels,
                display_name=name,
            )
            return session.recorder.attach(info)

        try:
            session.taps[track_id] = router.tap(track_id, sink_for)
        except (SfuError, RecordingError) as exc:
            log.warning("meeting %s: track %s is not recorded: %s", session.meeting_id, track_id, exc)

    def _on_router_event(
        self, session: _Session, conference: Conference, router: Router, event: RouterEvent
    ) -> None:
        if session.closed:
            return  # a Router keeps its listeners; a finished session ignores what follows
        match event:
            case TrackPublished(track_id=track_id):
                self._tap(session, conference, router, track_id)
            case ActiveSpeakerChanged(participant_id=pid):
                session.recorder.event("speaker", participant=pid)

    async def _finish(self, session: _Session) -> None:
        if session.unwatch is not None:
            session.unwatch()
        for tap in session.taps.values():
            tap.close()
        try:
            await store.mark(self._db, session.recording_id, "finalising", now=self._clock())
            result = await session.recorder.close()
            await self._finalised(session.recording_id, session.account_id, result, session.names)
        except (RecordingError, RoomsError, OSError) as exc:
            log.error("recording %s: finalising failed: %s", session.recording_id, exc)
            await self._fail(session.recording_id, f"the files could not be finalised: {exc}")
            return
        self.render_later(session.recording_id)

    async def _finalised(
        self, recording_id: int, account_id: int, result: RecordingResult, names: dict[str, str]
    ) -> None:
        facts = await asyncio.to_thread(_facts, result, names)
        now = self._clock()
        async with self._db.session() as session:
            days = await store.retention_days(
                session, account_id, now=now, default=self.settings.retention_days
            )
        await store.finalised(
            self._db,
            recording_id,
            facts,
            duration_ms=round(result.duration_s * 1000),
            ended_at=now,
            retention_days=days,
            render=self.settings.composite,
            now=now,
        )

    async def _fail(self, recording_id: int, error: str) -> None:
        try:
            await store.failed(self._db, recording_id, error, now=self._clock())
        except RoomsError:
            log.exception("recording %s: recording the failure failed", recording_id)

    # --- the composite -----------------------------------------------------------------------------------

    def render_later(self, recording_id: int) -> None:
        """Render the composite of a recording in state "rendering" in a task (one render at a time)."""
        if self._closing or not self.settings.composite:
            return
        running = self._rendering.get(recording_id)
        if running is not None and not running.done():
            return
        task = asyncio.create_task(self._render(recording_id), name=f"recording-render:{recording_id}")
        self._rendering[recording_id] = task
        task.add_done_callback(lambda _: self._rendering.pop(recording_id, None))

    async def _render(self, recording_id: int) -> None:
        async with self._render_slot:
            async with self._db.session() as session:
                recording = await session.get(Recording, recording_id)
            if recording is None or recording.state != "rendering":
                return
            directory = self.root / safe_name(recording.directory)
            progress = _ProgressWriter(self._db, recording_id, self._clock)
            try:
                result = await render(
                    directory,
                    self.settings.composite_layout,
                    directory / COMPOSITE,
                    progress.report,
                    settings=self.settings,
                )
                await progress.close()
                checksum = await asyncio.to_thread(_sha256, result.path)
                size = await asyncio.to_thread(lambda: result.path.stat().st_size)
            except (RecordingError, OSError) as exc:
                await progress.close()
                log.error("recording %s: the composite failed: %s", recording_id, exc)
                await self._fail(recording_id, f"the composite could not be rendered: {exc}")
                return
            except asyncio.CancelledError:
                await progress.close()
                raise  # stays "rendering": the next start renders it again
            composite = FileFact(
                "composite", result.path.name, size, round(result.duration_s * 1000), checksum
            )
            await store.rendered(self._db, recording_id, composite, now=self._clock(), on_ready=self._notify)
            log.info("recording %s is ready (%d bytes)", recording_id, size)

    async def _notify(self, session: AsyncSession, recording: Recording) -> None:
        """The "recording ready" e-mail, queued in the transaction that makes the recording ready."""
        meeting = await session.get(Meeting, recording.meeting_id) if recording.meeting_id else None
        room = await session.get(Room, recording.room_id) if recording.room_id else None
        recipients: list[User] = []
        if meeting is not None and meeting.booking_id is not None:
            booking = await session.get(Booking, meeting.booking_id)
            if booking is not None and booking.organizer_id is not None:
                organizer = await session.get(User, booking.organizer_id)
                recipients = [organizer] if organizer is not None else []
        if not recipients:
            admins = await session.scalars(
                select(User).where(User.account_id == recording.account_id, User.role == "admin")
            )
            recipients = list(admins.all())
        url = f"{self._public_url}/admin/recordings?meeting={recording.meeting_id or ''}"
        # The organiser need not be an admin: the e-mail also carries a signed link that plays the composite
        # without signing in, valid for email_link_ttl_seconds.
        watch_url, watch_until = "", ""
        if self._secret_key is not None and recording.composite_path is not None:
            token, expires_at = self._watch_token(recording.id, recording.account_id)
            watch_url = f"{self._public_url}/recordings/watch?token={token}"
            watch_until = expires_at.isoformat(timespec="minutes")
        for user in recipients:
            await enqueue(
                session,
                channel="email",
                kind="recording_ready",
                recipient=user.email,
                idempotency_key=f"recording_ready:{recording.id}:{user.id}",
                now=self._clock(),
                account_id=recording.account_id,
                locale=user.locale or "zh-CN",
                variables={
                    "name": user.display_name or user.email,
                    "title": room.name if room is not None else "",
                    "start": recording.started_at.isoformat(timespec="minutes"),
                    "url": url,
                    "watch_url": watch_url,
                    "watch_until": watch_until,
                },
            )

    # --- start-up, purge, shutdown --------------------------------------------------------------------

    async def recover(self) -> int:
        """Finish what a previous run left (a crash mid-recording, mid-finalise or mid-render)."""
        finished = 0
        for recording in await store.unfinished(self._db):
            if recording.meeting_id in self._sessions:
                continue
            async with self._db.session() as session:
                meeting = await session.get(Meeting, recording.meeting_id) if recording.meeting_id else None
            if meeting is not None and meeting.ended_at is None:
                continue  # still live (in another worker); its own recorder finishes it
            directory = self.root / recording.directory
            try:
                if recording.state in ("recording", "finalising"):
                    if recording.state == "recording":
                        await store.mark(self._db, recording.id, "finalising", now=self._clock())
                    result = await recover(directory, self.settings)
                    result = result or await finalise(directory, self.settings)
                    await self._finalised(recording.id, recording.account_id, result, {})
            except (RecordingError, RoomsError, OSError) as exc:
                log.error("recording %s: recovery failed: %s", recording.id, exc)
                await self._fail(recording.id, f"the files could not be recovered after a restart: {exc}")
                continue
            self.render_later(recording.id)
            finished += 1
        return finished

    async def purge(self) -> int:
        """Delete the recordings past their retention, and the files of deleted ones (idempotent)."""
        now = self._clock()
        purged = 0
        for recording_id in await store.expired(self._db, now=now):
            try:
                recording = await store.delete(self._db, recording_id, now=now)
            except RoomsError:
                continue  # changed meanwhile (retention extended, a retry started)
            await self.remove_files(recording.directory)
            purged += 1
        for directory in await store.deleted_directories(self._db):
            if await asyncio.to_thread((self.root / directory).exists):
                await self.remove_files(directory)
        if purged:
            log.info("purged %d recording(s) past their retention", purged)
        return purged

    async def remove_files(self, directory: str) -> None:
        path = self.root / safe_name(directory)
        await asyncio.to_thread(shutil.rmtree, path, True)

    async def close(self) -> None:
        """Stop: finish what is being finalised (bounded), cancel renders (they run again at next start)."""
        self._closing = True
        for meeting_id in list(self._sessions):
            await self.stop(meeting_id)
        if self._finishing:
            _, pending = await asyncio.wait(set(self._finishing), timeout=FINISH_TIMEOUT)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        renders = list(self._rendering.values())
        for task in renders:
            task.cancel()
        await asyncio.gather(*renders, return_exceptions=True)


class _ProgressWriter:
    """The render's progress into the database: the latest whole percent, written by one task, in order."""

    def __init__(self, db: Database, recording_id: int, clock: Clock) -> None:
        self._db = db
        self._id = recording_id
        self._clock = clock
        self._latest = 0
        self._written = 0
        self._wake = asyncio.Event()
        self._done = False
        self._task = asyncio.create_task(self._run(), name=f"recording-progress:{recording_id}")

    def report(self, percent: float) -> None:
        # 100 is written with the ready state, in the same transaction.
        self._latest = max(self._latest, min(99, int(percent)))
        self._wake.set()

    async def _run(self) -> None:
        while not self._done:
            await self._wake.wait()
            self._wake.clear()
            if self._latest > self._written:
                value = self._latest
                try:
                    await store.progress(self._db, self._id, value, now=self._clock())
                    self._written = value
                except RoomsError:
                    log.exception("recording %s: storing the progress failed", self._id)

    async def close(self) -> None:
        self._done = True
        self._wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class ApiRecordings:
    """web.api.recordings.RecordingService over Recordings and the live meetings."""

    def __init__(self, recordings: Recordings, meetings: MeetingServer) -> None:
        self._recordings = recordings
        self._meetings = meetings

    @property
    def root(self) -> Path:
        return self._recordings.root

    @property
    def link_ttl(self) -> timedelta:
        return timedelta(seconds=self._recordings.settings.download_link_ttl_seconds)

    async def start(self, meeting_id: int, *, started_by: str) -> bool:
        conference = self._meetings.conference_by_meeting(meeting_id)
        if conference is None:
            return False
        try:
            await conference.recording.start(None, started_by=started_by)
        except ProtocolError as exc:
            raise Conflict(exc.message, code=exc.code.value) from None
        return True

    async def stop(self, meeting_id: int) -> bool:
        conference = self._meetings.conference_by_meeting(meeting_id)
        if conference is None:
            return False
        try:
            await conference.recording.stop(None)
        except ProtocolError as exc:
            raise Conflict(exc.message, code=exc.code.value) from None
        return True

    async def render(self, recording_id: int) -> None:
        self._recordings.render_later(recording_id)

    async def remove_files(self, directory: str) -> None:
        await self._recordings.remove_files(directory)


RECORDINGS: web.AppKey[Recordings] = web.AppKey("recordings")


def install(
    app: web.Application,
    settings: RecordingSettings,
    *,
    var_dir: Path,
    database: Database,
    sfu: Sfu,
    meetings: MeetingServer,
    clock: Clock,
    public_url: str | None,
    secret_key: str | None = None,
) -> ApiRecordings:
    """Wire recording into the app: the meeting server's port, the start-up recovery, the purge job, and
    the cleanup that stops it all (before the database and the SFU close). Returns the REST API's port."""
    if settings.root_dir is None:
        settings = settings.model_copy(update={"root_dir": var_dir / "recordings"})
    recordings = Recordings(
        settings, database=database, sfu=sfu, meetings=meetings, clock=clock, public_url=public_url,
        secret_key=secret_key,
    )  # fmt: skip
    meetings.recordings = recordings
    app[RECORDINGS] = recordings
    purge = PeriodicJob("recordings-purge", recordings.purge, settings.purge_interval_seconds)
    app[RECORDINGS_JOB] = purge

    async def recordings_ctx(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(recordings.root.mkdir, parents=True, exist_ok=True)
        recovery = asyncio.create_task(recordings.recover(), name="recordings-recover")
        purge.start()
        yield
        await purge.close()
        recovery.cancel()
        await asyncio.gather(recovery, return_exceptions=True)
        await recordings.close()

    app.cleanup_ctx.append(recordings_ctx)
    return ApiRecordings(recordings, meetings)
