"""Fixtures of the billing store tests: a migrated Database (SQLite, and PostgreSQL when marked) with one
account of two sites, one endpoint each — the seed contract's county venues."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rooms.database import Database
from rooms.models import Account, Endpoint, Site
from tests.rooms.conftest import _create_pg_database, _drop_pg_database, postgres_server

__all__ = ["postgres_server"]

CREATED = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Seed:
    account_id: int
    site_ids: tuple[int, int]
    other_account_id: int


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'billing.db'}")
        try:
            await database.upgrade()
            yield database
        finally:
            await database.close()
        return
    base_url: str = request.getfixturevalue("postgres_server")
    url, name = await _create_pg_database(base_url)
    database = await Database.connect(url)
    try:
        await database.upgrade()
        yield database
    finally:
        await database.close()
        await _drop_pg_database(base_url, name)


async def add_seed(db: Database) -> Seed:
    async with db.session() as session:
        account = Account(name="County Education Bureau", created_at=CREATED)
        other = Account(name="Someone else", created_at=CREATED)
        session.add_all([account, other])
        await session.flush()
        sites = [
            Site(account_id=account.id, name=name, suspended_at=None, created_at=CREATED)
            for name in ("县一中会场", "County B venue")
        ]
        session.add_all(sites)
        await session.flush()
        for i, site in enumerate(sites):
            session.add(
                Endpoint(
                    account_id=account.id,
                    site_id=site.id,
                    sip_username=f"room{account.id}-{i}",
                    sip_secret="secret",
                    display_name=f"Terminal {i}",
                    enabled=True,
                    created_at=CREATED,
                )
            )
        await session.commit()
        return Seed(account.id, (sites[0].id, sites[1].id), other.id)


@pytest.fixture
async def seed(db: Database) -> Seed:
    return await add_seed(db)
