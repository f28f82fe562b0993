from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, select, text

from rooms.database import Database
from rooms.errors import Conflict, InvalidInput
from rooms.models import Account, Base, User
from rooms.schema import load_models
from rooms.users import authenticate, create_user, has_platform_admin

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


async def test_upgrade_brings_schema_to_head_and_is_idempotent(db: Database) -> None:
    assert await db.is_current()
    await db.upgrade()
    assert await db.is_current()
    await db.ping()


async def test_fresh_database_is_not_current(tmp_path: Path) -> None:
    db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'new' / 'x.db'}")
    try:
        assert not await db.is_current()
    finally:
        await db.close()
        await db.close()  # idempotent


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    try:
        async with db.session() as session:
            assert await session.scalar(text("PRAGMA foreign_keys")) == 1
            assert await session.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await session.scalar(text("PRAGMA busy_timeout")) == 30000
    finally:
        await db.close()


async def test_datetimes_come_back_aware_utc(db: Database) -> None:
    async with db.session() as session:
        session.add(Account(name="Acme", created_at=NOW))
        await session.commit()
    async with db.session() as session:
        account = await session.scalar(select(Account))
    assert account is not None
    assert account.created_at == NOW
    assert account.created_at.tzinfo is not None


async def test_create_user_and_authenticate(db: Database) -> None:
    assert not await has_platform_admin(db)
    admin = await create_user(
        db, email="Root@Example.com", password="correct horse", role="admin", account_id=None, now=NOW
    )
    assert admin.is_platform_admin
    assert admin.password_hash.startswith("$argon2")
    assert await has_platform_admin(db)
    assert (await authenticate(db, email="root@example.com", password="correct horse")) is not None
    assert (await authenticate(db, email="root@example.com", password="wrong horse")) is None
    assert (await authenticate(db, email="nobody@example.com", password="correct horse")) is None
    with pytest.raises(Conflict):
        await create_user(
            db, email="root@example.com", password="another one", role="admin", account_id=None, now=NOW
        )


async def test_create_user_rejects_bad_input(db: Database) -> None:
    with pytest.raises(InvalidInput) as info:
        await create_user(db, email="a@b.c", password="long enough", role="owner", account_id=None, now=NOW)
    assert info.value.field == "role"
    with pytest.raises(InvalidInput) as info:
        await create_user(db, email="a@b.c", password="short", role="admin", account_id=None, now=NOW)
    assert info.value.field == "password"
    with pytest.raises(InvalidInput) as info:
        await create_user(
            db, email="a@b.c", password="long enough", role="organizer", account_id=None, now=NOW
        )
    assert info.value.field == "account_id"
    async with db.session() as session:
        assert (await session.scalars(select(User))).all() == []


async def test_sqlite_writer_takes_the_write_lock(tmp_path: Path) -> None:
    db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    try:
        await db.upgrade()
        async with db.writer() as session:
            # Under BEGIN IMMEDIATE a second connection cannot start writing.
            async with db.engine.connect() as other:
                await other.exec_driver_sql("PRAGMA busy_timeout=0")
                with pytest.raises(Exception, match="locked"):
                    await other.exec_driver_sql("BEGIN IMMEDIATE")
            session.add(Account(name="x", created_at=NOW))
            await session.commit()
    finally:
        await db.close()


async def test_migrations_match_the_models(db: Database) -> None:
    load_models()

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
