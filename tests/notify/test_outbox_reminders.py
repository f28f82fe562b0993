"""Acceptance N7: reminders planned by a pure function and queued by the scheduler, idempotently.

A booking at T queues e-mail at T−24 h and SMS at T−15 min (the defaults); moving it cancels and re-queues
them; cancelling leaves nothing to send; two scheduler runs queue nothing twice; a reminder not sent by T
expires.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rooms.bookings import BookingDraft, cancel_booking, create_booking, update_booking
from rooms.database import Database
from rooms.models import Account, Room
from rooms.outbox import store
from rooms.outbox.invitations import (
    Invitations,
    NoticeSettings,
    plan_reminders,
    queue_due_reminders,
    reminder_key,
)
from rooms.recurrence import Occurrence, Schedule
from rooms.settings import RoomsSettings

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
T = datetime(2026, 12, 10, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
LEADS = {"email": (timedelta(hours=24),), "sms": (timedelta(minutes=15),)}
NOTICES = NoticeSettings(
    public_url="https://meet.example.com", sender="noreply@meet.example.com", reminder_leads=LEADS
)
HORIZON = timedelta(minutes=10)


def test_the_plan_is_one_reminder_per_occurrence_channel_and_lead() -> None:
    occurrences = [Occurrence(T, T + timedelta(hours=1), T.replace(tzinfo=None))]
    day_before = T - timedelta(hours=24)
    plan = plan_reminders(
        occurrences, LEADS, now=day_before - timedelta(minutes=5), since=NOW, horizon=HORIZON
    )
    assert [(p.channel, p.send_at) for p in plan] == [("email", day_before)]
    plan = plan_reminders(occurrences, LEADS, now=T - timedelta(minutes=20), since=NOW, horizon=HORIZON)
    assert [(p.channel, p.send_at) for p in plan] == [
        ("email", day_before),  # past but not yet sent: still planned (the key makes it a no-op if queued)
        ("sms", T - timedelta(minutes=15)),
    ]
    # A booking made 2 hours before its start gets no day-before reminder (its invitation just went out).
    assert [
        p.channel
        for p in plan_reminders(
            occurrences,
            LEADS,
            now=T - timedelta(hours=2),
            since=T - timedelta(hours=2),
            horizon=timedelta(hours=2),
        )
    ] == ["sms"]
    assert plan_reminders(occurrences, LEADS, now=T, since=NOW, horizon=HORIZON) == []  # started
    key = reminder_key("uid@yunhui", T, timedelta(minutes=15), "sms", "+8613800000000")
    assert key == "reminder:uid@yunhui:20261210T020000Z:900:sms:+8613800000000"


async def _room(db: Database) -> int:
    async with db.session() as session:
        account = Account(name="Acme", created_at=NOW)
        session.add(account)
        await session.flush()
        room = Room(account_id=account.id, name="R", meeting_number="81111111", capacity=10, created_at=NOW)
        session.add(room)
        await session.commit()
        return room.id


async def _scheduler_run(db: Database, hook: Invitations, now: datetime) -> int:
    async with db.writer() as session:
        new = await queue_due_reminders(session, hook, now=now, horizon=HORIZON)
        await session.commit()
    return new


def _queued(rows: list[object]) -> list[tuple[str, str, datetime]]:
    return sorted(
        (r.channel, r.recipient, r.not_before)  # type: ignore[attr-defined]
        for r in rows
        if r.kind == "reminder" and r.status == "queued"  # type: ignore[attr-defined]
    )


async def test_reminders_are_queued_moved_and_cancelled_with_the_booking(db: Database) -> None:
    hook = Invitations(NOTICES)
    room_id = await _room(db)
    draft = BookingDraft(
        room_id,
        "Weekly",
        Schedule(datetime(2026, 12, 10, 10), datetime(2026, 12, 10, 11), "Asia/Shanghai"),
        invitees=({"email": "bob@example.com", "phone": "+86 138 0000 0000"},),
    )
    booking = await create_booking(
        db, account_id=None, draft=draft, now=NOW, settings=RoomsSettings(), on_change=hook
    )
    assert _queued(await store.history(db)) == []  # a week ahead: nothing due yet
    day_before = T - timedelta(hours=24)
    assert await _scheduler_run(db, hook, day_before - timedelta(minutes=5)) == 1
    assert (
        await _scheduler_run(db, hook, day_before - timedelta(minutes=4)) == 0
    )  # a second run: no duplicate
    assert await _scheduler_run(db, hook, T - timedelta(minutes=20)) == 1
    assert await _scheduler_run(db, hook, T - timedelta(minutes=19)) == 0
    assert _queued(await store.history(db)) == [
        ("email", "bob@example.com", day_before),
        ("sms", "+8613800000000", T - timedelta(minutes=15)),
    ]
    # Moving the booking an hour later cancels both and plans them again at the new times.
    moved_at = T - timedelta(minutes=18)
    await update_booking(
        db,
        booking.id,
        account_id=None,
        changes={"start_local": datetime(2026, 12, 10, 11), "end_local": datetime(2026, 12, 10, 12)},
        now=moved_at,
        settings=RoomsSettings(),
        on_change=hook,
    )
    # In the same transaction: both cancelled, and the SMS of the new time queued (the day-before e-mail of
    # the new time is already past the change: the update mail told them).
    new_t = T + timedelta(hours=1)
    rows = await store.history(db)
    assert sorted((r.channel, r.status) for r in rows if r.kind == "reminder") == [
        ("email", "cancelled"),
        ("sms", "cancelled"),
        ("sms", "queued"),
    ]
    assert _queued(rows) == [("sms", "+8613800000000", new_t - timedelta(minutes=15))]
    assert await _scheduler_run(db, hook, new_t - timedelta(minutes=20)) == 0
    # Nothing sent by the start: the reminder expires instead of arriving late.
    assert await store.claim(db, now=new_t, channels=["sms"]) == []
    assert [r.status for r in await store.history(db, channel="sms")] == ["expired", "cancelled"]
    # Cancelling leaves nothing to send.
    await _scheduler_run(db, hook, new_t - timedelta(minutes=20))
    await cancel_booking(db, booking.id, account_id=None, now=new_t - timedelta(minutes=19), on_change=hook)
    assert _queued(await store.history(db)) == []
    assert [r.kind for r in await store.history(db, channel="email") if r.status == "queued"] == [
        "cancel",
        "update",
        "invite",
    ]


async def test_unchanged_occurrences_are_planned_again_after_an_edit(db: Database) -> None:
    """A title change cancels the queued reminder and frees its key, so the same reminder is queued anew."""
    hook = Invitations(NOTICES)
    room_id = await _room(db)
    draft = BookingDraft(
        room_id,
        "Standup",
        Schedule(datetime(2026, 12, 10, 10), datetime(2026, 12, 10, 11), "Asia/Shanghai"),
        invitees=({"email": "bob@example.com"},),
    )
    booking = await create_booking(
        db, account_id=None, draft=draft, now=NOW, settings=RoomsSettings(), on_change=hook
    )
    day_before = T - timedelta(hours=24)
    assert await _scheduler_run(db, hook, day_before - timedelta(minutes=5)) == 1
    await update_booking(
        db,
        booking.id,
        account_id=None,
        changes={"title": "Stand-up"},
        now=day_before - timedelta(minutes=4),
        settings=RoomsSettings(),
        on_change=hook,
    )
    assert await _scheduler_run(db, hook, day_before - timedelta(minutes=3)) == 0  # the hook queued it anew
    reminders = [r for r in await store.history(db) if r.kind == "reminder"]
    assert sorted(r.status for r in reminders) == ["cancelled", "queued"]
    [queued] = [r for r in reminders if r.status == "queued"]
    assert queued.variables["title"] == "Stand-up"
