"""iCalendar output: an invitation (.ics) per booking and a feed per room."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from icalendar import Alarm, Calendar, Event, Timezone, vCalAddress, vRecur, vText

from rooms.models import Booking, Room
from rooms.recurrence import time_zone

PRODID = "-//Yunhui//Yunhui meeting rooms//EN"
# A suggestion only: calendar clients apply their users' own defaults.
ALARM_BEFORE = timedelta(minutes=15)


@dataclass(frozen=True)
class JoinDetails:
    """What an e-mailed invitation adds to the booking (RFC 5546 needs ORGANIZER in REQUEST and CANCEL).

    `sent_by` is the platform sender when the organizer's own address is not the From of the mail.
    """

    organizer_email: str
    join_url: str
    organizer_name: str = ""
    sent_by: str | None = None
    sip_uri: str | None = None
    passcode: str | None = None

    def description(self, booking: Booking, room: Room) -> str:
        lines = [booking.description, ""] if booking.description else []
        lines.append(f"Join / 加入: {self.join_url}")
        lines.append(f"Meeting number / 会议号: {room.meeting_number}")
        if self.passcode:
            lines.append(f"Passcode / 密码: {self.passcode}")
        if self.sip_uri:
            lines.append(f"Room system (SIP) / 会议室终端 (SIP): {self.sip_uri}")
        return "\n".join(lines)


def _calendar(method: str | None) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    if method:
        cal.add("method", method)
    return cal


def _event(
    booking: Booking,
    room: Room,
    *,
    now: datetime,
    cancelled: bool,
    overridden: frozenset[datetime] = frozenset(),
    join: JoinDetails | None = None,
    attendees: Sequence[Mapping[str, Any]] | None = None,
) -> Event:
    zone = time_zone(booking.time_zone)
    event = Event()
    event.add("uid", booking.uid)
    event.add("sequence", booking.sequence)
    event.add("dtstamp", now)
    event.add("summary", booking.title)
    if join is not None:
        event.add("description", join.description(booking, room))
        event.add("url", join.join_url, parameters={"value": "URI"})
        organizer = vCalAddress(f"mailto:{join.organizer_email}")
        if join.organizer_name:
            organizer.params["cn"] = vText(join.organizer_name)
        if join.sent_by:
            organizer.params["sent-by"] = vText(f"mailto:{join.sent_by}")
        event.add("organizer", organizer, encode=False)
    elif booking.description:
        event.add("description", booking.description)
    event.add("location", vText(f"{room.name} ({room.meeting_number})"))
    event.add("dtstart", booking.start_local.replace(tzinfo=zone))
    event.add("dtend", booking.end_local.replace(tzinfo=zone))
    if booking.rrule:
        event.add("rrule", vRecur.from_ical(booking.rrule))
        # A moved occurrence is an override (RECURRENCE-ID), not an exclusion, in iCalendar terms.
        for exdate in map(datetime.fromisoformat, booking.exdates):
            if exdate not in overridden:
                event.add("exdate", exdate.replace(tzinfo=zone))
    if booking.recurrence_id is not None:
        event.add("recurrence-id", booking.recurrence_id.replace(tzinfo=zone))
    for invitee in booking.invitees if attendees is None else attendees:
        if not invitee.get("email"):
            continue  # reached by SMS only
        attendee = vCalAddress(f"mailto:{invitee['email']}")
        if invitee.get("name"):
            attendee.params["cn"] = vText(invitee["name"])
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        if join is not None and not cancelled:
            attendee.params["partstat"] = vText("NEEDS-ACTION")
            attendee.params["rsvp"] = vText("TRUE")
        event.add("attendee", attendee, encode=False)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    if join is not None and not cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", booking.title)
        alarm.add("trigger", -ALARM_BEFORE)
        event.add_component(alarm)
    return event


def _add_time_zones(cal: Calendar, names: Sequence[str]) -> None:
    for name in sorted(set(names)):
        cal.add_component(Timezone.from_tzinfo(time_zone(name)))


def invitation(
    booking: Booking,
    room: Room,
    details: Sequence[Booking] = (),
    *,
    now: datetime,
    join: JoinDetails | None = None,
    removed: Sequence[Mapping[str, Any]] | None = None,
) -> bytes:
    """METHOD:REQUEST for a live booking and its detached occurrences; METHOD:CANCEL once cancelled.

    With `join` (the e-mailed invitation) it carries ORGANIZER, ATTENDEE;RSVP=TRUE, a VALARM, the join URL and
    a DESCRIPTION with the meeting number, passcode and SIP dial string. With `removed` it is the CANCEL sent
    to invitees taken off a live booking, naming them as its attendees (RFC 5546 §3.2.5).
    """
    cancelled = booking.cancelled_at is not None or removed is not None
    cal = _calendar("CANCEL" if cancelled else "REQUEST")
    live = [d for d in details if d.cancelled_at is None or cancelled]
    overridden = frozenset(d.recurrence_id for d in live if d.recurrence_id is not None)
    _add_time_zones(cal, [b.time_zone for b in (booking, *live)])
    cal.add_component(
        _event(
            booking, room, now=now, cancelled=cancelled, overridden=overridden, join=join, attendees=removed
        )
    )
    for item in live:
        cal.add_component(_event(item, room, now=now, cancelled=cancelled, join=join, attendees=removed))
    data: bytes = cal.to_ical()
    return data


def feed(room: Room, bookings: Sequence[Booking], *, now: datetime) -> bytes:
    """A subscribable calendar of the room's live bookings."""
    cal = _calendar("PUBLISH")
    cal.add("x-wr-calname", f"{room.name} ({room.meeting_number})")
    _add_time_zones(cal, [b.time_zone for b in bookings] or ["UTC"])
    for booking in bookings:
        cal.add_component(_event(booking, room, now=now, cancelled=False))
    data: bytes = cal.to_ical()
    return data
