"""Invitations and reminders of bookings: written to the outbox in the booking's own transaction.

`Invitations` is the hook rooms/bookings.py calls after a change is applied and before it commits: every
invitee gets a REQUEST (created, changed) or a CANCEL (cancelled) with the .ics built from the booking as it
is at that moment, and the booking's queued reminders are replaced by a fresh plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.bookings import occurrences
from rooms.ics import JoinDetails, invitation
from rooms.models import Booking, Room, User
from rooms.outbox import store
from rooms.outbox.models import Notification
from rooms.outbox.store import Attachment
from rooms.recurrence import Occurrence, time_zone

Change = Literal["created", "updated", "cancelled"]
LOCALES = ("zh-CN", "en")
REMINDER = "reminder"


@dataclass(frozen=True)
class NoticeSettings:
    """What the outbox needs from the settings of other packages (given by the composition root)."""

    public_url: str
    sender: str
    default_locale: str = "zh-CN"
    sip_domain: str | None = None
    expiry: timedelta = timedelta(hours=48)
    # Lead times per channel, e.g. {"email": (1 day,), "sms": (15 min,)}.
    reminder_leads: Mapping[str, tuple[timedelta, ...]] | None = None


@dataclass(frozen=True)
class PlannedReminder:
    occurrence: Occurrence
    channel: str
    lead: timedelta
    send_at: datetime


def plan_reminders(
    occurrences: Iterable[Occurrence],
    leads: Mapping[str, Sequence[timedelta]],
    *,
    now: datetime,
    since: datetime,
    horizon: timedelta,
) -> list[PlannedReminder]:
    """The reminders to queue now: for each future occurrence, channel and lead, one sent at start − lead.

    Only those due within `horizon` of `now` are planned (the scheduler comes back for later ones), and none
    due before `since` (the booking's last change: its invitation has just said the same thing).
    """
    planned = []
    for occurrence in occurrences:
        if occurrence.start <= now:
            continue
        for channel, channel_leads in leads.items():
            for lead in channel_leads:
                send_at = occurrence.start - lead
                if since <= send_at <= now + horizon:
                    planned.append(PlannedReminder(occurrence, channel, lead, send_at))
    return sorted(planned, key=lambda p: (p.send_at, p.channel))


def reminder_key(uid: str, occurrence_start: datetime, lead: timedelta, channel: str, recipient: str) -> str:
    """The brief's idempotency key: a second scheduler run, or a second worker, inserts nothing."""
    return (
        f"reminder:{uid}:{occurrence_start.strftime('%Y%m%dT%H%M%SZ')}:{int(lead.total_seconds())}:"
        f"{channel}:{recipient.strip().lower()}"
    )


def _format_local(at: datetime, zone_name: str) -> str:
    return at.astimezone(time_zone(zone_name)).strftime("%Y-%m-%d %H:%M")


def _recipient_of(invitee: Mapping[str, Any], channel: str) -> str | None:
    value = invitee.get("email" if channel == "email" else "phone")
    if not value:
        return None
    text = str(value).strip()
    if channel == "sms":
        # E.164 for the SMSC: keep the leading + and the digits only.
        digits = "".join(c for c in text if c.isdigit())
        return f"+{digits}" if text.startswith("+") and digits else digits or None
    return text


class Invitations:
    """The booking hook: invitations and reminders of one booking change, in its transaction."""

    def __init__(self, settings: NoticeSettings) -> None:
        self._settings = settings

    @property
    def reminder_leads(self) -> Mapping[str, tuple[timedelta, ...]]:
        return self._settings.reminder_leads or {}

    def _join(self, room: Room, booking: Booking, organizer: User | None) -> JoinDetails:
        base = self._settings.public_url.rstrip("/")
        passcode = booking.passcode if booking.passcode is not None else room.passcode
        passcode = passcode or None
        url = f"{base}/m/{room.meeting_number}" + (f"?pwd={passcode}" if passcode else "")
        sender = _address(self._settings.sender)
        sip = f"sip:{room.meeting_number}@{self._settings.sip_domain}" if self._settings.sip_domain else None
        if organizer is not None and organizer.email:
            return JoinDetails(
                organizer_email=organizer.email,
                organizer_name=organizer.display_name,
                sent_by=sender if sender != organizer.email else None,
                join_url=url,
                sip_uri=sip,
                passcode=passcode,
            )
        return JoinDetails(organizer_email=sender, join_url=url, sip_uri=sip, passcode=passcode)

    async def _locales(self, session: AsyncSession, invitees: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        emails = [str(i["email"]).lower() for i in invitees if i.get("email")]
        known: dict[str, str] = {}
        if emails:
            rows = await session.execute(
                select(func.lower(User.email), User.locale).where(func.lower(User.email).in_(emails))
            )
            known = {email: locale for email, locale in rows.all() if locale in LOCALES}
        result = {}
        for invitee in invitees:
            email = str(invitee.get("email", "")).lower()
            chosen = invitee.get("locale")
            result[email] = chosen if chosen in LOCALES else known.get(email, self._settings.default_locale)
        return result

    def variables(
        self, booking: Booking, room: Room, join: JoinDetails, start: datetime, end: datetime
    ) -> dict[str, Any]:
        return {
            "title": booking.title,
            "description": booking.description,
            "start": _format_local(start, booking.time_zone),
            "end": _format_local(end, booking.time_zone),
            "time_zone": booking.time_zone,
            "recurring": bool(booking.rrule),
            "room_name": room.name,
            "meeting_number": room.meeting_number,
            "passcode": join.passcode or "",
            "join_url": join.join_url,
            "sip_uri": join.sip_uri or "",
            "organizer_name": join.organizer_name or join.organizer_email,
        }

    async def __call__(self, session: AsyncSession, booking: Booking, change: str, now: datetime) -> None:
        await session.flush()
        root = booking
        if booking.parent_id is not None:
            parent = await session.get(Booking, booking.parent_id)
            root = parent if parent is not None else booking
        details = list(
            (
                await session.scalars(
                    select(Booking).where(Booking.parent_id == root.id).order_by(Booking.id)
                )
            ).all()
        )
        room = await session.get(Room, root.room_id)
        if room is None:
            return
        organizer = None if root.organizer_id is None else await session.get(User, root.organizer_id)
        join = self._join(room, root, organizer)
        cancelled = root.cancelled_at is not None
        kind = "cancel" if cancelled else ("invite" if change == "created" else "update")
        ics = invitation(root, room, details, now=now, join=join).decode()
        method = "CANCEL" if cancelled else "REQUEST"
        attachment = Attachment("invite.ics", "text/calendar", ics, {"method": method})
        locales = await self._locales(session, root.invitees)
        variables = self.variables(root, room, join, root.first_start, root.first_start + _duration(root))
        for invitee in root.invitees:
            address = _recipient_of(invitee, "email")
            if address is None:
                continue
            await store.enqueue(
                session,
                channel="email",
                kind=kind,
                recipient=address,
                idempotency_key=f"{kind}:{root.uid}:{root.sequence}:{address.lower()}",
                now=now,
                account_id=root.account_id,
                locale=locales.get(address.lower(), self._settings.default_locale),
                variables={**variables, "invitee_name": invitee.get("name") or "", "method": method},
                attachments=[attachment],
                booking_id=root.id,
                expires_at=now + self._settings.expiry,
            )
        if not cancelled:
            await self._cancel_removed(
                session, root, room=room, details=details, join=join, variables=variables, now=now
            )
        for item in (root, *details):
            await store.cancel_queued(session, booking_id=item.id, kinds=[REMINDER], now=now)
        if not cancelled:
            for item in (root, *details):
                if item.cancelled_at is None:
                    await self.queue_reminders(session, item, room, now=now, horizon=timedelta(days=2))

    async def _cancel_removed(
        self,
        session: AsyncSession,
        root: Booking,
        *,
        room: Room,
        details: Sequence[Booking],
        join: JoinDetails,
        variables: Mapping[str, Any],
        now: datetime,
    ) -> None:
        """A CANCEL to each invitee taken off the booking, so the event leaves their calendar too."""
        rows = await session.execute(
            select(Notification.recipient, Notification.kind)
            .where(
                Notification.booking_id == root.id,
                Notification.channel == "email",
                Notification.kind.in_(["invite", "update", "cancel"]),
            )
            .order_by(Notification.id)
        )
        latest: dict[str, tuple[str, str]] = {}
        for recipient, kind in rows.all():
            latest[recipient.lower()] = (recipient, kind)
        current = {str(i.get("email", "")).strip().lower() for i in root.invitees}
        removed = [(address, kind) for key, (address, kind) in latest.items() if key not in current]
        for address, kind in removed:
            if kind == "cancel":
                continue  # told already
            ics = invitation(root, room, details, now=now, join=join, removed=[{"email": address}]).decode()
            locale = (await self._locales(session, [{"email": address}])).get(address.lower())
            await store.enqueue(
                session,
                channel="email",
                kind="cancel",
                recipient=address,
                idempotency_key=f"cancel:{root.uid}:{root.sequence}:{address.lower()}",
                now=now,
                account_id=root.account_id,
                locale=locale or self._settings.default_locale,
                variables={**variables, "invitee_name": "", "method": "CANCEL"},
                attachments=[Attachment("invite.ics", "text/calendar", ics, {"method": "CANCEL"})],
                booking_id=root.id,
                expires_at=now + self._settings.expiry,
            )

    async def queue_reminders(
        self, session: AsyncSession, booking: Booking, room: Room, *, now: datetime, horizon: timedelta
    ) -> int:
        """Queue the booking's reminders due within `horizon` (idempotent); return how many are new."""
        leads = self._settings.reminder_leads or {}
        if not leads or not booking.invitees:
            return 0
        plan = plan_reminders(occurrences(booking), leads, now=now, since=booking.updated_at, horizon=horizon)
        if not plan:
            return 0
        organizer = None if booking.organizer_id is None else await session.get(User, booking.organizer_id)
        join = self._join(room, booking, organizer)
        locales = await self._locales(session, booking.invitees)
        new = 0
        for reminder in plan:
            variables = self.variables(
                booking, room, join, reminder.occurrence.start, reminder.occurrence.end
            )
            variables["minutes_before"] = int(reminder.lead.total_seconds() // 60)
            for invitee in booking.invitees:
                address = _recipient_of(invitee, reminder.channel)
                if address is None:
                    continue
                email = str(invitee.get("email", "")).lower()
                queued = await store.enqueue(
                    session,
                    channel=reminder.channel,
                    kind=REMINDER,
                    recipient=address,
                    idempotency_key=reminder_key(
                        booking.uid, reminder.occurrence.start, reminder.lead, reminder.channel, address
                    ),
                    now=now,
                    account_id=booking.account_id,
                    locale=locales.get(email, self._settings.default_locale),
                    variables={**variables, "invitee_name": invitee.get("name") or ""},
                    booking_id=booking.id,
                    occurrence_start=reminder.occurrence.start,
                    not_before=reminder.send_at,
                    # A reminder is void once the meeting has started.
                    expires_at=reminder.occurrence.start,
                    billable=reminder.channel == "sms",
                )
                new += queued is not None
        return new


def _duration(booking: Booking) -> timedelta:
    return booking.end_local - booking.start_local


def _address(sender: str) -> str:
    """The bare address of a From such as 'Yunhui <noreply@example.com>'."""
    if "<" in sender and sender.endswith(">"):
        return sender.rsplit("<", 1)[1][:-1].strip()
    return sender.strip()


async def queue_due_reminders(
    session: AsyncSession, invitations: Invitations, *, now: datetime, horizon: timedelta
) -> int:
    """The scheduler's pass: queue every live booking's reminders due within `horizon`; idempotent."""
    leads = invitations.reminder_leads
    longest = max((lead for values in leads.values() for lead in values), default=None)
    if longest is None:
        return 0
    query = select(Booking).where(
        Booking.cancelled_at.is_(None),
        Booking.last_end > now,
        Booking.first_start <= now + horizon + longest,
    )
    new = 0
    rooms: dict[int, Room | None] = {}
    for booking in (await session.scalars(query.order_by(Booking.id))).all():
        if booking.room_id not in rooms:
            rooms[booking.room_id] = await session.get(Room, booking.room_id)
        room = rooms[booking.room_id]
        if room is not None:
            new += await invitations.queue_reminders(session, booking, room, now=now, horizon=horizon)
    return new


__all__ = [
    "Invitations",
    "NoticeSettings",
    "PlannedReminder",
    "plan_reminders",
    "queue_due_reminders",
    "reminder_key",
]
