"""Bookings: single occurrences and series, one occurrence at a time, and .ics invitations."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from rooms import bookings as store
from rooms.ics import invitation
from rooms.models import Booking, Room
from rooms.recurrence import Schedule, time_zone, to_local
from web.api.base import (
    CLOCK,
    DB,
    SETTINGS,
    Api,
    ApiError,
    Principal,
    owned,
    parse_body,
    parse_query,
    path_id,
    principal,
    send,
)
from web.api.notifications import BOOKING_CHANGES, wake
from web.api.schemas import (
    BookingIn,
    BookingOut,
    BookingPatch,
    Invitee,
    OccurrenceOut,
    OccurrencePatch,
    OccurrenceQuery,
    RoomFilter,
)

api = Api()
DEFAULT_OCCURRENCE_WINDOW = timedelta(days=366)


def booking_out(b: Booking) -> BookingOut:
    return BookingOut(
        id=b.id,
        account_id=b.account_id,
        room_id=b.room_id,
        organizer_id=b.organizer_id,
        parent_id=b.parent_id,
        recurrence_id=b.recurrence_id,
        uid=b.uid,
        sequence=b.sequence,
        title=b.title,
        description=b.description,
        start=b.start_local,
        end=b.end_local,
        time_zone=b.time_zone,
        rrule=b.rrule,
        exdates=[datetime.fromisoformat(d) for d in b.exdates],
        invitees=[Invitee.model_validate(i) for i in b.invitees],
        capacity=b.capacity,
        passcode=b.passcode,
        lobby=b.lobby,
        first_start=b.first_start,
        last_end=b.last_end,
        cancelled=b.cancelled_at is not None,
        created_at=b.created_at,
        updated_at=b.updated_at,
    )


def _local(value: datetime, zone_name: str, field: str) -> datetime:
    try:
        return to_local(value, time_zone(zone_name))
    except OverflowError as exc:
        raise ApiError(422, "invalid", f"{field}: out of range", field) from exc


def _require_editor(who: Principal, booking: Booking) -> None:
    if not who.is_admin and booking.organizer_id != who.user.id:
        raise ApiError(403, "forbidden", "only the organizer or an admin may change this booking")


@api.op(
    "GET",
    "/bookings",
    summary="List bookings",
    tag="bookings",
    response=BookingOut,
    many=True,
    query=RoomFilter,
)
async def list_bookings(request: web.Request) -> web.Response:
    who = principal(request)
    q = parse_query(request, RoomFilter)
    rows = await store.list_bookings(
        request.app[DB], account_id=who.account_id, room_id=q.room_id, limit=q.limit, offset=q.offset
    )
    return send([booking_out(b) for b in rows])


@api.op(
    "POST",
    "/bookings",
    summary="Book a room (a single occurrence or a series)",
    tag="bookings",
    body=BookingIn,
    response=BookingOut,
    status=201,
)
async def create_booking(request: web.Request) -> web.Response:
    who = principal(request)
    body = await parse_body(request, BookingIn)
    zone = body.time_zone
    draft = store.BookingDraft(
        room_id=body.room_id,
        title=body.title,
        description=body.description,
        schedule=Schedule(
            _local(body.start, zone, "start"),
            _local(body.end, zone, "end"),
            zone,
            body.rrule,
            tuple(_local(d, zone, "exdates") for d in body.exdates),
        ),
        organizer_id=who.user.id,
        invitees=tuple(i.model_dump() for i in body.invitees),
        capacity=body.capacity,
        passcode=body.passcode,
        lobby=body.lobby,
    )
    booking = await store.create_booking(
        request.app[DB],
        account_id=who.account_id,
        draft=draft,
        now=request.app[CLOCK](),
        settings=request.app[SETTINGS],
        on_change=request.app.get(BOOKING_CHANGES),
    )
    wake(request)
    return send(booking_out(booking), 201)


@api.op("GET", "/bookings/{booking_id}", summary="Get a booking", tag="bookings", response=BookingOut)
async def get_booking(request: web.Request) -> web.Response:
    who = principal(request)
    booking = await store.get_booking(
        request.app[DB], path_id(request, "booking_id"), account_id=who.account_id
    )
    return send(booking_out(booking))


def _changes(body: BookingPatch | OccurrencePatch, booking: Booking) -> dict[str, Any]:
    data = body.model_dump(exclude_unset=True)
    zone = data.get("time_zone") or booking.time_zone
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("start", "end"):
            if value is None:
                raise ApiError(422, "invalid", f"{key}: may not be null", key)
            changes[f"{key}_local"] = _local(value, zone, key)
        elif key == "exdates":
            changes[key] = tuple(_local(d, zone, key) for d in value or ())
        elif key == "invitees":
            changes[key] = [i.model_dump() if isinstance(i, Invitee) else i for i in value or ()]
        elif key in ("title", "time_zone") and value is None:
            raise ApiError(422, "invalid", f"{key}: may not be null", key)
        elif key == "description":
            # null clears the description; the column holds "" rather than NULL.
            changes[key] = value or ""
        else:
            changes[key] = value
    return changes


@api.op(
    "PATCH",
    "/bookings/{booking_id}",
    summary="Change a booking (for a series: every occurrence)",
    tag="bookings",
    body=BookingPatch,
    response=BookingOut,
)
async def patch_booking(request: web.Request) -> web.Response:
    who = principal(request)
    db = request.app[DB]
    booking = await store.get_booking(db, path_id(request, "booking_id"), account_id=who.account_id)
    _require_editor(who, booking)
    body = await parse_body(request, BookingPatch)
    updated = await store.update_booking(
        db,
        booking.id,
        account_id=who.account_id,
        changes=_changes(body, booking),
        now=request.app[CLOCK](),
        settings=request.app[SETTINGS],
        on_change=request.app.get(BOOKING_CHANGES),
    )
    wake(request)
    return send(booking_out(updated))


@api.op(
    "DELETE",
    "/bookings/{booking_id}",
    summary="Cancel a booking (for a series: every occurrence)",
    tag="bookings",
    response=BookingOut,
)
async def delete_booking(request: web.Request) -> web.Response:
    who = principal(request)
    db = request.app[DB]
    booking = await store.get_booking(db, path_id(request, "booking_id"), account_id=who.account_id)
    _require_editor(who, booking)
    cancelled = await store.cancel_booking(
        db,
        booking.id,
        account_id=who.account_id,
        now=request.app[CLOCK](),
        on_change=request.app.get(BOOKING_CHANGES),
    )
    wake(request)
    return send(booking_out(cancelled))


def _recurrence_id(request: web.Request) -> datetime:
    raw = request.match_info["recurrence_id"]
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ApiError(404, "not_found", "no such occurrence", "recurrence_id") from exc
    return value.replace(tzinfo=None)


@api.op(
    "GET",
    "/bookings/{booking_id}/occurrences",
    summary="The occurrences of a booking in a time range",
    tag="bookings",
    response=OccurrenceOut,
    many=True,
    query=OccurrenceQuery,
)
async def list_occurrences(request: web.Request) -> web.Response:
    who = principal(request)
    q = parse_query(request, OccurrenceQuery)
    booking = await store.get_booking(
        request.app[DB], path_id(request, "booking_id"), account_id=who.account_id
    )
    found = [] if booking.cancelled_at is not None else store.occurrences(booking)
    if q.start is not None:
        found = [o for o in found if o.end > _aware(q.start)]
    if q.end is not None:
        found = [o for o in found if o.start < _aware(q.end)]
    return send(
        [
            OccurrenceOut(booking_id=booking.id, recurrence_id=o.recurrence_id, start=o.start, end=o.end)
            for o in found
        ]
    )


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ApiError(422, "invalid", "from/to need a UTC offset", "from")
    return value


@api.op(
    "PATCH",
    "/bookings/{booking_id}/occurrences/{recurrence_id}",
    summary="Change one occurrence of a series",
    tag="bookings",
    body=OccurrencePatch,
    response=BookingOut,
)
async def patch_occurrence(request: web.Request) -> web.Response:
    who = principal(request)
    db = request.app[DB]
    booking = await store.get_booking(db, path_id(request, "booking_id"), account_id=who.account_id)
    recurrence_id = _recurrence_id(request)
    _require_editor(who, booking)
    body = await parse_body(request, OccurrencePatch)
    child = await store.update_occurrence(
        db,
        booking.id,
        recurrence_id,
        account_id=who.account_id,
        changes=_changes(body, booking),
        now=request.app[CLOCK](),
        settings=request.app[SETTINGS],
        on_change=request.app.get(BOOKING_CHANGES),
    )
    wake(request)
    return send(booking_out(child))


@api.op(
    "DELETE",
    "/bookings/{booking_id}/occurrences/{recurrence_id}",
    summary="Cancel one occurrence of a series",
    tag="bookings",
    response=BookingOut,
)
async def delete_occurrence(request: web.Request) -> web.Response:
    who = principal(request)
    db = request.app[DB]
    booking = await store.get_booking(db, path_id(request, "booking_id"), account_id=who.account_id)
    recurrence_id = _recurrence_id(request)
    _require_editor(who, booking)
    parent = await store.cancel_occurrence(
        db,
        booking.id,
        recurrence_id,
        account_id=who.account_id,
        now=request.app[CLOCK](),
        on_change=request.app.get(BOOKING_CHANGES),
    )
    wake(request)
    return send(booking_out(parent))


@api.op(
    "GET",
    "/bookings/{booking_id}/invite.ics",
    summary="The booking as an iCalendar invitation (REQUEST or CANCEL)",
    tag="bookings",
    content_type="text/calendar",
)
async def booking_ics(request: web.Request) -> web.Response:
    who = principal(request)
    db = request.app[DB]
    booking = await store.get_booking(db, path_id(request, "booking_id"), account_id=who.account_id)
    details = await store.children(db, booking)
    async with db.session() as session:
        room = await owned(session, Room, booking.room_id, who)
    body = invitation(booking, room, details, now=request.app[CLOCK]())
    method = "CANCEL" if booking.cancelled_at is not None else "REQUEST"
    response = web.Response(body=body, content_type="text/calendar", charset="utf-8")
    response.headers["Content-Type"] = f"text/calendar; charset=utf-8; method={method}"
    response.headers["Content-Disposition"] = f'attachment; filename="booking-{booking.id}.ics"'
    return response
