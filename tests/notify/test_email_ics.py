"""The invitation .ics the outbox stores: REQUEST to current invitees, CANCEL to one taken off (RFC 5546
§3.2.5, naming them as its attendee), once; no mail to invitees without an address."""

from __future__ import annotations

from datetime import UTC, datetime

from icalendar import Calendar

from rooms.bookings import BookingDraft, create_booking, update_booking
from rooms.database import Database
from rooms.models import Account, Room
from rooms.outbox import store
from rooms.outbox.invitations import Invitations, NoticeSettings
from rooms.recurrence import Schedule
from rooms.settings import RoomsSettings

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
NOTICES = NoticeSettings(public_url="https://meet.example.com", sender="Yunhui <noreply@meet.example.com>")


async def test_an_invitee_taken_off_gets_a_cancel_once(db: Database) -> None:
    async with db.session() as session:
        account = Account(name="Acme", created_at=NOW)
        session.add(account)
        await session.flush()
        room = Room(account_id=account.id, name="R", meeting_number="81111112", capacity=10, created_at=NOW)
        session.add(room)
        await session.commit()
    hook = Invitations(NOTICES)
    draft = BookingDraft(
        room.id,
        "Planning",
        Schedule(datetime(2026, 12, 10, 10), datetime(2026, 12, 10, 11), "UTC"),
        invitees=({"email": "a@example.com"}, {"email": "b@example.com"}, {"phone": "+8613800000000"}),
    )
    booking = await create_booking(
        db, account_id=None, draft=draft, now=NOW, settings=RoomsSettings(), on_change=hook
    )
    for title in ("Planning 2", "Planning 3"):
        await update_booking(
            db,
            booking.id,
            account_id=None,
            changes={"title": title, "invitees": [{"email": "a@example.com"}]},
            now=NOW,
            settings=RoomsSettings(),
            on_change=hook,
        )
    rows = sorted(await store.history(db, booking_id=booking.id), key=lambda r: r.id)
    assert [(r.kind, r.recipient) for r in rows] == [
        ("invite", "a@example.com"),
        ("invite", "b@example.com"),
        ("update", "a@example.com"),
        ("cancel", "b@example.com"),
        ("update", "a@example.com"),
    ]
    cancel = Calendar.from_ical(rows[3].attachments[0]["text"])
    [event] = cancel.walk("VEVENT")
    assert cancel["method"] == "CANCEL"
    assert (str(event["status"]), int(event["sequence"]), str(event["uid"])) == ("CANCELLED", 1, booking.uid)
    assert str(event["attendee"]) == "mailto:b@example.com"
    update = Calendar.from_ical(rows[2].attachments[0]["text"])
    [event] = update.walk("VEVENT")
    assert update["method"] == "REQUEST" and str(event["attendee"]) == "mailto:a@example.com"
    assert event["attendee"].params["RSVP"] == "TRUE"
