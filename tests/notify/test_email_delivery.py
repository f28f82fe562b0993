"""E-mail through the dispatcher to a real aiosmtpd (STARTTLS, AUTH): retries, bounces, expiry, crashes.

Acceptance N2 (a crash after commit still delivers, once, with the same Message-ID) and N3 (451, 451, 250
delivers on attempt 3 at the back-off times; 550 fails at once and suppresses; with the server down the row
retries until it expires). The clock is injected; each dispatcher run is called directly.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from notify.email import EmailChannel
from notify.mime import Envelope
from notify.smtp import SmtpConfig, SmtpSender
from notify.templating import Templates
from rooms.database import Database
from rooms.outbox import store
from rooms.outbox.models import Notification, Suppression
from tests.notify.email_server import PASSWORD, USER, Handler, SmtpServer, smtp_server
from yunhui.dispatcher import Dispatcher

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
DOMAIN = "meet.example.com"


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    await db.upgrade()
    try:
        yield db
    finally:
        await db.close()


def _channel(server: SmtpServer | None, clock: Clock, *, port: int | None = None) -> EmailChannel:
    config = SmtpConfig(
        host="127.0.0.1",
        port=port if server is None else server.port,
        starttls=True,
        user=USER,
        password=PASSWORD,
        timeout=10,
        ca_file=None if server is None else str(server.ca_file),
    )
    return EmailChannel(
        SmtpSender(config), Templates(), Envelope("Yunhui <noreply@meet.example.com>", DOMAIN), clock=clock
    )


def _dispatcher(db: Database, channel: EmailChannel, clock: Clock) -> Dispatcher:
    dispatcher = Dispatcher(db, clock=clock, jitter=lambda: 0.0)
    dispatcher.register(channel)
    return dispatcher


async def _queue(db: Database, recipient: str = "alice@example.com", **kwargs: object) -> int:
    async with db.writer() as session:
        new_id = await store.enqueue(
            session,
            channel="email",
            kind="password_reset",
            recipient=recipient,
            idempotency_key=f"reset:{recipient}",
            now=NOW,
            locale="en",
            variables={
                "name": "Alice",
                "one_time_password": "K7-3Q9-XZ",
                "expires_minutes": 30,
                "login_url": "https://meet.example.com/admin",
            },
            **kwargs,  # type: ignore[arg-type]
        )
        await session.commit()
    assert new_id is not None
    return new_id


async def _row(db: Database, row_id: int) -> Notification:
    async with db.session() as session:
        row = await session.get(Notification, row_id)
    assert row is not None
    return row


async def test_451_twice_then_250_delivers_on_attempt_3_at_the_backoff_times(
    sqlite_db: Database, tmp_path: Path
) -> None:
    clock = Clock()
    async with smtp_server(tmp_path, Handler(replies=["451 4.3.0 try later", "451 4.3.0 try later"])) as smtp:
        dispatcher = _dispatcher(sqlite_db, _channel(smtp, clock), clock)
        row_id = await _queue(sqlite_db)
        assert await dispatcher.run_once() == 1
        row = await _row(sqlite_db, row_id)
        assert (row.status, row.attempts, row.next_attempt_at) == ("queued", 1, NOW + timedelta(seconds=30))
        assert "451" in (row.last_error or "")
        clock.now = NOW + timedelta(seconds=29)
        assert await dispatcher.run_once() == 0  # not due yet
        clock.now = NOW + timedelta(seconds=30)
        assert await dispatcher.run_once() == 1
        row = await _row(sqlite_db, row_id)
        assert (row.status, row.attempts) == ("queued", 2)
        assert row.next_attempt_at == clock.now + timedelta(minutes=2)
        clock.now = row.next_attempt_at
        assert await dispatcher.run_once() == 1
        row = await _row(sqlite_db, row_id)
        assert (row.status, row.attempts, row.sent_at) == ("sent", 3, clock.now)
        assert smtp.handler.attempts == 3
        [mail] = smtp.handler.received
        assert mail.recipients == ["alice@example.com"]
        assert mail.message["Message-ID"] == f"<outbox-{row_id}@{DOMAIN}>"
        assert mail.message["Auto-Submitted"] == "auto-generated"
        assert "List-Unsubscribe" not in mail.message  # account mail never offers it
        assert "K7-3Q9-XZ" in mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        await dispatcher.close()
        await dispatcher.close()


async def test_550_fails_at_once_and_suppresses_the_address(sqlite_db: Database, tmp_path: Path) -> None:
    clock = Clock()
    handler = Handler(rcpt_replies={"gone@example.com": "550 5.1.1 no such user"})
    async with smtp_server(tmp_path, handler) as smtp:
        dispatcher = _dispatcher(sqlite_db, _channel(smtp, clock), clock)
        first = await _queue(sqlite_db, "gone@example.com")
        await dispatcher.run_once()
        row = await _row(sqlite_db, first)
        assert (row.status, row.attempts) == ("failed", 1)
        assert "550" in (row.last_error or "")
        async with sqlite_db.writer() as session:
            await store.enqueue(
                session,
                channel="email",
                kind="invite",
                recipient="GONE@example.com",
                idempotency_key="invite:again",
                now=NOW,
            )
            await session.commit()
        clock.now = NOW + timedelta(hours=1)
        await dispatcher.run_once()
        async with sqlite_db.session() as session:
            statuses = (await session.scalars(select(Notification.status).order_by(Notification.id))).all()
            suppressed = (await session.scalars(select(Suppression.recipient))).all()
        assert statuses == ["failed", "suppressed"]
        assert suppressed == ["gone@example.com"]
        assert handler.attempts == 0  # neither reached DATA
        await dispatcher.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_with_the_server_down_it_retries_until_it_expires(sqlite_db: Database) -> None:
    clock = Clock()
    dispatcher = _dispatcher(sqlite_db, _channel(None, clock, port=_closed_port()), clock)
    row_id = await _queue(sqlite_db, expires_at=NOW + timedelta(hours=2))
    seen = []
    for _ in range(10):
        await dispatcher.run_once()
        row = await _row(sqlite_db, row_id)
        seen.append((row.status, row.attempts))
        if row.status != "queued":
            break
        clock.now = row.next_attempt_at
    # 0 s, +30 s, +2 min, +10 min, +1 h: the next try (+6 h) would be past the expiry.
    assert seen == [("queued", 1), ("queued", 2), ("queued", 3), ("queued", 4), ("expired", 5)]
    assert "cannot connect" in ((await _row(sqlite_db, row_id)).last_error or "")
    await dispatcher.close()


async def test_a_dispatcher_killed_after_the_claim_delivers_once_after_restart(
    sqlite_db: Database, tmp_path: Path
) -> None:
    clock = Clock()
    async with smtp_server(tmp_path) as smtp:
        row_id = await _queue(sqlite_db)
        # The first process claimed the row (committed `sending`) and died before it sent anything.
        [claimed] = await store.claim(sqlite_db, now=NOW, channels=["email"])
        assert claimed.id == row_id
        restarted = _dispatcher(sqlite_db, _channel(smtp, clock), clock)
        assert await restarted.run_once() == 0  # the lease still holds
        clock.now = NOW + timedelta(minutes=2, seconds=1)
        assert await restarted.run_once() == 1
        assert await restarted.run_once() == 0
        [mail] = smtp.handler.received
        assert mail.message["Message-ID"] == f"<outbox-{row_id}@{DOMAIN}>"
        row = await _row(sqlite_db, row_id)
        assert (row.status, row.attempts) == ("sent", 2)
        # The dead process's late answer changes nothing.
        assert not await store.mark_sent(sqlite_db, claimed, now=clock.now, provider_ids=[None])
        await restarted.close()


async def test_a_connection_lost_after_the_data_resends_with_the_same_message_id(
    sqlite_db: Database, tmp_path: Path
) -> None:
    clock = Clock()
    async with smtp_server(tmp_path, Handler(drop_after_data=1)) as smtp:
        dispatcher = _dispatcher(sqlite_db, _channel(smtp, clock), clock)
        row_id = await _queue(sqlite_db)
        await dispatcher.run_once()
        row = await _row(sqlite_db, row_id)
        assert row.status == "queued" and "after the data" in (row.last_error or "")
        clock.now = row.next_attempt_at
        await dispatcher.run_once()
        first, second = smtp.handler.received
        assert first.message["Message-ID"] == second.message["Message-ID"] == f"<outbox-{row_id}@{DOMAIN}>"
        assert (await _row(sqlite_db, row_id)).status == "sent"
        await dispatcher.close()
