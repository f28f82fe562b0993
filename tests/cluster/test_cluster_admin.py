"""Admin actions reach the meeting's owner (issue #20, research/scale-out.md §4.7): an admin whose REST calls
land on one worker lists, mutes, removes and ends in a meeting another worker owns, over signed internal
HTTP; a worker that does not answer is reported as such, and an unsigned internal call is refused."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from rooms.database import Database
from rooms.models import Account, Meeting
from rooms.users import create_user
from tests.cluster.conftest import NUMBER, PASSCODE, Cluster, Worker
from tests.signaling.live_server import Client

pytestmark = [pytest.mark.timeout(120), pytest.mark.postgres]

PASSWORD = "admin-password-123"


async def _admin_token(database_url: str, http: aiohttp.ClientSession, worker: Worker) -> str:
    database = await Database.connect(database_url)
    try:
        async with database.session() as session:
            account_id = await session.scalar(select(Account.id).where(Account.name == "Acme"))
        await create_user(
            database, email="admin@acme.example", password=PASSWORD, role="admin", account_id=account_id,
            now=datetime.now(UTC),
        )  # fmt: skip
    finally:
        await database.close()
    body = {"email": "admin@acme.example", "password": PASSWORD}
    async with http.post(f"{worker.url}/api/v1/auth/login", json=body) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["token"])


async def _call(http: aiohttp.ClientSession, method: str, url: str, token: str, expect: int = 200) -> Any:
    async with http.request(method, url, headers={"Authorization": f"Bearer {token}"}, json={}) as response:
        assert response.status == expect, await response.text()
        return await response.json()


async def test_admin_on_one_worker_acts_on_a_meeting_the_other_owns(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    cluster.extra = "internal_timeout_seconds = 1.0\n"
    first, second = await asyncio.gather(cluster.start(1), cluster.start(2))
    async with http.post(f"{first.url}/api/v1/meetings/locate", json={"meeting_number": NUMBER}) as response:
        owner_id = str((await response.json())["worker"])
    owner, entry = (first, second) if owner_id == "1" else (second, first)
    token = await _admin_token(cluster.database_url, http, entry)
    auth = {"meeting_number": NUMBER, "passcode": PASSCODE}
    alice, bob = Client(), Client()
    try:
        await alice.connect(owner.url, {**auth, "display_name": "Alice"})
        await alice.expect("joined")
        await bob.connect(owner.url, {**auth, "display_name": "Bob"})
        bob_id = (await bob.expect("joined"))["participant_id"]

        # The live list asked at the entry worker shows the owner's meeting and both workers answering.
        status = await _call(http, "GET", f"{entry.url}/api/v1/live-meetings", token)
        assert {(w["worker"], w["reachable"]) for w in status["workers"]} == {("1", True), ("2", True)}
        (meeting,) = status["meetings"]
        assert meeting["worker"] == owner_id
        names = {p["display_name"]: p for p in meeting["participants"]}
        assert set(names) == {"Alice", "Bob"} and not names["Bob"]["mic_held"]
        meeting_id = meeting["meeting_id"]
        base = f"{entry.url}/api/v1/meetings/{meeting_id}/participants"

        # Mute, forwarded to the owner: Bob is asked to stop his microphone and the list shows the hold.
        done = await _call(http, "POST", f"{base}/{bob_id}/mute", token)
        assert done == {"meeting_id": meeting_id, "participant_id": bob_id, "action": "mute"}
        assert (await bob.expect("media_request"))["source"] == "mic"
        status = await _call(http, "GET", f"{entry.url}/api/v1/live-meetings", token)
        bob_now = next(p for p in status["meetings"][0]["participants"] if p["id"] == bob_id)
        assert bob_now["mic_held"] and bob_now["mic_muted"]
        # Nobody by that id in the owner's meeting: 404, as on the owner itself.
        await _call(http, "POST", f"{base}/p-0000000000000000/mute", token, expect=404)
        await _call(http, "POST", f"{base}/bad%20id!/remove", token, expect=404)

        # Remove, forwarded: Bob is told and leaves.
        await _call(http, "POST", f"{base}/{bob_id}/remove", token)
        assert (await bob.expect("removed"))["reason"] == "removed"

        # Internal routes refuse an unsigned or forged call (nginx does not pass them either).
        async with http.get(f"{owner.url}/internal/live") as response:
            assert response.status == 401
        forged = {"X-Yunhui-Internal-Time": "1", "X-Yunhui-Internal-Signature": "0" * 64}
        async with http.post(f"{owner.url}/internal/meetings/{meeting_id}/end", headers=forged) as response:
            assert response.status == 401

        # A worker that does not answer is listed as unreachable within the fan-out timeout, not a 500.
        owner.process.send_signal(signal.SIGSTOP)
        try:
            status = await _call(http, "GET", f"{entry.url}/api/v1/live-meetings", token)
        finally:
            owner.process.send_signal(signal.SIGCONT)
        silent = next(w for w in status["workers"] if w["worker"] == owner_id)
        assert not silent["reachable"] and silent["error"]
        assert status["meetings"] == []

        # End, forwarded: Alice is told, and the meeting row is closed by the owner.
        ended = await _call(http, "POST", f"{entry.url}/api/v1/meetings/{meeting_id}/end", token)
        assert ended["ended_at"] is not None and ended["end_reason"] == "host_ended"
        assert (await alice.expect("meeting_ended"))["reason"] == "host_ended"
        status = await _call(http, "GET", f"{entry.url}/api/v1/live-meetings", token)
        assert status["meetings"] == []
        await _call(http, "POST", f"{base}/{bob_id}/mute", token, expect=409)
    finally:
        await asyncio.gather(alice.close(), bob.close(), return_exceptions=True)
    database = await Database.connect(cluster.database_url)
    try:
        async with database.session() as session:
            row = await session.get(Meeting, meeting_id)
            assert row is not None and row.end_reason == "host_ended"
    finally:
        await database.close()
