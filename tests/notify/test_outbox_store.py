"""The outbox store: enqueue in the caller's transaction, idempotency, claims with leases, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from rooms.database import Database
from rooms.models import Account
from rooms.outbox import store
from rooms.outbox.errors import InvalidNotification
from rooms.outbox.models import Notification, NotificationPart, Suppression
from rooms.outbox.rules import retry_at

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


async def _account(db: Database) -> int:
    async with db.session() as session:
        account = Account(name="Acme", created_at=NOW)
        session.add(account)
        await session.commit()
        return account.id


async def _enqueue(db: Database, key: str, **kwargs: object) -> int | None:
    async with db.writer() as session:
        new_id = await store.enqueue(
            session,
            channel=str(kwargs.pop("channel", "email")),
            kind=str(kwargs.pop("kind", "custom")),
            recipient=str(kwargs.pop("recipient", "a@example.com")),
            idempotency_key=key,
            now=NOW,
            **kwargs,  # type: ignore[arg-type]
        )
        await session.commit()
        return new_id


async def test_enqueue_is_idempotent_and_rolls_back_with_its_transaction(db: Database) -> None:
    account_id = await _account(db)
    first = await _enqueue(db, "k1", account_id=account_id)
    assert first is not None
    assert await _enqueue(db, "k1", account_id=account_id) is None
    async with db.writer() as session:
        await store.enqueue(
            session, channel="email", kind="custom", recipient="b@example.com", idempotency_key="k2", now=NOW
        )
        await session.rollback()
    rows = await store.history(db)
    assert [r.idempotency_key for r in rows] == ["k1"]
    row = rows[0]
    assert (row.status, row.attempts, row.template_key, row.locale) == ("queued", 0, "custom", "zh-CN")
    assert row.expires_at == NOW + timedelta(hours=48)


async def test_enqueue_refuses_bad_input(db: Database) -> None:
    with pytest.raises(InvalidNotification) as info:
        await _enqueue(db, "x", channel="fax")
    assert info.value.field == "channel"
    with pytest.raises(InvalidNotification) as info:
        await _enqueue(db, "y", recipient="  ")
    assert info.value.field == "recipient"
    with pytest.raises(InvalidNotification) as info:
        await _enqueue(db, "z", expires_at=NOW - timedelta(seconds=1))
    assert info.value.field == "expires_at"


async def test_claim_leases_and_fences_the_outcome(db: Database) -> None:
    await _enqueue(db, "a")
    await _enqueue(db, "later", not_before=NOW + timedelta(hours=1))
    await _enqueue(db, "sms", channel="sms", recipient="+8613800000000")
    claims = await store.claim(db, now=NOW, channels=["email"])
    assert [c.idempotency_key for c in claims] == ["a"]
    assert claims[0].attempts == 1
    assert await store.claim(db, now=NOW, channels=["email"]) == []  # leased
    assert await store.mark_sent(db, claims[0], now=NOW, provider_ids=["<x@y>"])
    assert not await store.mark_sent(db, claims[0], now=NOW, provider_ids=["<x@y>"])  # no longer held
    async with db.session() as session:
        row = await session.get(Notification, claims[0].id)
        parts = (await session.scalars(select(NotificationPart))).all()
    assert row is not None
    assert (row.status, row.parts, row.sent_at) == ("sent", 1, NOW)
    assert row.retain_until == datetime(2027, 6, 3, 9, 0, tzinfo=UTC)
    assert [p.provider_message_id for p in parts] == ["<x@y>"]


async def test_retry_follows_the_schedule_then_expires(db: Database) -> None:
    await _enqueue(db, "r", expires_at=NOW + timedelta(minutes=5))
    [first] = await store.claim(db, now=NOW, channels=["email"])
    assert await store.mark_retry(db, first, now=NOW, error="451 try later") == "queued"
    assert await store.claim(db, now=NOW + timedelta(seconds=29), channels=["email"]) == []
    [second] = await store.claim(db, now=NOW + timedelta(seconds=30), channels=["email"])
    assert second.attempts == 2
    # The next back-off (2 min) still fits; the one after (10 min) would be past the expiry.
    assert await store.mark_retry(db, second, now=NOW + timedelta(seconds=30), error="451") == "queued"
    [third] = await store.claim(db, now=NOW + timedelta(seconds=150), channels=["email"])
    assert await store.mark_retry(db, third, now=NOW + timedelta(seconds=150), error="451 again") == "expired"
    [row] = await store.history(db)
    assert (row.status, row.attempts, row.last_error) == ("expired", 3, "451 again")


def test_retry_schedule_is_pure() -> None:
    far = NOW + timedelta(days=3)
    delays = [retry_at(n, NOW, far) for n in range(1, 7)]
    assert [d - NOW for d in delays if d] == [
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(hours=1),
        timedelta(hours=6),
        timedelta(hours=6),
    ]
    jittered = retry_at(1, NOW, far, jitter=0.999)
    assert jittered is not None and NOW + timedelta(seconds=30) < jittered < NOW + timedelta(seconds=33.1)
    assert retry_at(4, NOW, NOW + timedelta(minutes=59)) is None
    with pytest.raises(ValueError):
        retry_at(0, NOW, far)


async def test_a_hard_bounce_suppresses_later_messages(db: Database) -> None:
    await _enqueue(db, "b1", recipient="Gone@Example.com")
    [claimed] = await store.claim(db, now=NOW, channels=["email"])
    assert await store.mark_failed(db, claimed, now=NOW, error="550 no such user", suppress_recipient=True)
    await _enqueue(db, "b2", recipient="gone@example.com")
    assert await store.claim(db, now=NOW, channels=["email"]) == []
    async with db.session() as session:
        suppressions = (await session.scalars(select(Suppression))).all()
    assert [(s.channel, s.recipient, s.scope) for s in suppressions] == [("email", "gone@example.com", "all")]
    statuses = {r.idempotency_key: r.status for r in await store.history(db)}
    assert statuses == {"b1": "failed", "b2": "suppressed"}


async def test_a_lost_lease_resends_email_and_marks_sms_unknown(db: Database) -> None:
    await _enqueue(db, "e")
    await _enqueue(db, "s", channel="sms", recipient="+8613800000000")
    claims = await store.claim(db, now=NOW, channels=["email", "sms"])
    assert len(claims) == 2
    later = NOW + timedelta(minutes=3)
    again = await store.claim(db, now=later, channels=["email", "sms"], resend_ambiguous={"email": True})
    assert [(c.idempotency_key, c.id, c.attempts) for c in again] == [("e", claims[0].id, 2)]
    # The first holder's late answer is refused: the second attempt owns the row now.
    assert not await store.mark_sent(db, claims[0], now=later, provider_ids=[None])
    statuses = {r.idempotency_key: r.status for r in await store.history(db)}
    assert statuses == {"e": "sending", "s": "unknown"}


async def test_receipts_deliver_after_the_last_part(db: Database) -> None:
    await _enqueue(db, "p", channel="sms", recipient="+8613800000000")
    [claimed] = await store.claim(db, now=NOW, channels=["sms"])
    await store.mark_sent(db, claimed, now=NOW, provider_ids=["m1", "m2"])
    assert await store.record_receipt(db, provider_message_id="m1", status="delivered", error=None, now=NOW)
    assert (await store.history(db))[0].status == "sent"
    await store.record_receipt(db, provider_message_id="m2", status="delivered", error=None, now=NOW)
    assert (await store.history(db))[0].status == "delivered"
    assert (
        await store.record_receipt(db, provider_message_id="nope", status="delivered", error=None, now=NOW)
        is None
    )
