"""Fixtures of the SIP calls tests: a migrated SQLite Database with one account, site and endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rooms.database import Database
from rooms.models import Account, Endpoint, Room, Site

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Seed:
    account_id: int
    site_id: int
    endpoint_id: int
    room_id: int
    meeting_number: str
    sip_username: str
    sip_secret: str


@pytest.fixture
async def sip_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'sip.db'}")
    try:
        await database.upgrade()
        yield database
    finally:
        await database.close()


async def seed(db: Database, *, passcode: str | None = None, capacity: int = 10, lobby: bool = False) -> Seed:
    async with db.session() as session:
        account = Account(name="Acme", created_at=NOW)
        session.add(account)
        await session.flush()
        site = Site(account_id=account.id, name="Beijing HQ", created_at=NOW)
        session.add(site)
        await session.flush()
        endpoint = Endpoint(
            account_id=account.id,
            site_id=site.id,
            sip_username="poly-x30",
            sip_secret="s3cret-s3cret",
            display_name="Boardroom X30",
            created_at=NOW,
        )
        room = Room(
            account_id=account.id,
            name="All hands",
            meeting_number="123456789",
            passcode=passcode,
            capacity=capacity,
            lobby=lobby,
            created_at=NOW,
        )
        session.add_all([endpoint, room])
        await session.commit()
        return Seed(account.id, site.id, endpoint.id, room.id, "123456789", "poly-x30", "s3cret-s3cret")
