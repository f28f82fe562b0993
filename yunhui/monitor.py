"""The health monitor: synthetic checks every interval, outages recorded by themselves (issue #21).

Checks (HTTP, database, the SFU's media round trip, SIP OPTIONS once the gateway exists) run concurrently,
each bounded by its timeout. Per scope, rooms.incidents.outages decides when failures open an outage and
when successes close it, dated by the injected clock; rooms.incidents.outage_store writes it. A write that
cannot happen (the database is what failed) is kept and written as soon as the database answers again, so
an outage of the database is recorded once it is over.

One monitor per cluster is enough; a second one (another worker) is harmless: an open outage is one row per
scope, and an outage written late joins the one it overlaps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from aiohttp import web

from rooms.database import Database
from rooms.incidents import outage_store
from rooms.incidents.outages import (
    CHECK_SCOPES,
    Change,
    OutageRules,
    Scope,
    Track,
    join_causes,
    observe,
    resumed,
)
from sfu.sfu import Sfu
from web.keys import METRICS
from yunhui.media_probe import MediaProbe
from yunhui.monitor_metrics import MonitorCollector
from yunhui.settings import MonitorSettings, ServerSettings

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]
Clock = Callable[[], datetime]


class CheckFailed(Exception):
    """A check's dependency answered, but wrongly (a 503, an empty schema)."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    at: datetime
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class _Write:
    scope: Scope
    start: datetime
    end: datetime
    cause: str
    still_open: bool
    at: datetime


class Monitor:
    """Owns its loop task; :meth:`check_once` is one round, driven by the loop or by a test."""

    def __init__(
        self,
        database: Database,
        checks: Mapping[str, Check],
        *,
        clock: Clock,
        settings: MonitorSettings,
        worker: str = "main",
        timeouts: Mapping[str, float] | None = None,
    ) -> None:
        unknown = set(checks) - set(CHECK_SCOPES)
        if unknown:
            raise ValueError(f"unknown checks: {sorted(unknown)}")
        self._db = database
        self._checks = dict(checks)
        self._clock = clock
        self.settings = settings
        self._worker = worker
        self._timeouts = dict(timeouts or {})
        self.rules = OutageRules(
            failures_to_open=settings.failures_to_open,
            successes_to_close=settings.successes_to_close,
            stale_after=timedelta(
                seconds=settings.interval_seconds * 3 + max(self._timeouts.values(), default=0)
            ),
        )
        self.tracks: dict[Scope, Track] = {scope: Track(scope) for scope in set(CHECK_SCOPES.values())}
        self.results: dict[str, CheckResult] = {}
        self.last_success: dict[str, datetime] = {}
        self.rounds = 0
        self._pending: list[_Write] = []
        self._task: asyncio.Task[None] | None = None
        self._round = asyncio.Lock()
        self._round_done = asyncio.Condition()
        self._loaded = False
        # Rounds run only while this answers True: in the cluster's leader (yunhui.leader), so that one
        # outage is not recorded once per worker.
        self.gate: Callable[[], bool] | None = None

    @property
    def checks(self) -> tuple[str, ...]:
        return tuple(sorted(self._checks))

    def add_check(self, name: str, check: Check, timeout: float) -> None:
        """Add a check later (the HTTP check once the listener's address is known; SIP OPTIONS later)."""
        if name not in CHECK_SCOPES:
            raise ValueError(f"unknown check {name!r}")
        self._checks[name] = check
        self._timeouts[name] = timeout

    @property
    def pending_writes(self) -> int:
        return len(self._pending)

    async def _load(self) -> None:
        """Continue the outages a previous run (or another monitor) left open."""
        for row in await outage_store.open_outages(self._db):
            self.tracks[row.scope] = resumed(
                row.scope, start=row.start, observed_at=row.observed_at, cause=row.cause
            )
        self._loaded = True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="job:monitor")

    async def _loop(self) -> None:
        interval = self.settings.interval_seconds
        # The first round waits one interval: the listener is up and the schema migrated by then.
        await asyncio.sleep(interval)
        while True:
            started = time.monotonic()
            try:
                if self.gate is None or self.gate():
                    await self.check_once()
            except Exception:
                log.exception("monitor round failed")
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, name: str, check: Check) -> CheckResult:
        started = time.monotonic()
        at = self._clock()
        timeout = self._timeouts.get(name, 5.0)
        try:
            await asyncio.wait_for(check(), timeout)
        except TimeoutError:
            return CheckResult(name, False, at, time.monotonic() - started, f"no answer within {timeout:g} s")
        except Exception as exc:
            return CheckResult(name, False, at, time.monotonic() - started, _first_line(exc))
        return CheckResult(name, True, at, time.monotonic() - started)

    async def check_once(self) -> list[CheckResult]:
        """Run every check once, update each scope's outage and write what changed."""
        async with self._round:
            if not self._loaded:
                with contextlib.suppress(Exception):
                    await self._load()
            names = sorted(self._checks)
            results = list(await asyncio.gather(*(self._run(n, self._checks[n]) for n in names)))
            now = self._clock()
            for result in results:
                self.results[result.name] = result
                if result.ok:
                    self.last_success[result.name] = now
                else:
                    log.warning("monitor: %s check failed: %s", result.name, result.detail)
            for scope, track in list(self.tracks.items()):
                mine = [r for r in results if CHECK_SCOPES[r.name] is scope]
                if not mine:
                    continue
                failing = join_causes(*(r.name for r in mine if not r.ok))
                seen = observe(track, ok=not failing, cause=failing, now=now, rules=self.rules)
                self.tracks[scope] = seen.track
                if seen.change in {Change.OPENED, Change.EXTENDED, Change.CLOSED}:
                    assert seen.start is not None and seen.end is not None
                    if seen.change is Change.OPENED:
                        log.warning("monitor: outage of %s opened (since %s): %s", scope, seen.start, failing)
                    elif seen.change is Change.CLOSED:
                        log.warning("monitor: outage of %s closed, %s to %s", scope, seen.start, seen.end)
                    self._queue(
                        _Write(
                            scope,
                            seen.start,
                            seen.end,
                            seen.track.cause or track.cause,
                            seen.change is not Change.CLOSED,
                            now,
                        )
                    )
            await self._flush()
        async with self._round_done:
            self.rounds += 1
            self._round_done.notify_all()
        return results

    async def wait_rounds(self, count: int) -> None:
        """Return once `count` rounds have finished since the start."""
        async with self._round_done:
            await self._round_done.wait_for(lambda: self.rounds >= count)

    def _queue(self, write: _Write) -> None:
        last = self._pending[-1] if self._pending else None
        if last is not None and last.scope == write.scope and last.start == write.start and last.still_open:
            # A later write of the same open outage supersedes the one that could not be made.
            self._pending[-1] = write
        else:
            self._pending.append(write)

    async def _flush(self) -> None:
        while self._pending:
            write = self._pending[0]
            try:
                await outage_store.record(
                    self._db,
                    scope=write.scope,
                    start=write.start,
                    end=write.end,
                    cause=write.cause,
                    still_open=write.still_open,
                    worker=self._worker,
                    now=write.at,
                )
            except Exception as exc:
                log.warning(
                    "monitor: cannot record the %s outage yet (%s); kept for the next round", write.scope, exc
                )
                return
            self._pending.pop(0)

    def open_outage(self, scope: Scope) -> datetime | None:
        track = self.tracks[scope]
        return track.start if track.open else None


