"""SMS through the dispatcher: exactly once across crashes (N2 for SMS, N5) — a dispatcher that dies after the
SMSC took a message but before it wrote so leaves the row `unknown` after its lease, never resent; a receipt
that arrives on a new session after a restart still finds its part — and throttling within the TPS (N6).
Real SMSC on 127.0.0.1, injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import smpp34
from sqlalchemy import select

from notify.channel import Inbound, Receipt
from notify.smpp import SmppSender
from rooms.database import Database
from rooms.outbox import store as outbox
from rooms.outbox.models import Notification, NotificationPart
from rooms.sms import store
from tests.notify.smpp_smsc import TestSmsc, within_tps
from tests.notify.test_smpp_sender import settings_for
from yunhui.dispatcher import Dispatcher, message_of

NOW = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'sms.db'}")
    await database.upgrade()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def smsc() -> AsyncIterator[TestSmsc]:
    server = TestSmsc()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _account(db: Database) -> int:
    from rooms.models import Account

    async with db.session() as session:
        account = Account(name="Acme", created_at=NOW)
        session.add(account)
        await session.commit()
        return account.id


async def _row(db: Database, row_id: int) -> Notification:
    async with db.session() as session:
        row = await session.get(Notification, row_id)
        assert row is not None
        return row


async def _ignore(event: Receipt | Inbound) -> None:
    return None


async def test_a_crash_after_the_smsc_took_it_leaves_unknown_and_sends_nothing_again(
    db: Database, smsc: TestSmsc
) -> None:
    account = await _account(db)
    row_id, _ = await store.send_now(
        db, account_id=account, recipient="+8613800138000", text="会" * 90, locale="zh-CN", now=NOW
    )
    # The first process claims the row, the SMSC takes both parts, and the process dies before it writes.
    [claimed] = await outbox.claim(db, now=NOW, channels=["sms"], resend_ambiguous={"sms": False})
    first = SmppSender(settings_for(smsc.port))
    await first.start(_ignore)
    assert (await first.submit(message_of(claimed))).parts == 2
    await first.close()
    assert (await _row(db, row_id)).status == "sending"

    # The next process, after the lease: the row is unknown for reconciliation, and nothing is resent.
    clock = Clock(NOW + timedelta(minutes=3))
    dispatcher = Dispatcher(db, clock=clock)
    second = SmppSender(settings_for(smsc.port))
    dispatcher.register(second)
    try:
        await dispatcher.run_once()
        await dispatcher.run_once()
    finally:
        await dispatcher.close()
    row = await _row(db, row_id)
    assert row.status == "unknown" and "not resent" in (row.last_error or "")
    assert len(smsc.submits) == 2


async def test_a_receipt_after_a_restart_still_matches(db: Database, smsc: TestSmsc) -> None:
    account = await _account(db)
    row_id, _ = await store.send_now(
        db, account_id=account, recipient="+8613800138000", text="hello", locale="en", now=NOW
    )
    clock = Clock()
    before = Dispatcher(db, clock=clock)
    before.register(SmppSender(settings_for(smsc.port)))
    assert await before.run_once() == 1
    await before.close()
    row = await _row(db, row_id)
    assert (row.status, row.parts, row.sent_at) == ("sent", 1, NOW)
    [message_id] = [s.message_id for s in smsc.accepted]

    clock.now = NOW + timedelta(hours=3)  # receipts can come hours later
    after = Dispatcher(db, clock=clock)
    after.register(SmppSender(settings_for(smsc.port)))
    try:
        await after.run_once()  # starts the channel: a new bind
        await smsc.wait_for(lambda: len(smsc.sessions) == 1 and smsc.binds == 2)
        session = next(iter(smsc.sessions))
        await smsc.receipt(session, message_id or "", "8613800138000", "DELIVRD")
    finally:
        await after.close()
    assert (await _row(db, row_id)).status == "delivered"
    async with db.session() as session_db:
        [part] = (await session_db.scalars(select(NotificationPart))).all()
    assert (part.provider_message_id, part.status) == (message_id, "delivered")


async def test_the_dispatcher_backs_off_under_throttling_within_the_tps(db: Database) -> None:
    """N6 through the dispatcher: the SMSC refuses with ESME_RTHROTTLED for a second; all 50 messages are
    sent in the end, and no second at the SMSC sees more submits than the configured TPS."""
    tps = 20
    began: list[float] = []

    def throttle_for_a_second(event: smpp34.SubmitSmEvent, index: int) -> int | None:
        now = asyncio.get_running_loop().time()
        if not began:
            began.append(now)
        return smpp34.ESME_RTHROTTLED if now - began[0] < 1.0 else None

    smsc = TestSmsc(policy=throttle_for_a_second)
    await smsc.start()
    account = await _account(db)
    for n in range(50):
        await store.send_now(
            db, account_id=account, recipient=f"+86138000{n:05d}", text=f"message {n}", locale="en", now=NOW
        )
    dispatcher = Dispatcher(db, clock=Clock())
    dispatcher.register(SmppSender(settings_for(smsc.port, tps=float(tps))))
    try:
        assert await dispatcher.run_once() == 50
    finally:
        await dispatcher.close()
        await smsc.stop()
    async with db.session() as session:
        statuses = (await session.scalars(select(Notification.status))).all()
    assert set(statuses) == {"sent"} and len(statuses) == 50
    assert len(smsc.accepted) == 50
    throttled = [s for s in smsc.submits if s.status == smpp34.ESME_RTHROTTLED]
    assert 0 < len(throttled) < tps / 2
    assert within_tps([s.at for s in smsc.submits], tps)


async def test_a_partly_taken_message_is_unknown_and_its_taken_parts_are_billed(db: Database) -> None:
    smsc = TestSmsc(policy=lambda event, index: smpp34.ESME_RINVMSGLEN if index == 1 else None)
    await smsc.start()
    account = await _account(db)
    row_id, _ = await store.send_now(
        db, account_id=account, recipient="+8613800138000", text="会" * 200, locale="zh-CN", now=NOW
    )
    dispatcher = Dispatcher(db, clock=Clock())
    dispatcher.register(SmppSender(settings_for(smsc.port)))
    try:
        await dispatcher.run_once()
    finally:
        await dispatcher.close()
        await smsc.stop()
    row = await _row(db, row_id)
    taken = [s.message_id for s in smsc.accepted]
    assert len(smsc.submits) == 3 and len(taken) == 2  # 200 characters: three parts, the second refused
    assert (row.status, row.parts, row.sent_at) == ("unknown", 2, NOW)
    assert all(t and t in (row.last_error or "") for t in taken)
    async with db.session() as session:
        assert await store.billable_parts(session, account, NOW, NOW + timedelta(days=1)) == 2
