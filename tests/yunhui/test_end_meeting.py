"""An admin ends a live meeting through the REST API; the participants are told why."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp
import socketio

from rooms.meetings import start_meeting
from rooms.models import Account, Room
from rooms.tokens import mint_join_token
from rooms.users import create_user
from tests.conftest import SECRET_KEY, RunningServer
from web.keys import DATABASE
from yunhui.app import utc_now


async def _admin_headers(server: RunningServer, http: aiohttp.ClientSession) -> dict[str, str]:
    await create_user(
        server.app[DATABASE],
        email="ops@example.org",
        password="ops-password",
        role="admin",
        account_id=None,
        now=utc_now(),
    )
    async with http.post(
        f"{server.url}/api/v1/auth/login", json={"email": "ops@example.org", "password": "ops-password"}
    ) as response:
        assert response.status == 200
        return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def _room(server: RunningServer) -> tuple[int, int]:
    async with server.app[DATABASE].session() as session:
        account = Account(name="Acme", created_at=utc_now())
        session.add(account)
        await session.flush()
        room = Room(
            account_id=account.id, name="Board", meeting_number="987654321", capacity=5, created_at=utc_now()
        )
        session.add(room)
        await session.commit()
        return room.id, account.id


async def test_admin_ends_a_live_meeting(server: RunningServer, http: aiohttp.ClientSession) -> None:
    headers = await _admin_headers(server, http)
    room_id, account_id = await _room(server)
    token, _ = mint_join_token(
        SECRET_KEY,
        room_id=room_id,
        meeting_number="987654321",
        account_id=account_id,
        role="participant",
        display_name="Bo",
        now=utc_now(),
        ttl=dt.timedelta(minutes=5),
    )
    received: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    client = socketio.AsyncClient(reconnection=False)

    async def on_any(event: str, data: Any = None) -> None:
        received.put_nowait((event, data))

    client.on("*", on_any)
    await client.connect(server.url, auth={"token": token}, transports=["websocket"])
    try:
        async with asyncio.timeout(10):
            while True:
                event, data = await received.get()
                if event == "joined":
                    meeting_id = data["meeting"]["meeting_id"]
                    break
        async with http.post(f"{server.url}/api/v1/meetings/{meeting_id}/end", headers=headers) as response:
            assert response.status == 200, await response.text()
            meeting = await response.json()
        assert meeting["ended_at"] is not None and meeting["end_reason"] == "host_ended"
        async with asyncio.timeout(10):
            while True:
                event, data = await received.get()
                if event == "meeting_ended":
                    assert data["reason"] == "host_ended"
                    break
        async with http.post(f"{server.url}/api/v1/meetings/{meeting_id}/end", headers=headers) as response:
            assert response.status == 409
            assert (await response.json())["error"]["code"] == "already_ended"
    finally:
        await client.disconnect()


async def test_a_meeting_not_live_here_is_closed_in_the_record(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    headers = await _admin_headers(server, http)
    room_id, _ = await _room(server)
    meeting = await start_meeting(server.app[DATABASE], room_id=room_id, now=utc_now())
    async with http.post(f"{server.url}/api/v1/meetings/{meeting.id}/end", headers=headers) as response:
        assert response.status == 200
        body = await response.json()
    assert body["ended_at"] is not None and body["end_reason"] == "ended_by_admin"
    async with http.post(f"{server.url}/api/v1/meetings/999999/end", headers=headers) as response:
        assert response.status == 404
