"""S7 drain: SIGTERM to a worker stops new meetings there while its running meeting keeps media and chat;
the worker exits 0 once its meetings have ended, or, at workers.drain_timeout_seconds, moves them: everyone
gets meeting_moved naming the other worker, joins again there and the same meeting (its row adopted under
a new lease epoch) goes on with media."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from rooms.database import Database
from rooms.models import Attendance, Meeting
from tests.cluster.conftest import NUMBER, PASSCODE, Cluster, Worker, wait_until
from tests.signaling.live_server import Client
from tests.signaling.test_signaling_media import MediaClient, _tracks_of

pytestmark = [pytest.mark.timeout(150), pytest.mark.postgres]

AUTH = {"meeting_number": NUMBER, "passcode": PASSCODE}
# The test peers (aiortc on this host) offer loopback candidates only.
MEDIA = "[sfu]\nallow_loopback_candidates = true\n"
WITHIN = 30.0  # bounds a hang on a loaded machine; every wait below ends on an event


@pytest.fixture(autouse=True)
def _workers_gather_on_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker subprocesses gather ICE candidates on 127.0.0.1, like this process's test peers
    (tests/conftest.py restricts those to loopback; a worker is not under pytest's patch)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import aioice.ice\naioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ['127.0.0.1']\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))


async def event(client: Client, name: str, within: float = WITHIN) -> Any:
    async with asyncio.timeout(within):
        while True:
            got, data = await client.events.get()
            client.history.append((got, data))
            if got == name:
                return data


async def locate(http: aiohttp.ClientSession, worker: Worker, number: str) -> str:
    async with http.post(f"{worker.url}/api/v1/meetings/locate", json={"meeting_number": number}) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["worker"])


async def media_meeting(url: str) -> tuple[MediaClient, MediaClient]:
    """Two participants on ``url``, each publishing audio and video and receiving the other's."""
    ann, bob = MediaClient(), MediaClient()
    await ann.connect(url, {**AUTH, "display_name": "Ann"})
    a = await event(ann, "joined")
    await bob.connect(url, {**AUTH, "display_name": "Bob"})
    b = await event(bob, "joined")
    await ann.publish()
    await bob.publish()
    await _tracks_of(ann, b["participant_id"], 2)
    await _tracks_of(bob, a["participant_id"], 2)
    await ann.subscribe()
    await bob.subscribe()
    await flowing(ann, bob)
    return ann, bob


async def flowing(*clients: MediaClient) -> None:
    """Every client receives more audio and video from now on."""
    for client in clients:
        base = dict(client.received)
        await client.until(
            lambda c=client, b=base: (
                c.received["audio"] >= b["audio"] + 25 and c.received["video"] >= b["video"] + 10
            )
        )


async def chat_reaches(sender: Client, receiver: Client, text: str) -> None:
    await sender.sio.emit("chat_send", {"text": text, "to": None})
    async with asyncio.timeout(WITHIN):
        while (await event(receiver, "chat"))["entry"]["text"] != text:
            pass


async def draining_and_new_rooms_elsewhere(
    cluster: Cluster, http: aiohttp.ClientSession, owner: Worker, other: Worker
) -> float:
    """After SIGTERM: the owner's registry state is draining within one heartbeat, and a new room goes to
    the other worker; the seconds from the signal to the draining state."""
    redis = cluster.redis.client()
    try:
        signalled = time.monotonic()
        owner.process.send_signal(signal.SIGTERM)

        async def draining() -> bool:
            return (await redis.hget(f"yh:worker:{owner.worker_id}", "state")) == "draining"

        await wait_until(draining, within=WITHIN, every=0.02)
        took = time.monotonic() - signalled
        for number in ("800100203", "800100204", "800100205"):
            assert await locate(http, owner, number) == str(other.worker_id)
        return took
    finally:
        await redis.aclose()


async def test_a_draining_worker_keeps_its_meeting_until_it_ends_then_exits(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    cluster.extra = f"drain_timeout_seconds = 600\n{MEDIA}[signaling]\nempty_meeting_grace_seconds = 0.5\n"
    workers = dict(zip((1, 2), await asyncio.gather(cluster.start(1), cluster.start(2)), strict=True))
    owner_id = int(await locate(http, workers[1], NUMBER))
    owner, other = workers[owner_id], workers[3 - owner_id]
    ann, bob = await media_meeting(owner.url)
    try:
        took = await draining_and_new_rooms_elsewhere(cluster, http, owner, other)
        assert took < 0.3 + 2.0  # one heartbeat (0.3 s) and the signal's delivery, generously
        # The running meeting goes on: media both ways and chat, and a latecomer still joins it there.
        await flowing(ann, bob)
        await chat_reaches(bob, ann, "still here")
        assert await locate(http, other, NUMBER) == str(owner_id)
        assert owner.process.returncode is None
        await bob.sio.emit("leave")
        await ann.sio.emit("leave")
        # Its meeting ended (empty), the worker exits 0 by itself: no second signal, no drain timeout.
        assert await asyncio.wait_for(owner.process.wait(), WITHIN) == 0
    finally:
        await ann.close()
        await bob.close()
    assert any("drained in" in line for line in owner.output), "".join(owner.output[-20:])


async def test_at_the_drain_timeout_participants_move_to_the_other_worker(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    cluster.extra = f"drain_timeout_seconds = 2\n{MEDIA}"
    workers = dict(zip((1, 2), await asyncio.gather(cluster.start(1), cluster.start(2)), strict=True))
    owner_id = int(await locate(http, workers[1], NUMBER))
    owner, other = workers[owner_id], workers[3 - owner_id]
    ann, bob = await media_meeting(owner.url)
    again: list[MediaClient] = []
    database = await Database.connect(cluster.database_url)
    try:
        async with database.session() as session:
            before = (await session.scalars(select(Meeting).where(Meeting.ended_at.is_(None)))).one()
        assert before.lease_epoch is not None

        await draining_and_new_rooms_elsewhere(cluster, http, owner, other)
        moved = await asyncio.gather(event(ann, "meeting_moved"), event(bob, "meeting_moved"))
        assert moved[0] == moved[1] == {"worker": str(other.worker_id), "base": f"/w/{other.worker_id}/"}
        # The lease moved with the meeting: locate names the other worker now.
        assert await locate(http, other, NUMBER) == str(other.worker_id)
        # Both join again where they were told, and the same meeting goes on there with media.
        ann2, bob2 = await media_meeting(workers[int(moved[0]["worker"])].url)
        again = [ann2, bob2]
        assert await asyncio.wait_for(owner.process.wait(), WITHIN) == 0
        async with database.session() as session:
            rows = (await session.scalars(select(Meeting))).all()
            attendances = (await session.scalars(select(Attendance).order_by(Attendance.id))).all()
        assert [(m.id, m.ended_at) for m in rows] == [(before.id, None)]  # adopted, not a new meeting
        assert rows[0].lease_epoch is not None and rows[0].lease_epoch != before.lease_epoch
        assert [a.leave_reason for a in attendances] == ["moved", "moved", None, None]
    finally:
        await database.close()
        for client in (ann, bob, *again):
            await client.close()
