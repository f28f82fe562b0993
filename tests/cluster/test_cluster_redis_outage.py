"""S9 (in part): while Redis is stopped, a running meeting goes on (chat between its participants) and new
placements are refused with a clear reason; once Redis is back, locates answer again and the same owner."""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp
import pytest

from tests.cluster.conftest import NUMBER, PASSCODE, Cluster, wait_until
from tests.signaling.live_server import Client

pytestmark = [pytest.mark.timeout(150), pytest.mark.postgres]


async def test_a_redis_outage_keeps_meetings_and_refuses_new_placements(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    first, second = await asyncio.gather(cluster.start(1), cluster.start(2))
    async with http.post(f"{first.url}/api/v1/meetings/locate", json={"meeting_number": NUMBER}) as response:
        owner_id = (await response.json())["worker"]
    owner = first if owner_id == "1" else second
    auth = {"meeting_number": NUMBER, "passcode": PASSCODE}
    host, guest = Client(), Client()
    try:
        await host.connect(owner.url, {**auth, "display_name": "Host"})
        await host.expect("joined")
        await guest.connect(owner.url, {**auth, "display_name": "Guest"})
        await guest.expect("joined")

        os.kill(cluster.redis.process.pid, signal.SIGSTOP)
        try:
            # New placements fail closed, with a reason (the client's command timeout bounds the wait).
            async with http.post(
                f"{first.url}/api/v1/meetings/locate", json={"meeting_number": "800100205"}
            ) as response:
                assert response.status == 503
                assert (await response.json())["error"]["code"] == "unavailable"
            late = Client()
            with pytest.raises(Exception, match="namespace"):
                await late.connect(
                    second.url, {"meeting_number": "800100206", "passcode": PASSCODE, "display_name": "Late"}
                )
            assert late.refusal["data"]["code"] == "unavailable"
            # The running meeting does not need Redis: chat still goes from one participant to the other.
            await guest.sio.emit("chat_send", {"text": "still here", "to": None})
            entry = await guest_sees(host, "still here")
            assert entry["text"] == "still here"
            # ... and the worker says it is not ready while its heartbeats fail.

            async def red() -> bool:
                async with http.get(f"{owner.url}/readyz") as response:
                    return response.status == 503

            await wait_until(red, within=20)
        finally:
            os.kill(cluster.redis.process.pid, signal.SIGCONT)

        async def placed_again() -> str | None:
            async with http.post(
                f"{second.url}/api/v1/meetings/locate", json={"meeting_number": NUMBER}
            ) as response:
                return str((await response.json())["worker"]) if response.status == 200 else None

        assert await wait_until(placed_again, within=20) == owner_id
    finally:
        await host.close()
        await guest.close()


async def guest_sees(client: Client, text: str) -> dict[str, object]:
    async with asyncio.timeout(20):
        while True:
            data = await client.expect("chat")
            if data["entry"]["text"] == text:
                return dict(data["entry"])
