"""What signaling needs from the SFU and from the meeting store, as Protocols the real ones satisfy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from rooms.policy import Terms, Window
from sfu.events import RouterEvent

# --- sfu (sfu.Sfu / sfu.Router / sfu.Peer) ----------------------------------------------------------


class PeerPort(Protocol):
    async def answer_publish(self, offer_sdp: str, sources: dict[str, str]) -> str: ...
    async def create_subscribe_offer(self) -> str: ...

    def subscribe_mids(self) -> dict[str, str]: ...
    async def accept_subscribe_answer(self, answer_sdp: str) -> None: ...
    async def add_remote_candidate(
        self,
        pc: Literal["publish", "subscribe"],
        candidate: str,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
    ) -> None: ...
    def set_forwarding(self, track_id: str, enabled: bool) -> None: ...
    async def restart(self, pc: Literal["publish", "subscribe"]) -> None: ...
    def set_max_size(self, track_id: str, width: int, height: int) -> None: ...
    async def close(self) -> None: ...


class RouterPort(Protocol):
    def add_listener(self, cb: Callable[[RouterEvent], None]) -> None: ...
    async def add_peer(self, participant_id: str, *, publish: bool = True) -> PeerPort: ...
    async def remove_peer(self, participant_id: str) -> None: ...
    async def close(self) -> None: ...


class SfuPort(Protocol):
    def router(self, meeting_id: str) -> RouterPort: ...


# Makes a participant's media in the meeting's Router instead of a WebRTC peer (a SIP leg's plain RTP):
# (router, participant id) -> its peer. Called once, when the participant joins.
MediaAttach = Callable[[RouterPort, str], Awaitable[PeerPort]]


# --- rooms (the meeting store: rooms.meetings functions bound to a Database, see signaling.store) -------


@dataclass(frozen=True, slots=True)
class RoomView:
    """A room as a meeting sees it now: its terms (booking overrides applied) and the booked window."""

    room_id: int
    account_id: int
    meeting_number: str
    name: str
    terms: Terms
    window: Window | None = None  # the booked occurrence admitting now; None for an ad hoc meeting
    booking_id: int | None = None
    occurrence_start: datetime | None = None
    host_key: str | None = None  # entered in the meeting (claim_host) to become host
    auto_record: bool = False  # the room records its meetings from the start


@dataclass(frozen=True, slots=True)
class UserView:
    """A user as the meeting server needs it to trust a login: read afresh at every join."""

    user_id: int
    account_id: int | None
    role: str
    display_name: str


@dataclass(frozen=True, slots=True)
class ActedBy:
    """The moderator who removed someone or ended the meeting, for the audit log."""

    participant_id: str
    display_name: str
    role: str
    user_id: int | None


class MeetingStore(Protocol):
    async def room_by_number(self, meeting_number: str, *, now: datetime) -> RoomView | None: ...
    async def room_by_id(self, room_id: int, *, now: datetime) -> RoomView | None: ...
    async def user(self, user_id: int) -> UserView | None: ...
    async def start_meeting(self, room: RoomView, *, now: datetime) -> int: ...
    async def end_meeting(
        self, meeting_id: int, *, reason: str, now: datetime, by: ActedBy | None = None
    ) -> None: ...
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
    ) -> None: ...
    async def record_leave(
        self, *, meeting_id: int, participant_id: str, reason: str, now: datetime, by: ActedBy | None = None
    ) -> None: ...
