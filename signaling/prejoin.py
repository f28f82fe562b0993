"""PasscodeProbe: whether the pre-join page should ask for a passcode, before the first attempt.

It reveals no more than a join without a passcode would: a meeting number that does not exist answers like
one that needs a passcode (the page shows the field; the join then says there is no such meeting), and a
lookup of a number that does not exist counts as a failed attempt of that address in the same AttemptLimiter
as the joins, so scanning numbers for open rooms is no faster through the page than through Socket.IO.
While the address is in back-off the answer is "needs a passcode", checked against nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from signaling.attempts import AttemptLimiter, Failure
from signaling.ports import RoomView

__all__ = ["PasscodeProbe", "RoomLookup"]


class RoomLookup(Protocol):
    """The part of signaling.ports.MeetingStore the probe reads."""

    async def room_by_number(self, meeting_number: str, *, now: datetime) -> RoomView | None: ...


class PasscodeProbe:
    """Answers "does meeting ``number`` need a passcode?" for one client address at a time."""

    def __init__(self, store: RoomLookup, attempts: AttemptLimiter) -> None:
        self._store = store
        self._attempts = attempts

    async def needs_passcode(self, meeting_number: str, *, address: str, now: datetime) -> bool:
        """False only for a meeting that exists and admits without a passcode now."""
        if not self._attempts.begin(address=address, meeting_number=meeting_number, now=now).allowed:
            return True
        failure: Failure | None = None
        try:
            room = await self._store.room_by_number(meeting_number, now=now)
            if room is None:
                failure = Failure.NO_SUCH_MEETING
                return True
            return bool(room.terms.passcode)
        finally:
            self._attempts.end(address=address, meeting_number=meeting_number, failure=failure, now=now)
