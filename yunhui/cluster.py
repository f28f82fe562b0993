"""Cluster wiring (issue #20): leader-only jobs, and in cluster mode the registry and meeting placement.

One process with embedded defaults stays what it was: it leads at once (SQLite, or PostgreSQL without
``workers.redis_url``: the advisory lock still keeps a second, accidental process from running the jobs),
needs no Redis and places every meeting on itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from rooms.database import Database
from rooms.workers import reap_dead_runs, stale_after
from signaling.conference import Conference
from signaling.errors import JoinRefused, RefusalCode
from signaling.messages import MeetingMoved
from signaling.server import MeetingServer
from web.api.locate import LOCATOR, Location
from web.keys import METRICS, READINESS
from yunhui import leader
from yunhui.backup_jobs import BACKUP_JOB
from yunhui.drain import DRAIN, Drain
from yunhui.fencing import FencedMeetingStore
from yunhui.jobs import PeriodicJob
from yunhui.monitor import MONITOR
from yunhui.notifications import PURGE_JOB, REMINDER_JOB
from yunhui.recordings import RECORDINGS_JOB
from yunhui.registry import Registry, RegistryUnavailable, connect, worker_view
from yunhui.settings import Settings, WorkerSettings, parse_port_range

log = logging.getLogger(__name__)
REGISTRY = web.AppKey("registry", Registry)

# The PeriodicJobs that must run once cluster-wide, by the app key their module stores them under.
# The outbox and webhook dispatchers are not here: they lease each row before sending (safe in every
# worker), and the announcement channel reaches the meetings of the worker that sends.
ONCE_JOB_KEYS: tuple[web.AppKey[PeriodicJob], ...] = (REMINDER_JOB, PURGE_JOB, RECORDINGS_JOB, BACKUP_JOB)


def slot_name(workers: WorkerSettings) -> str:
    """The rooms.workers slot of this process: a new run of a slot proves the previous one dead."""
    return "main" if workers.worker_id is None else f"w{workers.worker_id}"


def udp_slice(settings: Settings, worker_id: int) -> tuple[int, int] | None:
    """Worker ``worker_id``'s UDP ports: its entry of workers.udp_ranges, else its even share of
    sfu.udp_port_min..max; None when no range is set (every worker then binds ephemeral ports)."""
    workers = settings.workers
    index = worker_id - workers.first_id
    if not 0 <= index < workers.count:
        raise ValueError(
            f"worker {worker_id} is not one of this machine's workers "
            f"{workers.first_id}..{workers.first_id + workers.count - 1} (workers.first_id, workers.count)"
        )
    if workers.udp_ranges:
        return parse_port_range(workers.udp_ranges[index])
    low, high = settings.sfu.udp_port_min, settings.sfu.udp_port_max
    if low is None or high is None:
        return None
    size = (high - low + 1) // workers.count
    if size < 2:
        raise ValueError(f"sfu.udp_port_min..max ({low}-{high}) is too small for {workers.count} workers")
    first = low + index * size
    return first, first + size - 1


def worker_overrides(settings: Settings, worker_id: int) -> dict[str, Any]:
    """The settings a worker process runs with: its id, its HTTP port (behind nginx: no HTTPS listener of
    its own) and its UDP slice."""
    overrides: dict[str, Any] = {
        "workers": {"worker_id": worker_id},
        "server": {"port": settings.workers.base_port + worker_id - settings.workers.first_id, "tls_port": 0},
    }
    ports = udp_slice(settings, worker_id)
    if ports is not None:
        overrides["sfu"] = {"udp_port_min": ports[0], "udp_port_max": ports[1]}
    return overrides


class LeaderCollector(Collector):
    """/metrics: whether this worker leads, and the runs (and skipped runs) of the jobs it gates."""

    def __init__(self, leadership: leader.Leadership, jobs: list[PeriodicJob]) -> None:
        self._leadership = leadership
        self._jobs = jobs

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily(
            "yunhui_cluster_leader",
            "1 while this worker holds the scheduler lock",
            value=self._leadership.leading,
        )
        runs = CounterMetricFamily("yunhui_job_runs", "runs of the jobs that must run once", labels=["job"])
        skipped = CounterMetricFamily(
            "yunhui_job_skipped", "runs skipped because another worker leads", labels=["job"]
        )
        for job in self._jobs:
            runs.add_metric([job.name], job.runs)
            skipped.add_metric([job.name], job.skipped)
        yield runs
        yield skipped


class RegistryCollector(Collector):
    """/metrics: this worker's registration as the cluster sees it (state, load, registry reachable)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[GaugeMetricFamily]:
        me = self._registry.me
        state = GaugeMetricFamily(
            "yunhui_worker_state", "1 for this worker's state", labels=["worker", "state"]
        )
        state.add_metric([me.id, me.state], 1)
        yield state
        for name, value, text in (
            ("yunhui_worker_meetings", me.meetings, "meetings live in this worker"),
            ("yunhui_worker_participants", me.participants, "participants in this worker's meetings"),
            ("yunhui_cluster_registry_up", int(self._registry.healthy), "1 while Redis takes the heartbeats"),
        ):
            gauge = GaugeMetricFamily(name, text, labels=["worker"])
            gauge.add_metric([me.id], value)
            yield gauge


