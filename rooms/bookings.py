"""The booking store: writes check for overlapping occurrences in the same transaction as the write."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.database import Database
from rooms.errors import Conflict, InvalidInput, NotFound
from rooms.models import Booking, Room
from rooms.policy import Terms
from rooms.recurrence import Limits, Occurrence, Schedule, expand, first_overlap, span, validate
from rooms.settings import RoomsSettings

# Called with the changed booking ("created", "updated" or "cancelled") inside the write's transaction, just
# before it commits: the outbox (rooms/outbox/invitations.py) writes the invitations there, so a rollback
# sends nothing and a crash after the commit still sends.
ChangeHook = Callable[[AsyncSession, Booking, str, datetime], Awaitable[None]]

SCHEDULE_FIELDS = frozenset({"start_local", "end_local", "time_zone", "rrule", "exdates"})
PLAIN_FIELDS = frozenset({"title", "description", "invitees", "capacity", "passcode", "lobby"})


@dataclass(frozen=True)
class BookingDraft:
    room_id: int
    title: str
    schedule: Schedule
    organizer_id: int | None = None
    description: str = ""
    invitees: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)
    capacity: int | None = None
    passcode: str | None = None
    lobby: bool | None = None


def limits(settings: RoomsSettings) -> Limits:
    return Limits(
        max_duration=timedelta(minutes=settings.max_booking_minutes),
        horizon=timedelta(days=settings.booking_horizon_days),
        max_occurrences=settings.max_occurrences,
    )


def schedule_of(booking: Booking) -> Schedule:
    return Schedule(
        start_local=booking.start_local,
        end_local=booking.end_local,
        time_zone=booking.time_zone,
        rrule=booking.rrule,
        exdates=tuple(datetime.fromisoformat(d) for d in booking.exdates),
    )


def occurrences(booking: Booking) -> list[Occurrence]:
    return expand(schedule_of(booking))


def terms(room: Room, booking: Booking | None) -> Terms:
    """The room's terms with the booking's overrides applied."""
    max_session = None if room.max_session_minutes is None else timedelta(minutes=room.max_session_minutes)
    if booking is None:
        return Terms(
            capacity=room.capacity, passcode=room.passcode, lobby=room.lobby, max_session=max_session
        )
    return Terms(
        capacity=room.capacity if booking.capacity is None else booking.capacity,
        passcode=room.passcode if booking.passcode is None else booking.passcode or None,
        lobby=room.lobby if booking.lobby is None else booking.lobby,
        max_session=max_session,
    )


def _apply_schedule(booking: Booking, schedule: Schedule) -> None:
    booking.start_local = schedule.start_local
    booking.end_local = schedule.end_local
    booking.time_zone = schedule.time_zone
    booking.rrule = schedule.rrule
    booking.exdates = [d.isoformat() for d in schedule.exdates]
    booking.first_start, booking.last_end = span(expand(schedule))


async def _lock_room(session: AsyncSession, room_id: int, account_id: int | None) -> Room:
    # The room row is the lock that serialises bookings of one room (FOR UPDATE; SQLite: BEGIN IMMEDIATE).
    query = select(Room).where(Room.id == room_id).with_for_update()
    if account_id is not None:
        query = query.where(Room.account_id == account_id)
    room = await session.scalar(query)
    if room is None:
        raise NotFound("no such room", field="room_id")
    return room


async def _check_free(
    session: AsyncSession,
    room_id: int,
    candidate: Sequence[Occurrence],
    *,
    exclude: Sequence[int] = (),
    replacements: Mapping[int, Sequence[Occurrence]] | None = None,
) -> None:
    """Raise Conflict naming the first booking of the room whose occurrences overlap `candidate`."""
    if not candidate:
        return
    lo, hi = span(candidate)
    query = select(Booking).where(
        Booking.room_id == room_id,
        Booking.cancelled_at.is_(None),
        Booking.first_start < hi,
        Booking.last_end > lo,
    )
    if exclude:
        query = query.where(Booking.id.not_in(exclude))
    replacements = replacements or {}
    for other in (await session.scalars(query.order_by(Booking.id))).all():
        theirs = replacements.get(other.id) or occurrences(other)
        clash = first_overlap(candidate, [o for o in theirs if o.start < hi and o.end > lo])
        if clash is not None:
            raise Conflict(
                f"overlaps booking {other.id} ({other.title!r}) at {clash.start.isoformat()}",
                field="start",
                code="booking_conflict",
                booking_id=other.id,
            )


async def _get(
    session: AsyncSession, booking_id: int, account_id: int | None, *, lock: bool = True
) -> Booking:
    # Writers lock the booking row (PostgreSQL) so concurrent edits of one booking apply one after another.
    query = select(Booking).where(Booking.id == booking_id)
    if lock:
        query = query.with_for_update()
    if account_id is not None:
        query = query.where(Booking.account_id == account_id)
    booking = await session.scalar(query)
    if booking is None:
        raise NotFound("no such booking")
    return booking


async def create_booking(
    db: Database,
    *,
    account_id: int | None,
    draft: BookingDraft,
    now: datetime,
    settings: RoomsSettings,
    on_change: ChangeHook | None = None,
) -> Booking:
    """Create a booking, or raise InvalidInput / NotFound / Conflict without writing anything."""
    schedule = validate(draft.schedule, now=now, limits=limits(settings))
    candidate = expand(schedule)
    async with db.writer() as session:
        room = await _lock_room(session, draft.room_id, account_id)
        await _check_free(session, room.id, candidate)
        booking = Booking(
            account_id=room.account_id,
            room_id=room.id,
            organizer_id=draft.organizer_id,
            uid=f"{uuid.uuid4()}@yunhui",
            sequence=0,
            title=draft.title,
            description=draft.description,
            invitees=[dict(i) for i in draft.invitees],
            capacity=draft.capacity,
            passcode=draft.passcode,
            lobby=draft.lobby,
            created_at=now,
            updated_at=now,
        )
        _apply_schedule(booking, schedule)
        session.add(booking)
        if on_change is not None:
            await session.flush()
            await on_change(session, booking, "created", now)
        await session.commit()
    return booking


async def get_booking(db: Database, booking_id: int, *, account_id: int | None) -> Booking:
    async with db.session() as session:
        return await _get(session, booking_id, account_id, lock=False)


async def list_bookings(
    db: Database,
    *,
    account_id: int | None,
    room_id: int | None = None,
    include_cancelled: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[Booking]:
    query = select(Booking)
    if account_id is not None:
        query = query.where(Booking.account_id == account_id)
    if room_id is not None:
        query = query.where(Booking.room_id == room_id)
    if not include_cancelled:
        query = query.where(Booking.cancelled_at.is_(None))
    query = query.order_by(Booking.first_start, Booking.id).limit(limit).offset(offset)
    async with db.session() as session:
        return list((await session.scalars(query)).all())


def _changed_schedule(booking: Booking, changes: Mapping[str, Any]) -> Schedule:
    schedule = schedule_of(booking)
    kwargs: dict[str, Any] = {k: changes[k] for k in SCHEDULE_FIELDS if k in changes}
    if "exdates" in kwargs:
        kwargs["exdates"] = tuple(kwargs["exdates"] or ())
    return replace(schedule, **kwargs)


async def update_booking(
    db: Database,
    booking_id: int,
    *,
    account_id: int | None,
    changes: Mapping[str, Any],
    now: datetime,
    settings: RoomsSettings,
    on_change: ChangeHook | None = None,
) -> Booking:
    """Change a whole booking (a series: every occurrence). Keys of `changes`: the Booking's columns."""
    unknown = set(changes) - SCHEDULE_FIELDS - PLAIN_FIELDS
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    async with db.writer() as session:
        booking = await _get(session, booking_id, account_id)
        if booking.cancelled_at is not None:
            raise Conflict("the booking is cancelled", code="booking_cancelled")
        if booking.parent_id is not None and changes.get("rrule"):
            raise InvalidInput("a single occurrence of a series cannot repeat", field="rrule")
        if SCHEDULE_FIELDS & set(changes):
            old = schedule_of(booking)
            proposed = _changed_schedule(booking, changes)
            times_changed = (old.start_local, old.end_local, old.time_zone) != (
                proposed.start_local,
                proposed.end_local,
                proposed.time_zone,
            )
            schedule = validate(proposed, now=now, limits=limits(settings), check_past=times_changed)
            await _lock_room(session, booking.room_id, account_id)
            await _check_free(session, booking.room_id, expand(schedule), exclude=[booking.id])
            _apply_schedule(booking, schedule)
        for key in PLAIN_FIELDS & set(changes):
            value = changes[key]
            setattr(booking, key, [dict(i) for i in value] if key == "invitees" else value)
        booking.sequence += 1
        booking.updated_at = now
        if on_change is not None:
            await on_change(session, booking, "updated", now)
        await session.commit()
    return booking


