"""Account e-mail and opt-out through the whole app against aiosmtpd: the one-time password reset (in the
user's language, the old password kept until it is used, the secret scrubbed after sending), and the
one-click unsubscribe of reminder e-mail (N8, e-mail half): reminders stop, invitations do not."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from rooms.outbox import store
from tests.notify.app_server import PASSWORD, Clock, running_app, seed, utc
from tests.notify.email_server import smtp_server

NOW = utc(2026, 12, 3, 9, 0)


async def test_a_one_time_password_by_mail(tmp_path: Path) -> None:
    clock = Clock(NOW)
    async with smtp_server(tmp_path) as smtp, running_app(tmp_path, clock, smtp.settings()) as app:
        await seed(app.db, NOW)
        status, body = await app.call("POST", "/auth/password-reset", None, {"email": "li@acme.example"})
        assert (status, body) == (202, {"status": "accepted"})
        status, _ = await app.call("POST", "/auth/password-reset", None, {"email": "nobody@acme.example"})
        assert status == 202  # the same answer: the form does not tell who has an account
        status, _ = await app.call("POST", "/auth/password-reset", None, {"email": "not an address"})
        assert status == 422
        await smtp.handler.wait_for(1)
        [mail] = smtp.handler.received
        assert mail.recipients == ["li@acme.example"]
        assert mail.message["Subject"].strip() == "您的云会一次性密码"
        text = mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        [otp] = re.findall(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}\b", text)
        assert "https://meet.example.com/admin" in text
        # A second request within minutes sends nothing more.
        await app.call("POST", "/auth/password-reset", None, {"email": "li@acme.example"})
        # Until it is used, the old password still works.
        assert await app.login("li@acme.example")
        async with app.http.post(
            f"{app.url}/api/v1/auth/login", json={"email": "li@acme.example", "password": otp}
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["user"]["must_change_password"] is True
        async with app.http.post(
            f"{app.url}/api/v1/auth/login", json={"email": "li@acme.example", "password": PASSWORD}
        ) as resp:
            assert resp.status == 401  # the one-time password replaced it
        await app.dispatcher.wait_for_run(app.dispatcher.runs)
        [row] = await store.history(app.db)
        assert (row.kind, row.status, row.variables) == ("password_reset", "sent", {})
        assert len(smtp.handler.received) == 1


async def test_one_click_unsubscribe_stops_reminders_not_invitations(tmp_path: Path) -> None:
    clock = Clock(NOW)
    async with (
        smtp_server(tmp_path) as smtp,
        running_app(tmp_path, clock, smtp.settings(), email_reminder_minutes=[60]) as app,
    ):
        _account, room_id = await seed(app.db, NOW)
        token = await app.login("admin@acme.example")

        async def book(title: str, start: str, end: str) -> dict[str, object]:
            status, booking = await app.call(
                "POST",
                "/bookings",
                token,
                {
                    "room_id": room_id,
                    "title": title,
                    "start": start,
                    "end": end,
                    "time_zone": "UTC",
                    "invitees": [{"email": "bob@example.com", "locale": "en"}],
                },
            )
            assert status == 201, booking
            return booking

        await book("First", "2026-12-03T12:00:00", "2026-12-03T13:00:00")
        await smtp.handler.wait_for(1)  # the invitation
        clock.now = utc(2026, 12, 3, 11, 0)
        app.dispatcher.wake()
        await smtp.handler.wait_for(2)
        reminder = smtp.handler.received[1].message
        assert reminder["Subject"].strip().startswith("Reminder: First")
        assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = reminder["List-Unsubscribe"].strip("<>")
        assert "List-Unsubscribe" not in smtp.handler.received[0].message
        parts = urlsplit(link)
        assert parts.netloc == "meet.example.com"
        async with app.http.post(f"{app.url}{parts.path}?{parts.query}") as resp:
            assert resp.status == 200
            assert await resp.json() == {"address": "bob@example.com", "scope": "reminder"}
        async with app.http.post(f"{app.url}{parts.path}?token=x{parts.query[7:]}") as resp:
            assert resp.status == 422

        # A new booking: its invitation arrives, its reminder is suppressed.
        await book("Second", "2026-12-03T14:00:00", "2026-12-03T15:00:00")
        await smtp.handler.wait_for(3)
        assert smtp.handler.received[2].message["Subject"].strip().startswith("Invitation: Second")
        clock.now = utc(2026, 12, 3, 13, 0) + timedelta(seconds=1)
        app.dispatcher.wake()
        await app.dispatcher.wait_for_run(app.dispatcher.runs)
        await app.dispatcher.wait_for_run(app.dispatcher.runs)
        reminders = [r for r in await store.history(app.db, channel="email") if r.kind == "reminder"]
        assert sorted(r.status for r in reminders) == ["sent", "suppressed"]
        assert len(smtp.handler.received) == 3
