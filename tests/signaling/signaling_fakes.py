"""Small hand-written fakes for signaling tests: clock, SFU, meeting store, Socket.IO server and client."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import socketio

from rooms.policy import Terms, Window
from rooms.tokens import mint_join_token
from sfu.events import RouterEvent
from signaling.ports import ActedBy, RoomView, UserView
from signaling.server import MeetingServer
from signaling.settings import SignalingSettings

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
SECRET = "test-secret-key-0123456789abcdef"
WAIT = 5.0


class FakeTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A Scheduler whose time moves only when the test calls ``advance``."""

    def __init__(self, start: datetime = T0) -> None:
        self._now = start
        self._queue: list[tuple[datetime, int, FakeTimer, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.timer_added = asyncio.Event()  # set whenever a timer is scheduled: await it, then advance

    def now(self) -> datetime:
        return self._now

    def call_at(self, when: datetime, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer()
        heapq.heappush(self._queue, (when, next(self._seq), timer, callback))
        self.timer_added.set()
        return timer

    def advance(self, seconds: float) -> None:
        target = self._now + timedelta(seconds=seconds)
        while self._queue and self._queue[0][0] <= target:
            when, _, timer, callback = heapq.heappop(self._queue)
            self._now = max(self._now, when)
            if not timer.cancelled:
                callback()
        self._now = target


class FakePeer:
    def __init__(self, participant_id: str, publish: bool) -> None:
        self.participant_id = participant_id
        self.publish = publish
        self.offers = 0
        self.answers: list[str] = []
        self.candidates: list[tuple[str, str, str | None, int | None]] = []
        self.forwarding: dict[str, bool] = {}
        self.sizes: dict[str, tuple[int, int]] = {}
        self.mids: dict[str, str] = {}
        self.restarts: list[str] = []
        self.closed = False

    async def answer_publish(self, offer_sdp: str, sources: dict[str, str]) -> str:
        if offer_sdp == "fail":
            raise RuntimeError("negotiation failed")
        return f"answer to {offer_sdp}"

    async def create_subscribe_offer(self) -> str:
        self.offers += 1
        return f"offer {self.offers}"

    def subscribe_mids(self) -> dict[str, str]:
        # Like the SFU: an m-section for each track offered so far (tests add them through `mids`).
        return dict(self.mids)

    async def accept_subscribe_answer(self, answer_sdp: str) -> None:
        self.answers.append(answer_sdp)

    async def restart(self, pc: Literal["publish", "subscribe"]) -> None:
        self.restarts.append(pc)
        if pc == "subscribe":
            self.mids = {}  # a new subscribe connection starts without m-sections

    async def add_remote_candidate(
        self,
        pc: Literal["publish", "subscribe"],
        candidate: str,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
    ) -> None:
        self.candidates.append((pc, candidate, sdp_mid, sdp_mline_index))

    def set_forwarding(self, track_id: str, enabled: bool) -> None:
        self.forwarding[track_id] = enabled

    def set_max_size(self, track_id: str, width: int, height: int) -> None:
        self.sizes[track_id] = (width, height)

    async def close(self) -> None:
        self.closed = True


class FakeRouter:
    def __init__(self, meeting_id: str) -> None:
        self.meeting_id = meeting_id
        self.listeners: list[Callable[[RouterEvent], None]] = []
        self.peers: dict[str, FakePeer] = {}
        self.removed: list[str] = []
        self.closed = False

    def add_listener(self, cb: Callable[[RouterEvent], None]) -> None:
        self.listeners.append(cb)

    async def add_peer(self, participant_id: str, *, publish: bool = True) -> FakePeer:
        peer = FakePeer(participant_id, publish)
        self.peers[participant_id] = peer
        return peer

    async def remove_peer(self, participant_id: str) -> None:
        peer = self.peers.pop(participant_id, None)
        if peer is not None:
            self.removed.append(participant_id)
            await peer.close()

    async def close(self) -> None:
        self.closed = True

    def emit(self, event: RouterEvent) -> None:
        for cb in list(self.listeners):
            cb(event)


class FakeSfu:
    def __init__(self) -> None:
        self.routers: dict[str, FakeRouter] = {}

    def router(self, meeting_id: str) -> FakeRouter:
        return self.routers.setdefault(meeting_id, FakeRouter(meeting_id))


@dataclass
class MeetingRow:
    room_id: int
    started_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class AttendanceRow:
    meeting_id: int
    participant_id: str
    display_name: str
    kind: str
    user_agent: str
    joined_at: datetime
    left_at: datetime | None = None
    leave_reason: str | None = None


class FakeStore:
    """In-memory MeetingStore."""

    def __init__(self) -> None:
        self.rooms: dict[int, RoomView] = {}
        self.meetings: dict[int, MeetingRow] = {}
        self.attendance: list[AttendanceRow] = []
        self.left = asyncio.Condition()
        self.users: dict[int, UserView] = {}

    def add_room(
        self,
        room_id: int = 1,
        *,
        number: str = "123456789",
        passcode: str | None = "4321",
        capacity: int = 10,
        lobby: bool = False,
        max_session: timedelta | None = None,
        window: Window | None = None,
        host_key: str | None = "135790",
    ) -> RoomView:
        room = RoomView(
            room_id,
            7,
            number,
            f"Room {room_id}",
            Terms(capacity, passcode, lobby, max_session),
            window,
            host_key=host_key,
        )
        self.rooms[room_id] = room
        return room

    async def room_by_number(self, meeting_number: str, *, now: datetime) -> RoomView | None:
        return next((r for r in self.rooms.values() if r.meeting_number == meeting_number), None)

    async def user(self, user_id: int) -> UserView | None:
        return self.users.get(user_id)

    async def room_by_id(self, room_id: int, *, now: datetime) -> RoomView | None:
        return self.rooms.get(room_id)

    async def start_meeting(self, room: RoomView, *, now: datetime) -> int:
        meeting_id = len(self.meetings) + 100
        self.meetings[meeting_id] = MeetingRow(room.room_id, now)
        return meeting_id

    async def end_meeting(
        self, meeting_id: int, *, reason: str, now: datetime, by: ActedBy | None = None
    ) -> None:
        row = self.meetings[meeting_id]
        row.ended_at, row.end_reason = now, reason
        for a in self.attendance:
            if a.meeting_id == meeting_id and a.left_at is None:
                a.left_at, a.leave_reason = now, "meeting_ended"
        row.ended.set()

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
        self.attendance.append(AttendanceRow(meeting_id, participant_id, display_name, kind, user_agent, now))

    async def record_leave(
        self, *, meeting_id: int, participant_id: str, reason: str, now: datetime, by: ActedBy | None = None
    ) -> None:
        for a in self.attendance:
            if a.meeting_id == meeting_id and a.participant_id == participant_id and a.left_at is None:
                a.left_at, a.leave_reason = now, reason
        async with self.left:
            self.left.notify_all()

    async def wait_left(self, participant_id: str) -> AttendanceRow:
        async with asyncio.timeout(WAIT), self.left:
            await self.left.wait_for(
                lambda: any(a.participant_id == participant_id and a.left_at for a in self.attendance)
            )
        return next(a for a in self.attendance if a.participant_id == participant_id)


class Refused(Exception):
    def __init__(self, data: Any) -> None:
        super().__init__(data)
        self.data = data
        self.code = data["data"]["code"]


class FakeClient:
    """One client connection as the server sees it; ``expect`` awaits the next event of a name."""

    def __init__(self, sio: FakeSio, sid: str) -> None:
        self.sio = sio
        self.sid = sid
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.seen: list[tuple[str, Any]] = []
        self.disconnected = asyncio.Event()

    async def expect(self, event: str, within: float = WAIT) -> Any:
        async with asyncio.timeout(within):
            while True:
                name, data = await self.events.get()
                self.seen.append((name, data))
                if name == event:
                    return data

    def drain(self) -> list[tuple[str, Any]]:
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        self.seen.extend(out)
        return out

    async def emit(self, event: Any, data: Any = None) -> None:
        await self.sio.handlers["*"](event, self.sid, data)

    async def emit_raw(self, event: Any, *args: Any) -> None:
        await self.sio.handlers["*"](event, self.sid, *args)

    async def drop(self) -> None:
        """The connection dies (client side)."""
        await self.sio.handlers["disconnect"](self.sid, "transport close")


class FakeSio:
    """Stands in for socketio.AsyncServer: registered handlers, emits and server-side disconnects."""

    def __init__(self) -> None:
        self.handlers: dict[str, Callable[..., Any]] = {}
        self.clients: dict[str, FakeClient] = {}
        self._sids = itertools.count(1)

    def on(self, event: str, handler: Callable[..., Any] | None = None, namespace: str | None = None) -> None:
        assert handler is not None
        self.handlers[event] = handler

    async def emit(self, event: str, data: Any = None, to: str | None = None) -> None:
        assert to is not None
        client = self.clients.get(to)
        if client is not None and not client.disconnected.is_set():
            client.events.put_nowait((event, data))

    async def disconnect(self, sid: str) -> None:
        client = self.clients.get(sid)
        if client is not None and not client.disconnected.is_set():
            client.disconnected.set()
            await self.handlers["disconnect"](sid, "server disconnect")

    async def connect(self, auth: Any, user_agent: str = "Mozilla/5.0 (X11; Linux x86_64)") -> FakeClient:
        sid = f"sid{next(self._sids)}"
        client = FakeClient(self, sid)
        self.clients[sid] = client
        try:
            await self.handlers["connect"](sid, {"HTTP_USER_AGENT": user_agent}, auth)
        except socketio.exceptions.ConnectionRefusedError as exc:
            del self.clients[sid]
            raise Refused(exc.error_args) from None
        return client


def join_token(room: RoomView, role: str = "participant", name: str = "Ann", now: datetime = T0) -> str:
    token, _ = mint_join_token(
        SECRET,
        room_id=room.room_id,
        meeting_number=room.meeting_number,
        account_id=room.account_id,
        role=role,
        display_name=name,
        now=now,
        ttl=timedelta(hours=2),
    )
    return token


class Harness:
    """A MeetingServer on fakes."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.clock = FakeClock()
        self.sfu = FakeSfu()
        self.store = FakeStore()
        self.sio = FakeSio()
        # The fake clock stands still unless a test advances it: every participant_changed goes out unless a
        # test asks for coalescing (test_signaling_floods.py).
        settings = {"participant_changed_interval_seconds": 0, **settings}
        self.settings = SignalingSettings(files_dir=tmp_path / "files", **settings)
        self.server = MeetingServer(
            self.sio,
            sfu=self.sfu,
            store=self.store,
            settings=self.settings,
            secret_key=SECRET,
            clock=self.clock.now,
            scheduler=self.clock,
        )

    def router(self) -> FakeRouter:
        assert len(self.sfu.routers) == 1
        return next(iter(self.sfu.routers.values()))

    async def join(
        self, room: RoomView, role: str = "participant", name: str = "Ann"
    ) -> tuple[FakeClient, Any]:
        client = await self.sio.connect({"token": join_token(room, role, name, self.clock.now())})
        return client, await client.expect("joined")

    async def guest(self, room: RoomView, name: str = "Guest", passcode: str = "4321") -> FakeClient:
        return await self.sio.connect(
            {"meeting_number": room.meeting_number, "passcode": passcode, "display_name": name}
        )
