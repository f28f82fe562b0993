"""S1, S2, S4: workers register with heartbeats, a room has one owner under races and rooms spread, and a
join that reaches the non-owner is refused with wrong_worker naming the owner."""

from __future__ import annotations

import asyncio
import collections
import signal

import aiohttp
import pytest
import socketio

from tests.cluster.conftest import NUMBER, PASSCODE, Cluster, Worker, wait_until
from tests.signaling.live_server import Client

pytestmark = [pytest.mark.timeout(120), pytest.mark.postgres]


async def _locate(http: aiohttp.ClientSession, worker: Worker, number: str) -> str:
    async with http.post(f"{worker.url}/api/v1/meetings/locate", json={"meeting_number": number}) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    assert body["base"] == f"/w/{body['worker']}/"
    return str(body["worker"])


async def test_registry_heartbeats_one_owner_under_races_and_rooms_spread(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    first, second = await asyncio.gather(cluster.start(1), cluster.start(2))
    redis = cluster.redis.client()
    try:
        # S1: both registry keys exist (written before the listener opened) and both workers are ready.
        keys = sorted(await redis.keys("yh:worker:*"))
        assert keys == ["yh:worker:1", "yh:worker:2"]
        assert (await redis.hgetall("yh:worker:2"))["state"] == "serving"
        assert await redis.pttl("yh:worker:1") <= 1500
        for worker in (first, second):
            async with http.get(f"{worker.url}/readyz") as response:
                assert response.status == 200, await response.text()

        # S2: 50 concurrent locates of one room, half through each worker, agree on one owner.
        number = "800100201"
        answers = await asyncio.gather(*(_locate(http, (first, second)[i % 2], number) for i in range(50)))
        assert len(set(answers)) == 1, collections.Counter(answers)
        lease = await redis.get("yh:room:2")  # the second room of the fixture
        assert lease is not None and lease.startswith(f"{answers[0]}:")

        # 20 other rooms located at once spread over both workers.
        numbers = [f"8001002{i:02d}" for i in range(2, 21)] + [NUMBER]
        owners = await asyncio.gather(
            *(_locate(http, (first, second)[i % 2], n) for i, n in enumerate(numbers))
        )
        counts = collections.Counter(owners)
        assert set(counts) == {"1", "2"} and max(counts.values()) <= 14, counts

        # An unknown meeting number is answered too (nothing is leased for it): locate reveals nothing.
        assert await _locate(http, first, "999999999") in {"1", "2"}
        assert len(await redis.keys("yh:room:*")) == 21

        # A stopped worker's key expires within its TTL: it turns red for the cluster, and its rooms (leased,
        # nobody joined) are placed on the survivor at the next locate.
        second.process.send_signal(signal.SIGSTOP)
        try:

            async def expired() -> bool:
                return not await redis.exists("yh:worker:2")

            await wait_until(expired, within=10)
            moved = await asyncio.gather(*(_locate(http, first, n) for n in numbers))
            assert set(moved) == {"1"}
        finally:
            second.process.send_signal(signal.SIGCONT)
    finally:
        await redis.aclose()


async def test_join_on_the_non_owner_is_refused_with_wrong_worker(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    first, second = await asyncio.gather(cluster.start(1), cluster.start(2))
    owner_id = await _locate(http, first, NUMBER)
    owner, other = (first, second) if owner_id == "1" else (second, first)
    auth = {"meeting_number": NUMBER, "passcode": PASSCODE, "display_name": "Guest"}

    refused = Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(other.url, auth)
    assert refused.refusal is not None
    assert refused.refusal["data"]["code"] == "wrong_worker"
    assert refused.refusal["data"]["worker"] == owner_id
    await refused.close()

    guest = Client()
    try:
        await guest.connect(owner.url, auth)
        await guest.expect("joined")
    finally:
        await guest.close()
