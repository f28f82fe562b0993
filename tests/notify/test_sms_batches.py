"""Batches in the store: 10,000 numbers in one transaction, spaced at the channel's rate; more are refused;
numbers that opted out are skipped and counted; a batch of only opted-out numbers writes nothing; the daily
cap per number. On SQLite and PostgreSQL (the `db` fixture of tests/notify/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from rooms.database import Database
from rooms.errors import InvalidInput, NotFound
from rooms.models import Account
from rooms.outbox.models import Notification
from rooms.sms import store
from rooms.sms.models import SmsBatch
from rooms.sms.store import MAX_BATCH, BatchRow

NOW = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)


async def _account(db: Database) -> int:
    async with db.session() as session:
        account = Account(name="Acme", created_at=NOW)
        session.add(account)
        await session.commit()
        return account.id


def rows(n: int) -> list[BatchRow]:
    return [BatchRow(f"+86138{i:08d}", f"第{i}条") for i in range(n)]


async def _count(db: Database, model: type[Notification] | type[SmsBatch]) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_full_batch_is_one_transaction_released_at_the_rate(db: Database) -> None:
    account = await _account(db)
    batch = await store.create_batch(
        db, account_id=account, name="all", locale="zh-CN", template_key=None, text="t",
        rows=rows(MAX_BATCH), skipped=3, now=NOW, spacing=0.1,
    )  # fmt: skip
    assert (batch.total, batch.skipped) == (MAX_BATCH, 3)
    async with db.session() as session:
        first, last = (
            await session.execute(
                select(func.min(Notification.not_before), func.max(Notification.not_before)).where(
                    Notification.batch_id == store.batch_key(batch.id)
                )
            )
        ).one()
        billable = await session.scalar(select(func.count()).where(Notification.billable.is_(True)))
    assert (first, last) == (NOW, NOW + timedelta(seconds=0.1 * (MAX_BATCH - 1)))
    assert billable == MAX_BATCH
    progress = await store.batch_progress(db, account_id=account, batch_id=batch.id)
    assert (progress.statuses, progress.done) == ({"queued": MAX_BATCH}, 0)
    for group_by, key in (("day", "2026-12-03"), ("batch", store.batch_key(batch.id)), ("status", "queued")):
        [row] = await store.stats(
            db, account_id=account, since=NOW - timedelta(days=1), until=NOW + timedelta(days=1),
            group_by=group_by,
        )  # fmt: skip
        assert (row.key, row.messages, row.accepted, row.parts) == (key, MAX_BATCH, 0, 0)
    assert await store.cancel_batch(db, account_id=account, batch_id=batch.id, now=NOW) == MAX_BATCH
    with pytest.raises(InvalidInput, match="at most 10000"):
        await store.create_batch(
            db, account_id=account, name="too many", locale="zh-CN", template_key=None, text="t",
            rows=rows(MAX_BATCH + 1), skipped=0, now=NOW, spacing=0.1,
        )  # fmt: skip


async def test_opted_out_numbers_are_skipped_and_counted(db: Database) -> None:
    account = await _account(db)
    await store.opt_out(db, number="+8613800000001", text="TD", now=NOW)
    batch = await store.create_batch(
        db, account_id=account, name="b", locale="en", template_key=None, text="t", rows=rows(3),
        skipped=0, now=NOW, spacing=0.5,
    )  # fmt: skip
    assert (batch.total, batch.skipped) == (2, 1)
    before = (await _count(db, Notification), await _count(db, SmsBatch))
    with pytest.raises(InvalidInput, match="opted out"):
        await store.create_batch(
            db, account_id=account, name="c", locale="en", template_key=None, text="t",
            rows=[BatchRow("+8613800000001", "x")], skipped=0, now=NOW, spacing=0.5,
        )  # fmt: skip
    assert (await _count(db, Notification), await _count(db, SmsBatch)) == before
    with pytest.raises(NotFound):  # another account's batch
        await store.batch_progress(db, account_id=account + 1, batch_id=batch.id)


async def test_a_number_gets_at_most_the_daily_cap_of_account_sms(db: Database) -> None:
    account = await _account(db)
    number = "+8613800000000"
    for n in range(2):
        await store.send_now(
            db, account_id=account, recipient=number, text=f"{n}", locale="en", now=NOW, daily_cap=2
        )
    with pytest.raises(store.DailyCapReached) as caught:
        await store.send_now(
            db, account_id=account, recipient=number, text="3", locale="en", now=NOW, daily_cap=2
        )
    assert caught.value.field == "to"
    # A retried request with its key is not a new message; a day later the number may get SMS again.
    first, created = await store.send_now(
        db, account_id=account, recipient=number, text="k", locale="en", now=NOW, idempotency_key="k"
    )
    again, created_again = await store.send_now(
        db,
        account_id=account,
        recipient=number,
        text="k",
        locale="en",
        now=NOW,
        idempotency_key="k",
        daily_cap=2,
    )
    assert (again, created, created_again) == (first, True, False)
    later = NOW + timedelta(hours=24, seconds=1)
    await store.send_now(
        db, account_id=account, recipient=number, text="4", locale="en", now=later, daily_cap=3
    )
    batch = await store.create_batch(
        db, account_id=account, name="b", locale="en", template_key=None, text="t", rows=rows(2),
        skipped=0, now=NOW, spacing=0.5, daily_cap=3,
    )  # fmt: skip
    assert (batch.total, batch.skipped) == (1, 1)  # +8613800000000 is at its cap
