"""Acceptance N10 (outbox part): a monthly CSV statement of every message comes before the purge; with `now`
six months and a day after a row ended, the purge removes it and leaves younger ones."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from rooms.database import Database
from rooms.models import Account
from rooms.outbox import store
from rooms.outbox.history import mask, purge_history, statements

JAN = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


async def _send(
    db: Database, key: str, *, channel: str, recipient: str, at: datetime, ids: list[str]
) -> None:
    async with db.writer() as session:
        account = await session.get(Account, 1)
        if account is None:
            session.add(Account(id=1, name="Acme", created_at=at))
            await session.flush()
        await store.enqueue(
            session,
            channel=channel,
            kind="custom",
            recipient=recipient,
            idempotency_key=key,
            now=at,
            account_id=1,
            billable=channel == "sms",
        )
        await session.commit()
    [claimed] = await store.claim(db, now=at, channels=[channel])
    assert await store.mark_sent(db, claimed, now=at, provider_ids=ids)


def test_masking_keeps_enough_to_reconcile() -> None:
    assert mask("+8613812345678", "sms") == "+86138****5678"
    assert mask("alice@example.com", "email") == "a***@example.com"


async def test_statement_first_then_purge_after_six_months(db: Database) -> None:
    await _send(db, "jan-sms", channel="sms", recipient="+8613812345678", at=JAN, ids=["m-1", "m-2"])
    await _send(db, "jan-mail", channel="email", recipient="alice@example.com", at=JAN, ids=["<outbox-2@x>"])
    feb = datetime(2026, 2, 20, 9, 0, tzinfo=UTC)
    await _send(db, "feb-sms", channel="sms", recipient="+8613900000000", at=feb, ids=["m-3"])

    # In January nothing has ended yet: no statement, nothing purged.
    report = await purge_history(db, now=JAN + timedelta(days=1))
    assert (report.statements, report.purged) == (0, 0)

    report = await purge_history(db, now=datetime(2026, 2, 1, 0, 0, tzinfo=UTC))
    assert (report.statements, report.purged) == (2, 0)  # January: one per channel
    [jan_sms] = [s for s in await statements(db, account_key=1) if s.channel == "sms"]
    assert (jan_sms.month, jan_sms.messages, jan_sms.parts) == (date(2026, 1, 1), 1, 2)
    rows = list(csv.reader(io.StringIO(jan_sms.csv.removeprefix("\ufeff"))))
    assert rows[0][:3] == ["id", "created_at", "sent_at"]
    assert rows[1][6:10] == ["+86138****5678", "2", "m-1 m-2", "sent"]
    assert "+8613812345678" not in jan_sms.csv

    # Six months and a day after January's sends: they go; February's stays (and has its statement).
    later = JAN + timedelta(days=31 * 6 + 1)
    report = await purge_history(db, now=later)
    assert report.purged == 2
    assert [r.idempotency_key for r in await store.history(db)] == ["feb-sms"]
    assert {(s.month, s.channel) for s in await statements(db)} == {
        (date(2026, 1, 1), "sms"),
        (date(2026, 1, 1), "email"),
        (date(2026, 2, 1), "sms"),
    }
    # A second run changes nothing.
    assert await purge_history(db, now=later) == type(report)(statements=0, purged=0)
