"""Recording storage in billing: GB-months of the month's stored recordings reach the next invoice's usage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from rooms.billing.models import Invoice, UsageRecord
from rooms.billing.run import run_billing
from rooms.billing.store import create_contract, get_invoice
from rooms.database import Database
from rooms.models import Meeting, Room
from rooms.recordings import store
from rooms.recordings.store import FileFact
from tests.billing.conftest import Seed, add_seed

TERMS: dict[str, Any] = {"currency": "CNY", "fee_per_endpoint_year": "12850", "start": "2026-03-16"}
MAY = datetime(2026, 4, 30, 16, tzinfo=UTC)  # 2026-05-01 00:00 in Asia/Shanghai, the contract's zone


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'billing.db'}")
    await database.upgrade()
    try:
        yield database
    finally:
        await database.close()


async def _recording(db: Database, seed: Seed, number: str, *, at: datetime, size: int) -> int:
    async with db.session() as session:
        room = Room(account_id=seed.account_id, name="r", meeting_number=number, capacity=5, created_at=at)
        session.add(room)
        await session.flush()
        meeting = Meeting(account_id=seed.account_id, room_id=room.id, started_at=at, ended_at=at)
        session.add(meeting)
        await session.commit()
    recording_id = await store.create(
        db, account_id=seed.account_id, meeting_id=meeting.id, room_id=room.id, directory=f"d{number}",
        started_by="Ann", now=at,
    )  # fmt: skip
    files = [FileFact("video", "1-camera.mkv", size - 1000), FileFact("timeline", "timeline.jsonl", 1000)]
    await store.finalised(
        db, recording_id, files, duration_ms=60_000, ended_at=at, retention_days=None, render=False, now=at
    )
    return recording_id


async def _may_usage(db: Database, seed: Seed) -> dict[str, Decimal]:
    async with db.session() as session:
        rows = (
            await session.scalars(
                select(UsageRecord).where(
                    UsageRecord.account_id == seed.account_id, UsageRecord.month == date(2026, 5, 1)
                )
            )
        ).all()
    return {r.kind: r.quantity for r in rows}


async def test_recording_storage_appears_as_gb_months_in_the_next_invoice(db: Database) -> None:
    seed = await add_seed(db)
    prices = [{"kind": "recording_gb_months", "unit_price": "2.00"}]
    await create_contract(
        db, account_id=seed.account_id, terms={**TERMS, "usage_prices": prices},
        sites=[{"site_id": s} for s in seed.site_ids], now=datetime(2026, 3, 16, 4, tzinfo=UTC),
    )  # fmt: skip
    await _recording(db, seed, "800000001", at=MAY - timedelta(days=3), size=5 * 10**9)  # kept all May
    deleted = await _recording(db, seed, "800000002", at=MAY, size=31 * 10**8)  # 3.1 GB, half of May
    await store.delete(db, deleted, now=MAY + timedelta(days=15, hours=12))

    await run_billing(db, now=datetime(2026, 6, 1, 4, tzinfo=UTC))

    # 5 GB for the whole month plus 3.1 GB for 15.5 of its 31 days.
    assert (await _may_usage(db, seed))["recording_gb_months"] == Decimal("6.5500")
    async with db.session() as session:
        may = await session.scalar(
            select(Invoice).where(
                Invoice.account_id == seed.account_id, Invoice.period_start == date(2026, 5, 1)
            )
        )
    assert may is not None
    lines = {(line.kind, line.label): line for line in (await get_invoice(db, may.id, account_id=None)).lines}
    storage = lines["usage", "recording_gb_months"]
    assert (storage.quantity, storage.amount) == (Decimal("6.5500"), Decimal("13.10"))


async def test_without_a_price_storage_is_metered_but_not_charged(db: Database) -> None:
    seed = await add_seed(db)
    await create_contract(
        db, account_id=seed.account_id, terms=TERMS, sites=[{"site_id": s} for s in seed.site_ids],
        now=datetime(2026, 3, 16, 4, tzinfo=UTC),
    )  # fmt: skip
    await _recording(db, seed, "800000003", at=MAY, size=10**9)
    await run_billing(db, now=datetime(2026, 6, 1, 4, tzinfo=UTC))
    assert (await _may_usage(db, seed))["recording_gb_months"] == Decimal("1.0000")
    async with db.session() as session:
        may = await session.scalar(
            select(Invoice).where(
                Invoice.account_id == seed.account_id, Invoice.period_start == date(2026, 5, 1)
            )
        )
    assert may is not None
    kinds = {(line.kind, line.label) for line in (await get_invoice(db, may.id, account_id=None)).lines}
    assert ("usage", "recording_gb_months") not in kinds
