"""A real aiohttp + Socket.IO meeting server on 127.0.0.1 with a real SQLite database, and its clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import socketio
from aiohttp import web

from rooms.database import Database
from rooms.models import Account, Room
from rooms.settings import RoomsSettings
from signaling.files_app import files_app
from signaling.ports import RoomView, SfuPort
from signaling.server import MeetingServer, socketio_server
from signaling.settings import SignalingSettings
from signaling.store import RoomsMeetingStore
from tests.signaling.signaling_fakes import SECRET, T0, WAIT, FakeClock, FakeSfu, join_token

HOUR = timedelta(hours=1)


class Client:
    """A python-socketio client that records every event it receives."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False, logger=False, engineio_logger=False)
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.seen: list[str] = []
        self.history: list[tuple[str, Any]] = []
        self.refusal: Any = None
        self.gone = asyncio.Event()
        self.sio.on("*", self._on_event)
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("disconnect", self._on_disconnect)

    async def _on_event(self, event: str, data: Any = None) -> None:
        self.events.put_nowait((event, data))

    async def _on_connect_error(self, data: Any) -> None:
        self.refusal = data

    async def _on_disconnect(self, reason: Any = None) -> None:
        self.gone.set()

    async def connect(self, url: str, auth: dict[str, Any], user_agent: str | None = None) -> None:
        headers = {"User-Agent": user_agent} if user_agent else {}
        await self.sio.connect(url, auth=auth, headers=headers, transports=["websocket"], wait_timeout=WAIT)

    async def expect(self, event: str) -> Any:
        async with asyncio.timeout(WAIT):
            while True:
                name, data = await self.events.get()
                self.seen.append(name)
                self.history.append((name, data))
                if name == event:
                    return data

    async def close(self) -> None:
        await self.sio.disconnect()


@dataclass
class Live:
    url: str
    db: Database
    clock: FakeClock
    server: MeetingServer
    room: RoomView
    clients: list[Client]

    async def client(self, auth: dict[str, Any], user_agent: str | None = None) -> Client:
        client = Client()
        self.clients.append(client)
        await client.connect(self.url, auth, user_agent)
        return client

    async def add_user(self, role: str = "organizer", *, account_id: int | None = -1) -> int:
        """A user in the database (of the room's account unless told otherwise); returns its id."""
        from rooms.users import create_user

        account = self.room.account_id if account_id == -1 else account_id
        email = f"user{len(self.clients)}-{role}@example.com"
        user = await create_user(
            self.db, email=email, password="password-1", role=role, account_id=account, now=self.clock.now()
        )
        return user.id

    def login(self, user_id: int, role: str = "organizer", *, account_id: int | None = -1) -> dict[str, Any]:
        """The auth of a LoginJoin with a fresh access token for ``user_id``."""
        from rooms.tokens import mint_access_token

        account = self.room.account_id if account_id == -1 else account_id
        access, _ = mint_access_token(
            SECRET, user_id=user_id, account_id=account, role=role, now=self.clock.now(), ttl=HOUR
        )
        return {"meeting_number": self.room.meeting_number, "access_token": access}

    async def join(self, role: str, name: str, client: Client | None = None) -> tuple[Client, Any]:
        client = client or Client()
        self.clients.append(client)
        await client.connect(self.url, {"token": join_token(self.room, role, name, self.clock.now())})
        return client, await client.expect("joined")


@asynccontextmanager
async def start_live(
    tmp_path: Path, sfu: SfuPort | None = None, *, lobby: bool = False, **signaling: Any
) -> AsyncIterator[Live]:
    """``signaling``: SignalingSettings fields beyond the test defaults."""
    db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'yunhui.db'}")
    await db.upgrade()
    async with db.session() as session:
        account = Account(name="Acme", created_at=T0)
        session.add(account)
        await session.flush()
        room = Room(
            account_id=account.id,
            name="Board room",
            meeting_number="888000111",
            passcode="2468",
            capacity=3,
            max_session_minutes=30,
            lobby=lobby,
            created_at=T0,
        )
        session.add(room)
        await session.commit()
    clock = FakeClock()
    store = RoomsMeetingStore(db, RoomsSettings())
    view = await store.room_by_number("888000111", now=clock.now())
    assert view is not None
    sio = socketio_server(engineio_logger=False)
    app = web.Application()
    sio.attach(app)
    # The fake clock stands still unless a test advances it: every participant_changed goes out unless a
    # test asks for coalescing (test_signaling_floods.py).
    defaults = {
        "files_dir": tmp_path / "files",
        "upload_max_bytes": 1000,
        "participant_changed_interval_seconds": 0,
    }
    settings = SignalingSettings(**{**defaults, **signaling})
    server = MeetingServer(
        sio,
        sfu=sfu or FakeSfu(),
        store=store,
        settings=settings,
        secret_key=SECRET,
        clock=clock.now,
        scheduler=clock,
    )
    app.add_subapp("/files", files_app(server))
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state = Live(f"http://{host}:{port}", db, clock, server, view, [])
    try:
        yield state
    finally:
        for client in state.clients:
            await client.close()
        await server.close()
        await runner.cleanup()
        await db.close()