MONITOR = web.AppKey("monitor", Monitor)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def database_check(database: Database) -> Check:
    async def check() -> None:
        await outage_store.probe(database)

    return check


def http_check(url: str) -> Check:
    """GET <url>/healthz on the app's own listener: the event loop answers and the listener accepts."""

    async def check() -> None:
        async with aiohttp.ClientSession() as session, session.get(f"{url.rstrip('/')}/healthz") as response:
            if response.status != 200:
                raise CheckFailed(f"/healthz answered {response.status}")

    return check


def install(
    app: web.Application,
    settings: MonitorSettings,
    database: Database,
    sfu: Sfu,
    clock: Clock,
    *,
    http_url: str | None,
) -> Monitor | None:
    """Add the monitor (its checks, its /metrics collector, a cleanup context); None when disabled."""
    if not settings.enabled:
        return None
    checks: dict[str, Check] = {"database": database_check(database)}
    timeouts = {"database": settings.database_timeout_seconds}
    if settings.media:
        checks["media"] = MediaProbe(sfu)
        timeouts["media"] = settings.media_timeout_seconds
    monitor = Monitor(database, checks, clock=clock, settings=settings, timeouts=timeouts)
    url = settings.http_url or http_url
    if url is not None:
        monitor.add_check("http", http_check(url), settings.http_timeout_seconds)
    app[MONITOR] = monitor
    app[METRICS].register(MonitorCollector(monitor))

    async def monitor_ctx(app: web.Application) -> AsyncIterator[None]:
        monitor.start()
        yield
        await monitor.close()

    app.cleanup_ctx.append(monitor_ctx)
    return monitor


def listener_url(server: ServerSettings) -> str | None:
    """The app's own HTTP address when the settings fix it (port 0 is known only once listening)."""
    if not server.port:
        return None
    # A listener on every address answers on loopback.
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(server.host, server.host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{server.port}"


def serving_at(app: web.Application, url: str) -> None:
    """Tell the monitor where the app listens (known only once the site is up): the HTTP check starts."""
    monitor = app.get(MONITOR)
    if monitor is not None and "http" not in monitor.checks:
        monitor.add_check("http", http_check(url), monitor.settings.http_timeout_seconds)