async def _children(session: AsyncSession, parent: Booking) -> list[Booking]:
    query = select(Booking).where(Booking.parent_id == parent.id, Booking.cancelled_at.is_(None))
    return list((await session.scalars(query)).all())


async def cancel_booking(
    db: Database,
    booking_id: int,
    *,
    account_id: int | None,
    now: datetime,
    on_change: ChangeHook | None = None,
) -> Booking:
    """Cancel a booking; for a series, every occurrence including detached ones."""
    async with db.writer() as session:
        booking = await _get(session, booking_id, account_id)
        if booking.cancelled_at is None:
            for child in await _children(session, booking):
                child.cancelled_at = now
                child.sequence += 1
                child.updated_at = now
            booking.cancelled_at = now
            booking.sequence += 1
            booking.updated_at = now
            if on_change is not None:
                await on_change(session, booking, "cancelled", now)
            await session.commit()
    return booking


def _require_occurrence(booking: Booking, recurrence_id: datetime) -> None:
    if booking.rrule is None:
        raise InvalidInput("the booking is not a series", field="recurrence_id")
    if recurrence_id not in {o.recurrence_id for o in occurrences(booking)}:
        raise NotFound("no such occurrence in the series", field="recurrence_id")


async def update_occurrence(
    db: Database,
    booking_id: int,
    recurrence_id: datetime,
    *,
    account_id: int | None,
    changes: Mapping[str, Any],
    now: datetime,
    settings: RoomsSettings,
    on_change: ChangeHook | None = None,
) -> Booking:
    """Detach one occurrence of a series into its own booking with `changes` applied; return that booking."""
    unknown = set(changes) - {"start_local", "end_local", "time_zone"} - PLAIN_FIELDS
    if unknown:
        raise InvalidInput(
            f"cannot change {', '.join(sorted(unknown))} of one occurrence", field=sorted(unknown)[0]
        )
    async with db.writer() as session:
        parent = await _get(session, booking_id, account_id)
        if parent.cancelled_at is not None:
            raise Conflict("the booking is cancelled", code="booking_cancelled")
        _require_occurrence(parent, recurrence_id)
        parent_schedule = schedule_of(parent)
        start = changes.get("start_local", recurrence_id)
        try:
            end = changes.get("end_local", start + parent_schedule.duration)
        except OverflowError as exc:
            raise InvalidInput("start is out of the bookable range", field="start") from exc
        child_schedule = validate(
            Schedule(start, end, changes.get("time_zone", parent.time_zone)), now=now, limits=limits(settings)
        )
        new_parent_schedule = replace(parent_schedule, exdates=(*parent_schedule.exdates, recurrence_id))
        if not expand(new_parent_schedule):
            raise InvalidInput("a series needs at least one occurrence of its own", field="recurrence_id")
        await _lock_room(session, parent.room_id, account_id)
        await _check_free(
            session,
            parent.room_id,
            expand(child_schedule),
            replacements={parent.id: expand(new_parent_schedule)},
        )
        _apply_schedule(parent, new_parent_schedule)
        parent.sequence += 1
        parent.updated_at = now
        child = Booking(
            account_id=parent.account_id,
            room_id=parent.room_id,
            organizer_id=parent.organizer_id,
            parent_id=parent.id,
            recurrence_id=recurrence_id,
            uid=parent.uid,
            sequence=parent.sequence,
            title=changes.get("title", parent.title),
            description=changes.get("description", parent.description),
            invitees=[dict(i) for i in changes.get("invitees", parent.invitees)],
            capacity=changes.get("capacity", parent.capacity),
            passcode=changes.get("passcode", parent.passcode),
            lobby=changes.get("lobby", parent.lobby),
            created_at=now,
            updated_at=now,
        )
        _apply_schedule(child, child_schedule)
        session.add(child)
        if on_change is not None:
            await session.flush()
            await on_change(session, child, "updated", now)
        await session.commit()
    return child


