"""Stopping the whole app with a participant in a meeting: it is told why, and nothing waits on its socket."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import socketio
from aiohttp import web

from rooms.models import Account, Room
from rooms.tokens import mint_join_token
from tests.conftest import SECRET_KEY
from web.keys import DATABASE
from yunhui.app import create_app, utc_now
from yunhui.settings import Settings


async def test_shutdown_ends_meetings_and_closes_sockets_promptly(settings: Settings) -> None:
    app = await create_app(settings, secret_key=SECRET_KEY)
    database = app[DATABASE]
    await database.upgrade()
    now = utc_now()
    async with database.session() as session:
        account = Account(name="Acme", created_at=now)
        session.add(account)
        await session.flush()
        room = Room(
            account_id=account.id, name="Board", meeting_number="123456789", capacity=5, created_at=now
        )
        session.add(room)
        await session.commit()
        room_id, account_id = room.id, account.id
    token, _ = mint_join_token(
        SECRET_KEY,
        room_id=room_id,
        meeting_number="123456789",
        account_id=account_id,
        role="host",
        display_name="Ann",
        now=now,
        ttl=dt.timedelta(minutes=5),
    )
    shutdown_timeout = 12.0
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]

    client = socketio.AsyncClient(reconnection=False)
    received: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def on_any(event: str, data: Any = None) -> None:
        received.put_nowait((event, data))

    client.on("*", on_any)
    await client.connect(f"http://{host}:{port}", auth={"token": token}, transports=["websocket"])
    try:
        async with asyncio.timeout(10):
            while (await received.get())[0] != "joined":
                pass
        loop = asyncio.get_running_loop()
        started = loop.time()
        await runner.cleanup()
        elapsed = loop.time() - started
        async with asyncio.timeout(5):
            while True:
                event, data = await received.get()
                if event == "meeting_ended":
                    assert data["reason"] == "server_shutdown"
                    break
        # Had aiohttp waited for the open websocket, cleanup would take the whole shutdown_timeout; what
        # remains (about 5 s with python-socketio's client) is the websocket close handshake, inside 10 s.
        assert elapsed < 8, elapsed
    finally:
        await client.disconnect()
        await runner.cleanup()
