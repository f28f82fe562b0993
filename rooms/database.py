"""The database handle: engine, sessions, migrations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def alembic_config(url: str | None = None) -> Config:
    """An alembic.ini-free configuration pointing at the package's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


class Database:
    """One per process. Sessions never expire objects on commit, so loaded rows stay readable."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._closed = False
        self.is_sqlite = engine.dialect.name == "sqlite"
        # SQLite has one writer; serialising writers in-process avoids busy-waiting on the file lock.
        self._write_lock = asyncio.Lock()

    @classmethod
    async def connect(cls, url: str) -> Database:
        parsed = make_url(url)
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine)
        db = cls(engine)
        await db.ping()
        return db

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def session(self) -> AsyncSession:
        return self._sessions()

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction takes the write lock up front (SQLite: BEGIN IMMEDIATE).

        Use it for check-then-write transactions; on PostgreSQL callers also lock the rows they check
        (SELECT ... FOR UPDATE).
        """
        if not self.is_sqlite:
            async with self._sessions() as session:
                yield session
            return
        async with self._write_lock, self._sessions() as session:
            await session.connection(execution_options={"sqlite_immediate": True})
            yield session

    async def upgrade(self) -> None:
        config = alembic_config()

        def run(connection: Connection) -> None:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

        async with self._engine.begin() as conn:
            await conn.run_sync(run)
        logger.info("database schema at head")

    async def is_current(self) -> bool:
        heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())

        def current(connection: Connection) -> set[str]:
            return set(MigrationContext.configure(connection).get_current_heads())

        async with self._engine.connect() as conn:
            return await conn.run_sync(current) == heads

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot do BEGIN IMMEDIATE; take it over
    # (the recipe from SQLAlchemy's SQLite dialect documentation).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
