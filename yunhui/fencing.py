"""Meeting writes fenced by the owner's lease epoch (issue #20, research/scale-out.md §4.3).

In cluster mode the meeting store starts a room's meeting under the epoch of the worker's Redis lease, or
adopts the room's open meeting (moved here by a drain, or left by a lost worker), and ends it only while
the row still carries that epoch. A former owner whose lease moved (paused with SIGSTOP past its lease, a
starved loop) has those writes refused, and the join that would seat someone in its stale copy makes it
stop that copy: everyone in it is sent to locate the meeting again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from rooms.database import Database
from rooms.errors import StaleLease
from rooms.settings import RoomsSettings
from rooms.workers import holds_lease, start_or_adopt
from signaling.ports import ActedBy, RoomView
from signaling.store import RoomsMeetingStore

log = logging.getLogger(__name__)


def _no_epoch(room_id: int) -> int | None:
    return None


def _ignore(meeting_id: int) -> None:
    return None


class FencedMeetingStore(RoomsMeetingStore):
    """signaling's MeetingStore with lease fencing; without an epoch (one process) it is the plain store."""

    def __init__(self, db: Database, settings: RoomsSettings) -> None:
        super().__init__(db, settings)
        self._database = db
        # Bound by yunhui/cluster.py once the registry exists: the room's lease epoch held here.
        self.epoch_of: Callable[[int], int | None] = _no_epoch
        # Called with a meeting whose lease another worker holds now: stop this copy of it.
        self.on_stale: Callable[[int], None] = _ignore
        self._epochs: dict[int, int] = {}  # meeting id -> the epoch this worker holds it under
        self.adopted: list[int] = []  # meetings adopted from another worker, in order (logs, tests)

    @property
    def database(self) -> Database:
        return self._database

    def epoch(self, meeting_id: int) -> int | None:
        """The epoch this worker holds the meeting under; kept until its end here, so that no end of a
        meeting that moved away is ever written unfenced."""
        return self._epochs.get(meeting_id)

    async def start_meeting(self, room: RoomView, *, now: datetime) -> int:
        epoch = self.epoch_of(room.room_id)
        if epoch is None:
            return await super().start_meeting(room, now=now)
        async with self._writing():
            placed = await start_or_adopt(
                self._database, room_id=room.room_id, epoch=epoch, now=now,
                booking_id=room.booking_id, occurrence_start=room.occurrence_start,
            )  # fmt: skip
        self._epochs[placed.meeting_id] = epoch
        if placed.adopted:
            self.adopted.append(placed.meeting_id)
            log.info("meeting %s adopted under lease epoch %s", placed.meeting_id, epoch)
        return placed.meeting_id

    async def end_meeting(
        self,
        meeting_id: int,
        *,
        reason: str,
        now: datetime,
        by: ActedBy | None = None,
        lease_epoch: int | None = None,
    ) -> None:
        epoch = self._epochs.pop(meeting_id, lease_epoch)
        try:
            await super().end_meeting(meeting_id, reason=reason, now=now, by=by, lease_epoch=epoch)
        except StaleLease:
            log.warning("meeting %s: not ended here, it is held under another lease now", meeting_id)

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
        epoch = self._epochs.get(meeting_id)
        if epoch is not None and not await holds_lease(self._database, meeting_id, epoch):
            log.warning("meeting %s: its lease moved to another worker; this copy stops", meeting_id)
            self.on_stale(meeting_id)
            raise StaleLease(f"meeting {meeting_id} moved to another worker", field="meeting_id")
        await super().record_join(
            meeting_id=meeting_id, participant_id=participant_id, display_name=display_name, kind=kind,
            now=now, user_agent=user_agent, endpoint_id=endpoint_id,
        )  # fmt: skip

    async def end_unadopted(self, meeting_id: int, epoch: int, *, reason: str, now: datetime) -> bool:
        """End a meeting moved away that nobody took up (still under our epoch); False if it was adopted."""
        try:
            await super().end_meeting(meeting_id, reason=reason, now=now, lease_epoch=epoch)
        except StaleLease:
            return False
        return True
