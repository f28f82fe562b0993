"""The backup schedule with its retention, and the backup a migration takes first.

The scheduled job is safe to run in several workers at once: a lock file in the backup directory lets one of
them make a due backup, and the check is repeated under the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from rooms.database import Database
from yunhui.backup import SCHEDULED_PREFIX, SUFFIX, UPGRADE_PREFIX, Target, create_backup
from yunhui.jobs import PeriodicJob
from yunhui.settings import Settings

log = logging.getLogger(__name__)

BACKUP_JOB = web.AppKey("backup_job", PeriodicJob)


def archives(directory: Path, prefix: str = SCHEDULED_PREFIX) -> list[Path]:
    """The complete archives of one kind in ``directory``, oldest first (names sort by time)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.startswith(prefix) and p.name.endswith(SUFFIX))


def prune(directory: Path, keep: int, prefix: str = SCHEDULED_PREFIX) -> list[Path]:
    """Delete all but the ``keep`` newest archives of a kind; returns what was deleted."""
    found = archives(directory, prefix)
    doomed = found[: max(0, len(found) - keep)]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def due(newest: dt.datetime | None, *, started: dt.datetime, now: dt.datetime, interval: dt.timedelta,
        first_after: dt.timedelta) -> bool:  # fmt: skip
    """Whether the scheduled backup is due: ``interval`` after the newest one, or soon after a first start."""
    if newest is None:
        return now >= started + first_after
    return now >= newest + interval


def newest_time(directory: Path) -> dt.datetime | None:
    found = archives(directory)
    if not found:
        return None
    stamp = found[-1].name.removeprefix(SCHEDULED_PREFIX).removesuffix(SUFFIX)
    try:
        return dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[bool]:
    """A lock file in the backup directory: of two workers that find a backup due, one makes it."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def backup_directory(settings: Settings) -> Path:
    return settings.backup.directory or settings.paths.var_dir / "backups"


def scheduled_backup(settings: Settings, *, started: dt.datetime, now: dt.datetime) -> Path | None:
    """One tick of the schedule (blocking): a backup if one is due, then retention. Safe to run twice."""
    directory = backup_directory(settings)
    interval = dt.timedelta(hours=settings.backup.interval_hours)
    first_after = dt.timedelta(seconds=settings.backup.first_after_seconds)
    if not due(newest_time(directory), started=started, now=now, interval=interval, first_after=first_after):
        return None
    with _exclusive(directory) as mine:
        # Checked again under the lock: another worker may just have made it.
        if not mine or not due(
            newest_time(directory), started=started, now=now, interval=interval, first_after=first_after
        ):
            return None
        path = create_backup(Target.of(settings), directory, now=now)
        for old in prune(directory, settings.backup.keep):
            log.info("backup retention: deleted %s", old.name)
        return path


async def upgrade_with_backup(database: Database, settings: Settings, *, now: dt.datetime) -> Path | None:
    """Migrate to head; an existing database with pending revisions is backed up first (returns that path)."""
    path: Path | None = None
    pending = not await database.is_current() and await _has_revision(database)
    if pending and settings.backup.before_upgrade:
        path = await asyncio.to_thread(
            create_backup, Target.of(settings), backup_directory(settings), now=now, prefix=UPGRADE_PREFIX
        )
        log.warning("pending migrations: backed up to %s before upgrading", path)
    await database.upgrade()
    return path


async def _has_revision(database: Database) -> bool:
    def current(connection: Connection) -> Any:
        return MigrationContext.configure(connection).get_current_heads()

    async with database.engine.connect() as conn:
        return bool(await conn.run_sync(current))


def install(app: web.Application, settings: Settings, clock: Callable[[], dt.datetime]) -> None:
    """The scheduled backup as a job of the app (``backup.enabled``)."""
    if not settings.backup.enabled:
        return
    started = clock()

    async def tick() -> None:
        await asyncio.to_thread(scheduled_backup, settings, started=started, now=clock())

    job = PeriodicJob("backup", tick, settings.backup.check_interval_seconds)
    app[BACKUP_JOB] = job

    async def backup_ctx(app: web.Application) -> AsyncIterator[None]:
        job.start()
        yield
        await job.close()

    app.cleanup_ctx.append(backup_ctx)
