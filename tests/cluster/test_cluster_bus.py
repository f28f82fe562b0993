"""S10 idle bus (issue #20, research/scale-out.md §2, §5): a maintenance announcement made on one worker
reaches a meeting on the other after the bus sat idle for many health intervals, and again after Redis
dropped every subscriber (the deaf-listener case of python-socketio #1581): the listener subscribes again.

The health interval is 0.3 s here (15 s by default), so 3 s of silence is ten intervals: what redis-py 8's
5 s socket timeout or a silently dead subscription would break shows up without waiting 30 s."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from rooms.database import Database
from rooms.users import create_user
from tests.cluster.conftest import NUMBER, PASSCODE, Cluster, Worker, wait_until
from tests.signaling.live_server import Client

pytestmark = [pytest.mark.timeout(120), pytest.mark.postgres]

PASSWORD = "root-password-123"
TEXTS = {"title": {"zh-CN": "维护", "en": "Maintenance"}, "text": {"zh-CN": "稍后重启。", "en": "A restart."}}


async def _located(http: aiohttp.ClientSession, worker: Worker, number: str) -> str:
    async with http.post(f"{worker.url}/api/v1/meetings/locate", json={"meeting_number": number}) as response:
        return str((await response.json())["worker"])


async def _announce(http: aiohttp.ClientSession, worker: Worker, token: str, title: str) -> int:
    starts = datetime.now(UTC) + timedelta(minutes=5)
    body = {
        "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(minutes=30)).isoformat(),
        "title": {**TEXTS["title"], "en": title}, "text": TEXTS["text"], "emergency_reason": "disk failing",
    }  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    async with http.post(f"{worker.url}/api/v1/maintenance", json=body, headers=headers) as response:
        assert response.status == 201, await response.text()
        return int((await response.json())["id"])


async def _announcement(client: Client, title: str) -> None:
    while True:
        got = await client.expect("announcement")
        if got["title"]["en"] == title:
            return


async def test_an_announcement_on_worker_2_reaches_worker_1_after_silence_and_after_redis_drops_listeners(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    # Only the worker that takes the POST dispatches at once (it is woken); the other's round is a minute off.
    cluster.extra = "bus_health_seconds = 0.3\n[notify]\ndispatch_interval_seconds = 60\n"
    first, second = await asyncio.gather(cluster.start(1), cluster.start(2))
    database = await Database.connect(cluster.database_url)
    try:
        await create_user(
            database, email="root@example.com", password=PASSWORD, role="admin", account_id=None,
            now=datetime.now(UTC),
        )  # fmt: skip
    finally:
        await database.close()
    async with http.post(
        f"{second.url}/api/v1/auth/login", json={"email": "root@example.com", "password": PASSWORD}
    ) as response:
        token = str((await response.json())["token"])
    # A meeting on each worker: rooms are spread by placement, so locate until each worker has one.
    numbers = [NUMBER] + [f"8001002{i:02d}" for i in range(1, 21)]
    places = dict(
        zip(numbers, await asyncio.gather(*(_located(http, first, n) for n in numbers)), strict=True)
    )
    on = {w: next(n for n, owner in places.items() if owner == w) for w in ("1", "2")}
    guests = {"1": Client(), "2": Client()}
    redis = cluster.redis.client()
    try:
        for worker_id, guest in guests.items():
            url = (first if worker_id == "1" else second).url
            await guest.connect(
                url, {"meeting_number": on[worker_id], "passcode": PASSCODE, "display_name": "G"}
            )
            await guest.expect("joined")
        assert (await redis.pubsub_numsub("yunhui:bus")) == [("yunhui:bus", 2)]

        await asyncio.sleep(3.0)  # the scenario itself: ten health intervals with nothing on the bus
        await _announce(http, second, token, "after silence")
        await asyncio.gather(*(_announcement(g, "after silence") for g in guests.values()))
        assert (await first.metrics(http))["yunhui_bus_received_total"] >= 1
        assert (await second.metrics(http))["yunhui_bus_published_total"] >= 1
        for worker in (first, second):  # the silence cost no resubscription (no socket timeout fired)
            assert (await worker.metrics(http))["yunhui_bus_reconnects_total"] == 0

        # Redis drops every subscriber (as for an output buffer over its pubsub limit): both listen again.
        assert await redis.client_kill_filter(_type="pubsub") == 2

        async def resubscribed() -> bool:
            return (await redis.pubsub_numsub("yunhui:bus")) == [("yunhui:bus", 2)]

        await wait_until(resubscribed, within=15)
        assert (await first.metrics(http))["yunhui_bus_reconnects_total"] >= 1
        await _announce(http, second, token, "after a kill")
        await asyncio.gather(*(_announcement(g, "after a kill") for g in guests.values()))
    finally:
        await asyncio.gather(*(g.close() for g in guests.values()), return_exceptions=True)
        await redis.aclose()
