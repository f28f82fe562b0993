"""A second SIGTERM to a draining worker (tests/cluster/test_cluster_drain.py has the drain itself) stops
waiting: its meetings end with server_shutdown, it leaves the registry and releases its leases as it exits
0, and its rooms are placed on the other worker at once."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest

from tests.cluster.conftest import NUMBER, PASSCODE, Cluster, wait_until
from tests.signaling.live_server import Client

pytestmark = [pytest.mark.timeout(150), pytest.mark.postgres]


async def test_a_stopped_worker_hands_its_rooms_on(cluster: Cluster, http: aiohttp.ClientSession) -> None:
    workers = dict(zip((1, 2), await asyncio.gather(cluster.start(1), cluster.start(2)), strict=True))
    async with http.post(f"{workers[1].url}/api/v1/meetings/locate", json={"meeting_number": NUMBER}) as r:
        owner_id = int((await r.json())["worker"])
    owner, other = workers[owner_id], workers[3 - owner_id]
    guest = Client()
    redis = cluster.redis.client()
    try:
        await guest.connect(owner.url, {"meeting_number": NUMBER, "passcode": PASSCODE, "display_name": "G"})
        await guest.expect("joined")
        assert await redis.get("yh:room:1") is not None

        owner.process.send_signal(signal.SIGTERM)

        async def draining() -> bool:
            return (await redis.hget(f"yh:worker:{owner_id}", "state")) == "draining"

        await wait_until(draining, within=30, every=0.02)
        assert await owner.stop(signal.SIGTERM) == 0
        ended = await guest.expect("meeting_ended")
        assert ended["reason"] == "server_shutdown"
        # Gone from the registry as it exited, not a TTL later; the lease is released, not left to expire.
        assert not await redis.exists(f"yh:worker:{owner_id}")
        assert await redis.get("yh:room:1") is None
        async with http.post(f"{other.url}/api/v1/meetings/locate", json={"meeting_number": NUMBER}) as r:
            assert (await r.json())["worker"] == str(other.worker_id)
    finally:
        await redis.aclose()
        await guest.close()
