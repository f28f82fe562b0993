"""Acceptance N1: a booking with two invitees sends two invitations through the whole app to a real aiosmtpd
(STARTTLS, AUTH); a move sends REQUEST with SEQUENCE 1, a cancel CANCEL with SEQUENCE 2; both locales render.
Also N2's first half: a booking transaction that fails after the outbox insert sends nothing."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar
from sqlalchemy import select

from rooms.bookings import BookingDraft, create_booking
from rooms.outbox import store
from rooms.outbox.models import Notification
from rooms.recurrence import Schedule
from rooms.settings import RoomsSettings
from tests.notify.app_server import DOMAIN, PUBLIC_URL, Clock, running_app, seed, utc
from tests.notify.email_server import Received, smtp_server

NOW = utc(2026, 12, 3, 9, 0)


def _calendar(mail: EmailMessage) -> tuple[Calendar, Calendar]:
    """The text/calendar alternative and the invite.ics attachment, parsed."""
    [inline] = [p for p in mail.walk() if p.get_content_type() == "text/calendar"]
    [attached] = [p for p in mail.walk() if p.get_filename() == "invite.ics"]
    assert attached.get_content_type() == "application/ics"
    return Calendar.from_ical(inline.get_content()), Calendar.from_ical(attached.get_payload(decode=True))


def _shape(mail: EmailMessage) -> list[str]:
    return [p.get_content_type() for p in mail.walk()]


def _event(cal: Calendar) -> Any:
    [event] = cal.walk("VEVENT")
    return event


async def test_invitations_updates_and_cancellation_reach_the_smtp_server(tmp_path: Path) -> None:
    clock = Clock(NOW)
    async with smtp_server(tmp_path) as smtp, running_app(tmp_path, clock, smtp.settings()) as app:
        _account, room_id = await seed(app.db, NOW)
        token = await app.login("admin@acme.example")
        status, booking = await app.call(
            "POST",
            "/bookings",
            token,
            {
                "room_id": room_id,
                "title": "Quarterly review",
                "start": "2026-12-10T10:00:00",
                "end": "2026-12-10T11:00:00",
                "time_zone": "Asia/Shanghai",
                "invitees": [
                    {"email": "bob@example.com", "name": "Bob", "locale": "en"},
                    {"email": "wang@example.cn", "name": "王芳", "locale": "zh-CN"},
                ],
            },
        )
        assert status == 201, booking
        await smtp.handler.wait_for(2)
        assert len(smtp.handler.received) == 2
        by_recipient = {r.recipients[0]: r for r in smtp.handler.received}
        assert set(by_recipient) == {"bob@example.com", "wang@example.cn"}
        bob, wang = by_recipient["bob@example.com"].message, by_recipient["wang@example.cn"].message
        assert _shape(bob) == [
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "text/html",
            "text/calendar",
            "application/ics",
        ]
        assert bob["Subject"].strip().startswith("Invitation: Quarterly review")
        assert wang["Subject"].strip().startswith("会议邀请：Quarterly review")
        assert "邀请您参加会议" in wang.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert bob["Auto-Submitted"] == "auto-generated"
        assert bob["Message-ID"].endswith(f"@{DOMAIN}>") and bob["Message-ID"].startswith("<outbox-")
        assert bob["Message-ID"] != wang["Message-ID"]
        [inline_part] = [p for p in bob.walk() if p.get_content_type() == "text/calendar"]
        assert inline_part.get_param("method") == "REQUEST"
        inline, attached = _calendar(bob)
        assert inline.to_ical() == attached.to_ical()
        assert inline["method"] == "REQUEST"
        assert [c.name for c in inline.subcomponents].count("VTIMEZONE") == 1
        event = _event(inline)
        uid = str(event["uid"])
        assert uid == booking["uid"]
        assert int(event["sequence"]) == 0
        assert str(event["organizer"]) == "mailto:admin@acme.example"
        assert event["organizer"].params["SENT-BY"] == f"mailto:noreply@{DOMAIN}"
        attendees = {str(a): a.params for a in event["attendee"]}
        assert attendees["mailto:bob@example.com"]["RSVP"] == "TRUE"
        join = f"{PUBLIC_URL}/m/81234567?pwd=4321"
        assert str(event["url"]) == join
        description = str(event["description"])
        assert join in description and "81234567" in description and "4321" in description
        assert f"sip:81234567@{DOMAIN}" in description
        [alarm] = event.walk("VALARM")
        assert alarm["trigger"].dt == -timedelta(minutes=15)
        assert join in bob.get_body(("html",)).get_content()  # type: ignore[union-attr]

        # A move: REQUEST again, same UID, SEQUENCE 1.
        status, moved = await app.call(
            "PATCH",
            f"/bookings/{booking['id']}",
            token,
            {"start": "2026-12-10T14:00:00", "end": "2026-12-10T15:00:00"},
        )
        assert status == 200, moved
        await smtp.handler.wait_for(4)
        updates = [r.message for r in smtp.handler.received[2:]]
        for mail in updates:
            cal, _ = _calendar(mail)
            assert cal["method"] == "REQUEST"
            assert (str(_event(cal)["uid"]), int(_event(cal)["sequence"])) == (uid, 1)
        assert {m["Subject"].strip().split(":")[0].split("：")[0] for m in updates} == {
            "Updated invitation",
            "会议已更新",
        }

        # A cancel: CANCEL with STATUS:CANCELLED, SEQUENCE 2.
        status, _ = await app.call("DELETE", f"/bookings/{booking['id']}", token)
        assert status == 200
        await smtp.handler.wait_for(6)
        for received in smtp.handler.received[4:]:
            cal, _ = _calendar(received.message)
            event = _event(cal)
            assert cal["method"] == "CANCEL"
            assert (str(event["uid"]), int(event["sequence"]), str(event["status"])) == (uid, 2, "CANCELLED")
        assert len(smtp.handler.received) == 6
        assert _message_ids_unique(smtp.handler.received)
        await app.dispatcher.wait_for_run(app.dispatcher.runs)  # the run that sent them has recorded it
        await app.dispatcher.wait_for_run(app.dispatcher.runs)  # and the next measured the queue
        async with app.http.get(f"{app.url}/metrics") as resp:
            metrics = await resp.text()
        assert 'yunhui_notify_sent_total{channel="email",outcome="sent"} 6.0' in metrics
        assert 'yunhui_notify_queue_depth{channel="email"}' not in metrics  # nothing due
        rows = await store.history(app.db, booking_id=booking["id"])
        assert sorted((r.kind, r.status, r.recipient) for r in rows) == [
            ("cancel", "sent", "bob@example.com"),
            ("cancel", "sent", "wang@example.cn"),
            ("invite", "sent", "bob@example.com"),
            ("invite", "sent", "wang@example.cn"),
            ("update", "sent", "bob@example.com"),
            ("update", "sent", "wang@example.cn"),
        ]


def _message_ids_unique(received: list[Received]) -> bool:
    ids = [r.message["Message-ID"] for r in received]
    return len(set(ids)) == len(ids)


async def test_a_booking_transaction_that_fails_after_the_outbox_insert_sends_nothing(tmp_path: Path) -> None:
    clock = Clock(NOW)
    async with running_app(tmp_path, clock, None) as app:
        _account, room_id = await seed(app.db, NOW)
        invitations = app.invitations

        async def then_fail(session: Any, booking: Any, change: str, now: Any) -> None:
            await invitations(session, booking, change, now)
            queued = (await session.scalars(select(Notification))).all()
            assert len(queued) >= 1  # the invitation row is there, in this transaction
            raise RuntimeError("the disk filled up")

        draft = BookingDraft(
            room_id,
            "Doomed",
            Schedule(
                utc(2026, 12, 10, 2, 0).replace(tzinfo=None),
                utc(2026, 12, 10, 3, 0).replace(tzinfo=None),
                "UTC",
            ),
            invitees=({"email": "bob@example.com"},),
        )
        with pytest.raises(RuntimeError):
            await create_booking(
                app.db, account_id=None, draft=draft, now=NOW, settings=RoomsSettings(), on_change=then_fail
            )
        assert await store.history(app.db) == []
