"""Pre-recorded videos wired into the process: the checking and normalising job, the purge of stale
uploads, and the hand-over of playlists to the live channel engine.

One job at a time per process (one owned task): take the oldest video that needs work (a lease on its row,
so two processes never work on one video, and a dead process's video is taken over when its lease runs out;
a video this worker's previous run left is taken at once, since a new run proves the old one dead), check it
(recording/live/media_check.py) and normalise it (recording/live/normalize.py) with progress. Every result
is written only while the lease is held. A crash mid-normalisation leaves the row "normalising": the next
start does it again from the beginning. The purge job is idempotent (safe in two processes at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web

from recording.errors import RecordingError
from recording.live.channel import LiveChannel
from recording.live.media_check import check_video
from recording.live.normalize import normalize
from recording.live.settings import LiveProfile, LiveSettings
from recording.live.sources import PlaylistEvent, PlaylistSource
from recording.live.video_settings import VideoSettings
from rooms.database import Database
from rooms.errors import RoomsError
from rooms.live import video_store as store
from rooms.live.video_store import Claim
from rooms.live.videos import NORMAL_NAME, SOURCE_NAME
from web.api import live_videos as live_videos_api
from yunhui.jobs import PeriodicJob
from yunhui.live import LIVE_ENGINES

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Called after the playlist changed: the queued items' files in order, and whether the item on air was cut.
ApplyPlaylist = Callable[[list[Path], bool], None]
# The running engine of a channel (yunhui/live.py LiveEngines.engine), None when the channel is not running.
EngineOf = Callable[[int], LiveChannel | None]

LIVE_VIDEOS_PURGE_JOB = web.AppKey("live_videos_purge_job", PeriodicJob)


class LiveVideos:
    """The videos' background work in this process (web.api.live_videos.VideoService); owns its tasks."""

    def __init__(
        self, settings: VideoSettings, profile: LiveProfile, *, database: Database, clock: Clock, owner: str
    ) -> None:
        assert settings.root_dir is not None, "the composition root fills in live.videos.root_dir"
        self.settings = settings
        self.profile = profile
        self._root: Path = settings.root_dir
        self._db = database
        self._clock = clock
        self._owner = owner
        self._lease = timedelta(seconds=settings.lease_seconds)
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._job: asyncio.Task[None] | None = None
        self._job_video: int | None = None
        self._feeds: dict[int, list[PlaylistFeed]] = {}
        self._on_air: dict[int, PlaylistFeed] = {}
        self.engine_of: EngineOf = lambda _channel_id: None
        self.jobs_done = 0
        # The videos this run has worked on: only the others can be a dead previous run's (claim_next).
        self._handled: set[int] = set()
        self._done = asyncio.Condition()

    # --- web.api.live_videos.VideoService ----------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self._root

    @property
    def max_size_bytes(self) -> int:
        return self.settings.max_size_bytes

    @property
    def upload_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.upload_ttl_seconds)

    def wake(self) -> None:
        self._wake.set()

    async def cancel(self, video_id: int) -> None:
        job = self._job
        if job is not None and self._job_video == video_id and not job.done():
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)

    async def remove_files(self, directory: str) -> None:
        path = self._root / directory
        if path.parent != self._root or not directory or directory.startswith("."):
            raise ValueError(f"{directory!r} is not a video directory")
        await asyncio.to_thread(shutil.rmtree, path, True)

    def playlist_changed(self, channel_id: int, *, cut: bool) -> None:
        for feed in list(self._feeds.get(channel_id, ())):
            feed.changed(cut=cut)

    # --- the hand-over to the engine ---------------------------------------------------------------------

    async def play(self, channel_id: int) -> bool:
        """Put the channel's playlist on air in its running engine (again from the first queued item if it
        already was); False when the channel is not running."""
        engine = self.engine_of(channel_id)
        if engine is None:
            return False
        old = self._on_air.pop(channel_id, None)
        if old is not None:
            await old.close()

        def apply(paths: list[Path], cut: bool) -> None:
            engine.playlist_set(paths)
            if cut:
                engine.playlist_skip()

        feed = self._on_air[channel_id] = self.feed(channel_id, apply=apply)
        engine.set_source(await feed.source())
        return True

    def on_air(self, channel_id: int) -> PlaylistFeed | None:
        """The feed :meth:`play` put on air for the channel, if any."""
        return self._on_air.get(channel_id)

    def feed(self, channel_id: int, *, apply: ApplyPlaylist | None = None) -> PlaylistFeed:
        """The playlist of a channel for its engine; close it when the channel stops playing it."""
        feed = PlaylistFeed(self, channel_id, apply)
        self._feeds.setdefault(channel_id, []).append(feed)
        return feed

    def _unregister(self, feed: PlaylistFeed) -> None:
        if self._on_air.get(feed.channel_id) is feed:
            del self._on_air[feed.channel_id]
        feeds = self._feeds.get(feed.channel_id, [])
        if feed in feeds:
            feeds.remove(feed)
        if not feeds:
            self._feeds.pop(feed.channel_id, None)

    async def queued(self, channel_id: int) -> list[tuple[int, Path]]:
        """The channel's queued items and their normalised files, in order."""
        queued = await store.queued_videos(self._db, channel_id)
        return [(q.item_id, self._root / q.directory / NORMAL_NAME) for q in queued]

    async def item_started(self, item_id: int) -> None:
        await store.item_started(self._db, item_id, now=self._clock())

    async def item_ended(self, item_id: int) -> None:
        await store.item_ended(self._db, item_id, now=self._clock())

    # --- the job -----------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._run(), name="live-videos")

    async def wait_jobs(self, count: int) -> None:
        """Return once ``count`` jobs have finished since the start (however they ended)."""
        async with self._done:
            await self._done.wait_for(lambda: self.jobs_done >= count)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                claim = await store.claim_next(
                    self._db,
                    owner=self._owner,
                    now=self._clock(),
                    lease=self._lease,
                    handled=sorted(self._handled),
                )
            except RoomsError:
                log.exception("live videos: looking for work failed")
                claim = None
            if claim is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval_seconds)
                continue
            self._job_video = claim.video_id
            self._handled.add(claim.video_id)
            self._job = asyncio.create_task(self._work(claim), name=f"live-video:{claim.video_id}")
            try:
                await asyncio.shield(self._job)
            except asyncio.CancelledError:
                if not self._job.cancelled():
                    raise  # the loop itself is being closed
                log.info("video %s: its work was cancelled", claim.video_id)
            except Exception:
                log.exception(
                    "video %s: the job failed; it is retried when its lease runs out", claim.video_id
                )
            finally:
                self._job = None
                self._job_video = None
            async with self._done:
                self.jobs_done += 1
                self._done.notify_all()

    async def _work(self, claim: Claim) -> None:
        directory = self._root / claim.directory
        keeper = asyncio.create_task(
            self._keep_lease(claim.video_id), name=f"live-video-lease:{claim.video_id}"
        )
        try:
            if claim.state == "checking":
                state, duration_ms = await self._check(claim, directory)
                if state != "normalising":
                    return
                claim = dataclasses.replace(claim, state=state, duration_ms=duration_ms)
            await self._normalise(claim, directory)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def _keep_lease(self, video_id: int) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_seconds / 3)
            await store.renew(self._db, video_id, owner=self._owner, now=self._clock(), lease=self._lease)

    async def _check(self, claim: Claim, directory: Path) -> tuple[str | None, int | None]:
        try:
            report = await check_video(directory / SOURCE_NAME, self.settings)
        except (RecordingError, OSError) as exc:
            # Not the video's fault (ffprobe missing, the file gone): the lease runs out and it is retried.
            log.error("video %s: the checks could not run: %s", claim.video_id, exc)
            raise
        refusal = report.refusal
        summary = dataclasses.asdict(report.summary)
        if report.loudness_lufs is not None:
            summary["loudness_lufs"] = report.loudness_lufs
        duration = report.summary.duration_s
        duration_ms = round(duration * 1000) if duration is not None else None
        state = await store.checked(
            self._db,
            claim.video_id,
            owner=self._owner,
            probe=summary,
            checks=[dataclasses.asdict(c) for c in report.checks],
            refusal=(refusal.reason or "refused", refusal.detail) if refusal is not None else None,
            duration_ms=duration_ms,
            now=self._clock(),
            lease=self._lease,
        )
        log.info("video %s checked: %s", claim.video_id, refusal.reason if refusal else "accepted")
        return state, duration_ms

    async def _normalise(self, claim: Claim, directory: Path) -> None:
        writer = _ProgressWriter(self, claim.video_id)
        for stale in await asyncio.to_thread(lambda: list(directory.glob(".*.part.mp4"))):
            await asyncio.to_thread(stale.unlink, True)  # a dead run's output (its ffmpeg died with it)
        try:
            result = await normalize(
                directory / SOURCE_NAME,
                directory / NORMAL_NAME,
                self.profile,
                duration_s=(claim.duration_ms or 0) / 1000,
                progress=writer.report,
                ffmpeg=self.settings.ffmpeg,
                nice=self.settings.nice,
                threads=self.settings.threads,
            )
        except RecordingError as exc:
            await writer.close()
            log.error("video %s: normalisation failed: %s", claim.video_id, exc)
            await store.normalise_failed(
                self._db, claim.video_id, owner=self._owner, detail=str(exc), now=self._clock()
            )
            return
        except BaseException:
            await writer.close()
            raise  # cancelled: stays "normalising", done again (the next start, or when the lease runs out)
        await writer.close()
        await store.normalised(
            self._db, claim.video_id, owner=self._owner, size_bytes=result.size_bytes, now=self._clock()
        )
        log.info("video %s is ready (%d bytes)", claim.video_id, result.size_bytes)

    async def renew(self, video_id: int, progress: int) -> bool:
        return await store.renew(
            self._db, video_id, owner=self._owner, now=self._clock(), lease=self._lease, progress=progress
        )

    # --- purge and shutdown ------------------------------------------------------------------------------

    async def purge(self) -> int:
        """Delete the uploads not finished in time (idempotent)."""
        purged = 0
        for video_id in await store.expired_uploads(self._db, now=self._clock()):
            try:
                directory = await store.delete(self._db, video_id)
            except RoomsError:
                continue  # finished or deleted meanwhile
            await self.remove_files(directory)
            purged += 1
        return purged

    async def close(self) -> None:
        for feeds in list(self._feeds.values()):
            for feed in list(feeds):
                await feed.close()
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        job = self._job
        if job is not None:
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)


