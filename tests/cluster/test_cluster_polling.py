"""S5 long-polling (issue #20, research/scale-out.md §4.2, §5): Engine.IO polling through nginx under /w/k/
needs no sticky sessions; without the prefix, round robin sends a session's next request to the other
worker and it is refused with 400 "Invalid session". Scaled: the polling client stays 8 s and sends a chat
message every second (each one a new HTTP request through nginx) instead of 60 s of pings at 25 s."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import aiohttp
import pytest
import socketio

from tests.cluster.conftest import NUMBER, PASSCODE, Cluster, start_nginx, stop_nginx
from tests.signaling.live_server import Client

pytestmark = [pytest.mark.timeout(120), pytest.mark.postgres]

AUTH = {"meeting_number": NUMBER, "passcode": PASSCODE}


async def test_polling_through_nginx_under_w_k_and_invalid_session_without_it(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    first, second = await asyncio.gather(cluster.start(1), cluster.start(2))
    async with http.post(f"{first.url}/api/v1/meetings/locate", json={"meeting_number": NUMBER}) as response:
        owner_id = str((await response.json())["worker"])
    owner = first if owner_id == "1" else second
    nginx = await start_nginx(cluster.tmp_path, cluster.workers)  # the any-worker route: round robin
    poller = socketio.AsyncClient(reconnection=False)
    disconnected = asyncio.Event()
    poller.on("disconnect", lambda *_: disconnected.set())
    joined = asyncio.Event()
    poller.on("joined", lambda *_: joined.set())
    listener = Client()

    access_log = Path(cluster.tmp_path) / "nginx" / "access.log"
    stray = socketio.AsyncClient(reconnection=False)
    try:
        await listener.connect(owner.url, {**AUTH, "display_name": "Listener"})
        await listener.expect("joined")
        await poller.connect(
            nginx.url, auth={**AUTH, "display_name": "Poller"}, transports=["polling"],
            socketio_path=f"/w/{owner_id}/socket.io", wait_timeout=20,
        )  # fmt: skip
        await asyncio.wait_for(joined.wait(), 20)
        assert poller.transport() == "polling"
        for i in range(8):
            await poller.emit("chat_send", {"text": f"poll {i}", "to": None})
            while True:
                name, data = await asyncio.wait_for(listener.events.get(), 20)
                if name == "chat":
                    assert data["entry"]["text"] == f"poll {i}", data
                    break
            await asyncio.sleep(1.0)  # the scaled stay: a new long-poll cycle each second
        assert not disconnected.is_set()
        polls = [line for line in access_log.read_text().splitlines() if f"/w/{owner_id}/socket.io/" in line]
        assert len(polls) >= 10 and not [line for line in polls if '" 400 ' in line], polls[-5:]

        # The counter-test: the same client without /w/k/, round robin over both workers: the session's next
        # request reaches the worker that never saw it, which answers 400 "Invalid session". Whether the
        # client notices at once or only at its next ping does not matter: the proxy's log shows the refusal.
        with contextlib.suppress(socketio.exceptions.ConnectionError):
            await stray.connect(
                nginx.url, auth={**AUTH, "display_name": "Stray"}, transports=["polling"], wait_timeout=3
            )
        deadline = time.monotonic() + 20
        refused: list[str] = []
        while not refused and time.monotonic() < deadline:
            log = access_log.read_text()
            refused = [line for line in log.splitlines() if " /socket.io/" in line and '" 400 ' in line]
            if not refused:
                await asyncio.sleep(0.1)  # the proxy's log file signals nothing: read it until the deadline
        assert refused, log.splitlines()[-5:]
    finally:
        # The proxy goes first: a polling client's disconnect otherwise waits for its pending long poll.
        await stop_nginx(nginx)
        await asyncio.gather(
            stray.disconnect(), poller.disconnect(), listener.close(), return_exceptions=True
        )