async def cancel_occurrence(
    db: Database,
    booking_id: int,
    recurrence_id: datetime,
    *,
    account_id: int | None,
    now: datetime,
    on_change: ChangeHook | None = None,
) -> Booking:
    """Cancel one occurrence of a series (an EXDATE); the last remaining one cancels the series."""
    async with db.writer() as session:
        parent = await _get(session, booking_id, account_id)
        if parent.cancelled_at is not None:
            raise Conflict("the booking is cancelled", code="booking_cancelled")
        _require_occurrence(parent, recurrence_id)
        schedule = schedule_of(parent)
        new_schedule = replace(schedule, exdates=(*schedule.exdates, recurrence_id))
        if expand(new_schedule):
            _apply_schedule(parent, new_schedule)
        else:
            parent.cancelled_at = now
        parent.sequence += 1
        parent.updated_at = now
        if on_change is not None:
            await on_change(session, parent, "cancelled" if parent.cancelled_at else "updated", now)
        await session.commit()
    return parent


async def children(db: Database, booking: Booking) -> list[Booking]:
    """The detached occurrences of a series (cancelled ones included)."""
    async with db.session() as session:
        query = select(Booking).where(Booking.parent_id == booking.id).order_by(Booking.id)
        return list((await session.scalars(query)).all())


async def room_occurrences(
    db: Database, room_id: int, *, start: datetime, end: datetime
) -> list[tuple[Booking, Occurrence]]:
    """The room's booked occurrences overlapping [start, end), in order."""
    query = select(Booking).where(
        Booking.room_id == room_id,
        Booking.cancelled_at.is_(None),
        Booking.first_start < end,
        Booking.last_end > start,
    )
    async with db.session() as session:
        bookings = (await session.scalars(query)).all()
    found = [(b, o) for b in bookings for o in occurrences(b) if o.start < end and o.end > start]
    return sorted(found, key=lambda pair: (pair[1].start, pair[0].id))
