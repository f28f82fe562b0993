"""Real Chromium joins a meeting owned by worker 2 through nginx while entering at worker 1 (issue #20, S4).

The page, the SDK and its first Socket.IO connection come from worker 1 (nginx sends everything outside
/w/k/ there); worker 1 refuses the join with wrong_worker naming worker 2, the SDK connects again under
/w/2/socket.io/, and the browser's media run with worker 2's SFU.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from playwright.async_api import async_playwright

from tests.browser.conftest import CHROMIUM_ARGS
from tests.cluster.conftest import (
    PASSCODE,
    Cluster,
    http,
    pg_url,
    postgres_server,
    redis_server,
    start_nginx,
    stop_nginx,
)
from tests.cluster.conftest import cluster as cluster  # noqa: PLC0414  (a fixture, used by name)
from tests.conftest import require_tool

__all__ = ["http", "pg_url", "postgres_server", "redis_server"]

pytestmark = [pytest.mark.timeout(150), pytest.mark.postgres]


async def _room_owned_by(http: aiohttp.ClientSession, url: str, worker: str) -> str:
    """A room number whose meeting worker ``worker`` owns: rooms are located until one is placed there (the
    placement reserves each room's share, so the second room at the latest goes to the other worker)."""
    for i in range(1, 21):
        number = f"8001002{i:02d}"
        async with http.post(f"{url}/api/v1/meetings/locate", json={"meeting_number": number}) as response:
            assert response.status == 200
            if (await response.json())["worker"] == worker:
                return number
    raise AssertionError(f"no room was placed on worker {worker}")


async def test_chromium_entering_at_worker_1_joins_the_meeting_worker_2_owns(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    executable = require_tool("chromium")
    workers = dict(zip((1, 2), await asyncio.gather(cluster.start(1), cluster.start(2)), strict=True))
    nginx = await start_nginx(cluster.tmp_path, workers, entry=1)
    try:
        number = await _room_owned_by(http, nginx.url, "2")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 800})
                page = await context.new_page()
                console: list[str] = []
                page.on("console", lambda message: console.append(message.text))
                await page.goto(f"{nginx.url}/m/{number}?pwd={PASSCODE}")
                await page.fill("#display-name", "Through nginx")
                await page.click("#join:enabled")
                try:
                    await page.wait_for_selector(".meeting", timeout=60000)
                except Exception:
                    log = (cluster.tmp_path / "nginx" / "access.log").read_text()
                    state = await page.evaluate("[window.yunhui?.client?.state, window.yunhui?.client?.path]")
                    output = "".join(workers[1].output[-30:]) + "".join(workers[2].output[-30:])
                    lines = [line for line in log.splitlines() if "socket.io/" in line or "locate" in line]
                    raise AssertionError(f"not joined: {state}\n{console}\n{lines[-10:]}\n{output}") from None
                assert await page.evaluate("window.yunhui.client.path") == "/w/2/socket.io"
                await page.wait_for_function(
                    "window.yunhui.client.publishPc?.connectionState === 'connected'", timeout=60000
                )
            finally:
                await browser.close()
        # Worker 2 hosts the meeting (its registry entry counts it), worker 1 hosts nothing.
        redis = cluster.redis.client()
        try:
            assert (await redis.hgetall("yh:worker:1")).get("meetings") == "0"
        finally:
            await redis.aclose()
        access = (cluster.tmp_path / "nginx" / "access.log").read_text()
        assert "/w/2/socket.io/" in access and "GET /socket.io/" in access
    finally:
        await stop_nginx(nginx)