class _ProgressWriter:
    """The normalisation's progress into the database: the latest whole percent, by one task, in order."""

    def __init__(self, videos: LiveVideos, video_id: int) -> None:
        self._videos = videos
        self._id = video_id
        self._latest = 0
        self._written = 0
        self._wake = asyncio.Event()
        self._done = False
        self._task = asyncio.create_task(self._run(), name=f"live-video-progress:{video_id}")

    def report(self, percent: float) -> None:
        self._latest = max(self._latest, min(99, int(percent)))  # 100 comes with the ready state
        self._wake.set()

    async def _run(self) -> None:
        while not self._done:
            await self._wake.wait()
            self._wake.clear()
            if self._latest > self._written:
                value = self._latest
                try:
                    await self._videos.renew(self._id, value)
                    self._written = value
                except RoomsError:
                    log.exception("video %s: storing the progress failed", self._id)

    async def close(self) -> None:
        self._done = True
        self._wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class PlaylistFeed:
    """The hand-over of one channel's playlist to the live channel engine (recording/live/).

    ``source()`` gives a PlaylistSource of the queued items' normalised files, in order; the engine calls
    ``on_event`` as items start and end, and the items are marked playing, then played. After each change
    in the API (reorder, insert, skip, remove) ``apply(paths, cut)`` is called with the queued files (give
    them to LiveChannel.playlist_set), and ``cut`` when the item on air was skipped (playlist_skip).
    """

    def __init__(self, videos: LiveVideos, channel_id: int, apply: ApplyPlaylist | None) -> None:
        self.channel_id = channel_id
        self._videos = videos
        self._apply = apply
        self._events: asyncio.Queue[tuple[str, PlaylistEvent | bool]] = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name=f"live-playlist:{channel_id}")
        self._closed = False
        # The queued items handed to the engine, in order: (item id, file); an event names a file.
        self._queued: list[tuple[int, Path]] = []
        self._playing: tuple[int, Path] | None = None
        self.events_marked = 0
        self._marked = asyncio.Condition()

    async def paths(self) -> list[Path]:
        """The queued items' normalised files, in the order they play (after the item on air)."""
        self._queued = await self._videos.queued(self.channel_id)
        return [path for _, path in self._queued]

    async def source(self, *, loop: bool = False) -> PlaylistSource:
        return PlaylistSource(tuple(await self.paths()), loop=loop, on_event=self.on_event)

    def on_event(self, event: PlaylistEvent) -> None:
        """The engine's callback (on the event loop): queued for the database, in order."""
        if not self._closed:
            self._events.put_nowait(("event", event))

    def changed(self, *, cut: bool) -> None:
        if not self._closed:
            self._events.put_nowait(("changed", cut))

    async def drain(self) -> None:
        """Return once every event and change so far is in the database and applied."""
        await self._events.join()

    async def wait_marked(self, count: int) -> None:
        """Return once ``count`` of the engine's events have been written (however many came before)."""
        async with self._marked:
            await self._marked.wait_for(lambda: self.events_marked >= count)

    async def _run(self) -> None:
        while True:
            kind, value = await self._events.get()
            try:
                if isinstance(value, PlaylistEvent):
                    await self._mark(value)
                    async with self._marked:
                        self.events_marked += 1
                        self._marked.notify_all()
                else:
                    paths = await self.paths()
                    if self._apply is not None:
                        self._apply(paths, value)
            except (RoomsError, RecordingError):
                log.exception("channel %s: the playlist %s failed", self.channel_id, kind)
            finally:
                self._events.task_done()

    async def _mark(self, event: PlaylistEvent) -> None:
        if event.event == "started":
            found = next((entry for entry in self._queued if entry[1] == event.path), None)
            if found is None:
                return  # not one of ours (a standby video), or removed meanwhile
            self._queued.remove(found)
            self._playing = found
            await self._videos.item_started(found[0])
        elif event.event == "ended" and self._playing is not None and self._playing[1] == event.path:
            item_id, self._playing = self._playing[0], None
            await self._videos.item_ended(item_id)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._videos._unregister(self)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


