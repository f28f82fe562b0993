"""The app factory: the only place where the packages are wired together."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from importlib.metadata import version

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rooms.billing.run import BILLING_RUN, run_billing
from rooms.database import Database
from rooms.errors import RoomsError
from rooms.tokens import verify_join_token
from rooms.workers import Recovery, beat, record_job_run, stale_after, start_worker, stop_worker
from sfu.sfu import Sfu
from sfu.whip import whip_app
from signaling.files_app import files_app
from signaling.media_gate import MediaGate
from signaling.prejoin import PasscodeProbe
from signaling.server import MeetingServer, socketio_server
from signaling.store import RoomsMeetingStore
from web import health, pages, proxies, ui
from web.api import create_api
from web.headers import add_security_headers
from web.keys import CLOCK, DATABASE, METRICS, VERSION
from web.proxies import CLIENT_ADDRESS
from yunhui import backup_jobs, cluster, internal, monitor, webhooks, whip_redirect
from yunhui.fencing import FencedMeetingStore
from yunhui.jobs import PeriodicJob
from yunhui.live import install as install_live
from yunhui.live_videos import install as install_live_videos
from yunhui.notifications import install as install_notifications
from yunhui.recordings import install as install_recordings
from yunhui.settings import Settings
from yunhui.sfu_metrics import SfuCollector
from yunhui.signaling_metrics import SignalingCollector
from yunhui.sip import install as install_sip
from yunhui.sms import install as install_sms

BILLING_JOB = web.AppKey("billing_job", PeriodicJob)
HEARTBEAT_JOB = web.AppKey("heartbeat_job", PeriodicJob)
RECOVERY = web.AppKey("recovery", Recovery)
# The worker slot of the single process; a run of a slot proves every earlier run of it dead (rooms.workers).
WORKER_NAME = "main"

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _metrics_middleware(registry: CollectorRegistry) -> Middleware:
    requests = Counter(
        "yunhui_http_requests", "HTTP requests served", ["method", "status"], registry=registry
    )
    latency = Histogram("yunhui_http_request_seconds", "HTTP request latency", registry=registry)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response: web.StreamResponse = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            requests.labels(request.method, str(status)).inc()
            latency.observe(time.perf_counter() - started)

    return middleware


async def create_app(settings: Settings, *, secret_key: str, clock: Clock = utc_now) -> web.Application:
    """Build the whole application; live objects start and stop through ``cleanup_ctx``, in order."""
    registry = CollectorRegistry()
    Gauge("yunhui_info", "Yunhui build information", ["version"], registry=registry).labels(
        version("yunhui")
    ).set(1)
    app = web.Application(middlewares=[_metrics_middleware(registry)], client_max_size=8 * 1024 * 1024)
    app[CLOCK] = clock
    app[METRICS] = registry
    app.on_response_prepare.append(add_security_headers)
    # The one client-address function (trusted proxies' X-Forwarded-For); sub-applications reach it too.
    app[CLIENT_ADDRESS] = proxies.resolver(proxies.parse_networks(settings.server.trusted_proxies))
    app[VERSION] = version("yunhui")

    # The engine is created now (no connection is made until first use) so that sub-applications can be
    # given the Database before the app freezes; it is closed last, by the first cleanup context.
    database = await Database.connect(settings.database_url)
    app[DATABASE] = database

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        await database.close()

    sfu = Sfu(settings.sfu)
    registry.register(SfuCollector(sfu))
    registry.register(SignalingCollector())
    sio = socketio_server()
    sio.attach(app)
    signaling_settings = settings.signaling
    if signaling_settings.files_dir is None:
        signaling_settings = signaling_settings.model_copy(
            update={"files_dir": settings.paths.var_dir / "files"}
        )
    store = FencedMeetingStore(database, settings.rooms)  # fenced by lease epochs in a cluster only
    meetings = MeetingServer(
        sio,
        sfu=sfu,
        store=store,
        settings=signaling_settings,
        secret_key=secret_key,
        clock=clock,
        client_address=app[CLIENT_ADDRESS],
    )

    app[ui.PASSCODE_PROBE] = PasscodeProbe(RoomsMeetingStore(database, settings.rooms), meetings.attempts)

    interval = settings.jobs.heartbeat_interval_seconds
    worker_id: int | None = None

    async def heartbeat_run() -> None:
        if worker_id is not None:
            live = [c.meeting_id for c in meetings.conferences() if c.meeting_id is not None]
            await beat(database, worker_id, now=clock(), meeting_ids=live)

    heartbeat = PeriodicJob("heartbeat", heartbeat_run, interval)
    app[HEARTBEAT_JOB] = heartbeat

    async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
        # Before meetings start and before the listener opens: close what a crashed run left open.
        nonlocal worker_id
        recovery = await start_worker(
            database,
            name=cluster.slot_name(settings.workers),
            now=clock(),
            stale_after=stale_after(dt.timedelta(seconds=interval)),
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        worker_id = recovery.worker_id
        app[RECOVERY] = recovery
        if recovery.closed:
            log.warning(
                "crash recovery: closed %d meeting(s) a previous run left open (%s); %d outage(s) recorded",
                len(recovery.closed), ", ".join(str(c.meeting_id) for c in recovery.closed),
                len(recovery.outages),
            )  # fmt: skip
        heartbeat.start()
        yield
        await heartbeat.close()
        await stop_worker(database, recovery.worker_id, now=clock())

    async def sfu_ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        await sfu.close()

    async def conferences_ctx(app: web.Application) -> AsyncIterator[None]:
        meetings.start()
        yield
        await meetings.close()

    async def socketio_ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        await sio.shutdown()

    async def end_meetings(app: web.Application) -> None:
        # aiohttp waits for open connections (Socket.IO websockets) before it runs the cleanup contexts, so
        # meetings end here first: participants are told why, then every socket is closed from our side.
        await meetings.close()
        if sio.eio.sockets:  # engineio's disconnect-all fails on an empty set (asyncio.wait([]))
            await sio.eio.disconnect()

    app.on_shutdown.append(end_meetings)

    def authorize_whip(request: web.Request) -> str:
        """A WHIP/WHEP DELETE carries the session's join token as bearer token: the room's live meeting."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise web.HTTPUnauthorized(text="Authorization: Bearer <join token> required")
        try:
            claims = verify_join_token(secret_key, header.removeprefix("Bearer "), now=clock())
        except RoomsError as exc:
            raise web.HTTPUnauthorized(text=exc.message) from None
        for conference in meetings.conferences():
            if conference.room.room_id == claims.room_id and conference.meeting_id is not None:
                return str(conference.meeting_id)
        raise web.HTTPConflict(text="the meeting has not started")

    def identify_media_token(request: web.Request) -> str:
        """A WHIP/WHEP POST's join token, checked before its body is read; its id keys the viewer limit."""
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not token:
            raise web.HTTPUnauthorized(text="bad_auth: Authorization: Bearer <join token> required")
        try:
            claims = verify_join_token(secret_key, token, now=clock())
        except RoomsError as exc:
            raise web.HTTPUnauthorized(text=f"bad_token: the join token is not valid ({exc.code})") from None
        return claims.token_id or token

    async def billing_run() -> None:
        started = clock()
        outcome: dict[str, object] = {"ok": False}
        try:
            report = await run_billing(database, now=started)
            outcome = {"ok": True, "issued": len(report.issued), "suspended": len(report.suspended)}
        finally:  # one audit entry per run, with its start and end (issue #20: runs never overlap)
            await record_job_run(
                database, "billing", actor=BILLING_RUN, started=started, ended=clock(),
                worker=cluster.slot_name(settings.workers), outcome=outcome,
            )  # fmt: skip
        if report.issued or report.notices or report.suspended or report.purged:
            log.info(
                "billing run: %d issued, %d notices, %d suspended, %d purged",
                len(report.issued), len(report.notices), len(report.suspended), report.purged,
            )  # fmt: skip

    billing = PeriodicJob("billing", billing_run, settings.jobs.billing_interval_seconds)
    app[BILLING_JOB] = billing

    async def jobs_ctx(app: web.Application) -> AsyncIterator[None]:
        billing.start()
        yield
        await billing.close()

    app.cleanup_ctx.extend([database_ctx, worker_ctx, sfu_ctx, conferences_ctx, socketio_ctx, jobs_ctx])
    monitor.install(
        app, settings.monitor, database, sfu, clock, http_url=monitor.listener_url(settings.server)
    )
    app.add_routes(health.routes)
    app.add_routes(pages.routes)
    app.add_routes(ui.routes)
    ui.add_static(app)
    recordings = install_recordings(
        app, settings.recording, var_dir=settings.paths.var_dir, database=database, sfu=sfu,
        meetings=meetings, clock=clock, public_url=settings.server.public_url, secret_key=secret_key,
    )  # fmt: skip
    api = create_api(
        database, secret_key=secret_key, clock=clock, settings=settings.rooms,
        recordings=recordings,
    )  # fmt: skip
    webhooks.install(app, api, settings.webhooks, database, clock)
    install_live(app, api, settings.live, var_dir=settings.paths.var_dir, database=database, sfu=sfu,
                 meetings=meetings, clock=clock)  # fmt: skip
    backup_jobs.install(app, settings, clock)
    install_notifications(
        app, api, settings=settings, database=database, clock=clock, meetings=meetings, secret_key=secret_key
    )
    install_sms(app, api, settings=settings, database=database, clock=clock)
    install_live_videos(
        app, api, settings.live, var_dir=settings.paths.var_dir, database=database, clock=clock,
        owner=cluster.slot_name(settings.workers),
    )  # fmt: skip
    install_sip(
        app, api, settings.sip, database=database, sfu=sfu, meetings=meetings, clock=clock,
        state_dir=settings.paths.var_dir / "sip",
    )  # fmt: skip
    app.add_subapp("/api/v1", api)
    internal.install(app, api, settings.workers, meetings=meetings, database=database, secret_key=secret_key)
    app.add_subapp("/files", files_app(meetings))
    app.add_subapp(
        "/rtc",
        whip_app(
            sfu,
            authorize_whip,
            admit=MediaGate(meetings).admit,
            end=meetings.end_media_session,
            identify=identify_media_token,
            whep_sessions_per_token=signaling_settings.whep_sessions_per_token,
            redirect=whip_redirect.redirector(app, secret_key, clock),
        ),
    )
    cluster.install(
        app, settings, database, meetings=meetings, api=api, clock=clock, once_jobs=[billing], store=store
    )
    return app
