"""The meeting store backed by the rooms package (rooms.meetings on a rooms.database.Database)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from rooms import meetings
from rooms.audit.recorder import Actor
from rooms.database import Database
from rooms.models import Room, User
from rooms.settings import RoomsSettings
from signaling.ports import ActedBy, RoomView, UserView


class RoomsMeetingStore:
    """Implements signaling.ports.MeetingStore."""

    def __init__(self, db: Database, settings: RoomsSettings) -> None:
        self._db = db
        self._open_before = timedelta(minutes=settings.open_before_minutes)
        self._grace = timedelta(minutes=settings.grace_minutes)
        # rooms.meetings writes read-then-update in deferred transactions; on SQLite two of them at once can
        # fail with "database is locked" (a stale WAL snapshot cannot be upgraded to a write), so this
        # process's meeting writes go one at a time.
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        if self._db.is_sqlite:
            async with self._lock:
                yield
        else:
            yield

    async def _view(self, room: Room, now: datetime) -> RoomView:
        found = await meetings.admission(
            self._db, room, now=now, open_before=self._open_before, grace=self._grace
        )
        return RoomView(
            room_id=room.id,
            account_id=room.account_id,
            meeting_number=room.meeting_number,
            name=room.name,
            terms=found.terms,
            window=found.window,
            booking_id=None if found.booking is None else found.booking.id,
            occurrence_start=None if found.occurrence is None else found.occurrence.start,
            host_key=room.host_key,
            auto_record=room.auto_record,
        )

    async def room_by_number(self, meeting_number: str, *, now: datetime) -> RoomView | None:
        room = await meetings.room_by_number(self._db, meeting_number)
        return None if room is None else await self._view(room, now)

    async def room_by_id(self, room_id: int, *, now: datetime) -> RoomView | None:
        async with self._db.session() as session:
            room = await session.get(Room, room_id)
        return None if room is None else await self._view(room, now)

    async def user(self, user_id: int) -> UserView | None:
        async with self._db.session() as session:
            user = await session.get(User, user_id)
        if user is None:
            return None
        return UserView(user.id, user.account_id, user.role, user.display_name)

    async def start_meeting(self, room: RoomView, *, now: datetime) -> int:
        async with self._writing():
            meeting = await meetings.start_meeting(
                self._db,
                room_id=room.room_id,
                now=now,
                booking_id=room.booking_id,
                occurrence_start=room.occurrence_start,
            )
        return meeting.id

    async def end_meeting(
        self,
        meeting_id: int,
        *,
        reason: str,
        now: datetime,
        by: ActedBy | None = None,
        lease_epoch: int | None = None,
    ) -> None:
        async with self._writing():
            await meetings.end_meeting(
                self._db, meeting_id, reason=reason, now=now, by=_actor(by), lease_epoch=lease_epoch
            )

    async def record_join(
        self,
        *,
        meeting_id: int,
        participant_id: str,
        display_name: str,
        kind: str,
        now: datetime,
        user_agent: str,
        endpoint_id: int | None = None,
    ) -> None:
        async with self._writing():
            await meetings.record_join(
                self._db,
                meeting_id=meeting_id,
                participant_id=participant_id,
                display_name=display_name,
                kind=kind,
                now=now,
                user_agent=user_agent,
                endpoint_id=endpoint_id,
            )

    async def record_leave(
        self, *, meeting_id: int, participant_id: str, reason: str, now: datetime, by: ActedBy | None = None
    ) -> None:
        async with self._writing():
            await meetings.record_leave(
                self._db, meeting_id=meeting_id, participant_id=participant_id, reason=reason, now=now,
                by=_actor(by),
            )  # fmt: skip


def _actor(by: ActedBy | None) -> Actor | None:
    """The audit log's actor for a moderator: the person's account user when signed in, and their name."""
    if by is None:
        return None
    return Actor(by.user_id, f"{by.display_name} ({by.role})", None, "")