def install(
    app: web.Application,
    settings: Settings,
    database: Database,
    *,
    meetings: MeetingServer,
    api: web.Application,
    clock: Callable[[], datetime],
    once_jobs: Iterable[PeriodicJob] = (),
    store: FencedMeetingStore | None = None,
) -> leader.Leadership:
    """Gate the jobs that must run once on the leadership; call it last in create_app (the jobs exist)."""
    leadership = leader.install(app, database, check_seconds=settings.workers.leader_check_seconds)
    gate = leadership.is_leader
    gated = [*once_jobs, *(job for key in ONCE_JOB_KEYS if (job := app.get(key)) is not None)]
    for job in gated:
        job.gate = gate
    app[METRICS].register(LeaderCollector(leadership, gated))
    monitor = app.get(MONITOR)
    if monitor is not None:
        monitor.gate = gate
    if settings.workers.redis_url is not None:
        registry = _install_registry(app, api, settings, meetings)
        if store is not None:
            _install_fencing(app, registry, meetings, store, settings)
        reaper = _reaper(app, settings, database, clock)
        reaper.gate = gate
        gated.append(reaper)
    return leadership


class ClusterPlacement:
    """signaling's placement port and the REST API's locator, on the registry."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def admit(self, room_id: int) -> None:
        try:
            found = await self._registry.admit(room_id)
        except RegistryUnavailable as exc:
            log.warning("join refused: the registry is unavailable (%s)", exc)
            raise JoinRefused(
                RefusalCode.UNAVAILABLE, "the meeting service cannot place meetings now; try again shortly"
            ) from None
        if found.id != self._registry.worker_id:
            raise JoinRefused(
                RefusalCode.WRONG_WORKER,
                f"this meeting lives in worker {found.id}: connect under /w/{found.id}/",
                worker=found.id,
            )

    async def locate(self, room_id: int | None, *, expected: int) -> Location | None:
        try:
            found = await self._registry.locate(room_id, expected=expected)
        except RegistryUnavailable as exc:
            log.warning("locate failed: the registry is unavailable (%s)", exc)
            return None
        return Location(worker=found.id, base=f"/w/{found.id}/")


def _install_registry(
    app: web.Application, api: web.Application, settings: Settings, meetings: MeetingServer
) -> Registry:
    assert settings.workers.redis_url is not None and settings.workers.worker_id is not None
    sfu = settings.sfu
    udp = "" if sfu.udp_port_min is None else f"{sfu.udp_port_min}-{sfu.udp_port_max}"
    me = worker_view(settings.workers, http_port=settings.server.port, udp=udp)

    def local_rooms() -> dict[int, int]:
        return {c.room.room_id: len(c.participants()) for c in meetings.conferences()}

    registry = Registry(connect(settings.workers.redis_url), settings.workers, me=me, local_rooms=local_rooms)
    app[REGISTRY] = registry
    placement = ClusterPlacement(registry)
    meetings.placement = placement
    api[LOCATOR] = placement
    app[READINESS] = lambda: None if registry.healthy else "the cluster registry (Redis) is unreachable"
    app[METRICS].register(RegistryCollector(registry))

    async def registry_ctx(app: web.Application) -> AsyncIterator[None]:
        try:
            await registry.beat()  # registered before the listener opens: locates can place here at once
        except RedisError as exc:
            log.warning("registry: first heartbeat failed (%s); retrying", exc)
        registry.start()
        yield
        await registry.close()

    app.cleanup_ctx.append(registry_ctx)
    return registry


def _install_fencing(
    app: web.Application,
    registry: Registry,
    meetings: MeetingServer,
    store: FencedMeetingStore,
    settings: Settings,
) -> None:
    """Meetings start under their lease's epoch; a copy whose lease moved stops (its people locate the
    meeting again); SIGTERM drains (yunhui/drain.py, run by `yunhui serve`)."""

    def stop_copy(conference: Conference | None) -> None:
        if conference is not None:
            conference.move(MeetingMoved(worker=None, base=None))

    def lease_lost(room_id: int) -> None:
        stop_copy(next((c for c in meetings.conferences() if c.room.room_id == room_id), None))

    store.epoch_of = registry.epoch
    store.on_stale = lambda meeting_id: stop_copy(meetings.conference_by_meeting(meeting_id))
    registry.moved = lease_lost
    app[DRAIN] = Drain(meetings, registry, store, settings.workers)


class ClusterUnreachable(Exception):
    """Redis or PostgreSQL cannot be reached by `yunhui workers`."""


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """A line of `yunhui workers`."""

    id: str
    state: str
    address: str
    http_port: int
    udp: str
    meetings: int
    participants: int
    leads: bool


async def list_workers(settings: Settings) -> list[WorkerRow]:
    """The registered workers, and which one holds the scheduler lock (matched by host-local pid)."""
    assert settings.workers.redis_url is not None
    client = connect(settings.workers.redis_url)
    try:
        views = await Registry.read(client)
    except RedisError as exc:
        raise ClusterUnreachable(f"the registry (workers.redis_url) is unreachable: {exc}") from None
    finally:
        await client.aclose()
    database = await Database.connect(settings.database_url)
    try:
        holder = await leader.holder_pid(database)
    except Exception as exc:  # the database is away: the list is still worth showing
        log.warning("cannot tell the leader: %s", exc)
        holder = None
    finally:
        await database.close()
    return [
        WorkerRow(v.id, v.state, v.address, v.http_port, v.udp, v.meetings, v.participants, v.pid == holder)
        for v in views
    ]


def _reaper(
    app: web.Application, settings: Settings, database: Database, clock: Callable[[], datetime]
) -> PeriodicJob:
    """The leader closes the meetings of a worker that died while the others ran on (at its last heartbeat,
    reason worker_lost, an outage recorded for credits); a restart of its slot would, but may never come."""
    interval = settings.jobs.heartbeat_interval_seconds
    stale = stale_after(timedelta(seconds=interval))

    async def reap() -> None:
        closed, outages = await reap_dead_runs(database, now=clock(), stale_after=stale)
        if closed:
            log.warning(
                "closed %d meeting(s) of lost workers (%s); %d outage(s) recorded",
                len(closed), ", ".join(str(c.meeting_id) for c in closed), len(outages),
            )  # fmt: skip

    job = PeriodicJob("reaper", reap, interval)

    async def reaper_ctx(app: web.Application) -> AsyncIterator[None]:
        job.start()
        yield
        await job.close()

    app.cleanup_ctx.append(reaper_ctx)
    return job
