"""Leader election: the jobs that must run once cluster-wide run only in the worker holding the lock.

The leader holds ``pg_try_advisory_lock`` on one dedicated PostgreSQL connection for as long as it leads.
A killed leader's connection closes with its process, so the server frees the lock at once and another
worker takes it at its next try (``workers.leader_check_seconds``). A session lock has no TTL to tune: a
starved event loop cannot make two leaders, as an expired Redis lock could. On SQLite there is one process,
and it always leads. The jobs stay idempotent regardless (billing, the outbox leases, purges by row state).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rooms.database import Database

log = logging.getLogger(__name__)

# pg_advisory_lock takes a bigint; this one is "yunhui.scheduler" folded to 63 bits (fixed forever: every
# version of every worker must use the same key).
LOCK_KEY = 0x79756E6875692E73
START_UP_KEY = LOCK_KEY + 1
Gate = Callable[[], bool]
APPLICATION_PREFIX = "yunhui-leader-"


def _name() -> str:
    return f"{APPLICATION_PREFIX}{os.getpid()}"


class Leadership:
    """Whether this process leads; ``close()`` gives the lock up (idempotent)."""

    def __init__(self, database: Database, *, check_seconds: float, key: int = LOCK_KEY) -> None:
        self._database = database
        self._check_seconds = check_seconds
        self._key = key
        self._conn: AsyncConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.elections = 0  # times this process became leader
        self.leading = database.is_sqlite

    def is_leader(self) -> bool:
        return self.leading

    def start(self) -> None:
        if self._task is None and not self._database.is_sqlite:
            self._task = asyncio.create_task(self._loop(), name="leader-election")

    async def wait_leading(self) -> None:
        """Return once this process leads (tests, the CLI)."""
        while not self.leading:
            self._changed.clear()
            await self._changed.wait()

    async def _loop(self) -> None:
        while True:
            try:
                await self._try_once()
            except Exception as exc:  # the database is away: not leading until the next try succeeds
                await self._lost(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self._check_seconds)

    async def _try_once(self) -> None:
        if self._conn is not None:
            # The lock lives as long as the connection: a dead connection is a lost leadership.
            await self._conn.execute(text("SELECT 1"))
            return
        conn = await self._database.engine.connect()
        try:
            # AUTOCOMMIT: held for hours, the connection must not sit "idle in transaction".
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            # Named after this process, so `yunhui workers` can tell which worker leads.
            await conn.execute(text("SELECT set_config('application_name', :name, false)"), {"name": _name()})
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key})
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return
        self._conn = conn
        self.leading = True
        self.elections += 1
        self._changed.set()
        log.info("this worker now leads: the cluster-wide jobs run here")

    async def _lost(self, why: str) -> None:
        conn, self._conn = self._conn, None
        if self.leading:
            log.warning("leadership lost (%s): the cluster-wide jobs stop here", why)
        self.leading = False
        self._changed.set()
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        conn, self._conn = self._conn, None
        if conn is not None:
            self.leading = False
            with contextlib.suppress(Exception):
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            with contextlib.suppress(Exception):
                await conn.close()


LEADERSHIP = web.AppKey("leadership", Leadership)


async def holder_pid(database: Database) -> int | None:
    """The pid of the worker process holding the scheduler lock, as it named its connection
    (application_name: PostgreSQL knows only its own backend's pid); None when no worker leads."""
    if database.is_sqlite:
        return None
    async with database.engine.connect() as conn:
        value = await conn.scalar(
            text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :high AND l.objid = :low"
                " AND l.objsubid = 1"
            ),
            {"high": LOCK_KEY >> 32, "low": LOCK_KEY & 0xFFFFFFFF},
        )
    try:
        return int(str(value).removeprefix(APPLICATION_PREFIX)) if value else None
    except ValueError:
        return None


@contextlib.asynccontextmanager
async def start_up_lock(database: Database) -> AsyncIterator[None]:
    """Serialise the start-up work of workers starting at once (migrations, the first admin): a blocking
    advisory lock on PostgreSQL, nothing on SQLite (one process)."""
    if database.is_sqlite:
        yield
        return
    async with database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": START_UP_KEY})
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": START_UP_KEY})


def leader_gate(app: web.Application) -> Gate:
    """The gate of a job that must run once cluster-wide: open while this process leads (always, alone)."""
    leadership = app.get(LEADERSHIP)
    if leadership is None:
        return lambda: True
    return leadership.is_leader


def install(app: web.Application, database: Database, *, check_seconds: float) -> Leadership:
    """Put the Leadership on ``app`` (before the jobs are installed: they read it) with its cleanup."""
    leadership = Leadership(database, check_seconds=check_seconds)
    app[LEADERSHIP] = leadership

    async def leader_ctx(app: web.Application) -> AsyncIterator[None]:
        leadership.start()
        yield
        await leadership.close()

    app.cleanup_ctx.append(leader_ctx)
    return leadership