LIVE_VIDEOS: web.AppKey[LiveVideos] = web.AppKey("live_videos_service")


def install(
    app: web.Application,
    api: web.Application,
    settings: LiveSettings,
    *,
    var_dir: Path,
    database: Database,
    clock: Clock,
    owner: str,
) -> LiveVideos:
    """Wire the videos into the app: the REST API's service, the job, the purge, and their cleanup (before
    the database closes). ``owner`` is this worker's name (its leases)."""
    videos_settings = settings.videos
    if videos_settings.root_dir is None:
        live_root = settings.root_dir or var_dir / "live"
        videos_settings = videos_settings.model_copy(update={"root_dir": live_root / "videos"})
    videos = LiveVideos(videos_settings, settings.profile, database=database, clock=clock, owner=owner)

    def engine_of(channel_id: int) -> LiveChannel | None:
        engines = app.get(LIVE_ENGINES)  # looked up when used: yunhui/live.py installs it
        return engines.engine(channel_id) if engines is not None else None

    videos.engine_of = engine_of
    live_videos_api.install(api, videos)
    app[LIVE_VIDEOS] = videos
    purge = PeriodicJob("live-videos-purge", videos.purge, 3600.0)
    app[LIVE_VIDEOS_PURGE_JOB] = purge

    async def videos_ctx(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(videos.root.mkdir, parents=True, exist_ok=True)
        videos.start()
        purge.start()
        yield
        await purge.close()
        await videos.close()

    app.cleanup_ctx.append(videos_ctx)
    return videos
