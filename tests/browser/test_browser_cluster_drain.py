"""The SDK follows meeting_moved (issue #20, S7): real Chromium in a meeting worker 2 owns, entered through
nginx; SIGTERM drains worker 2, at the drain timeout the meeting moves to worker 1, and the page joins it
there by itself (Socket.IO under /w/1/, media published again to worker 1's SFU)."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest
from playwright.async_api import async_playwright

from tests.browser.conftest import CHROMIUM_ARGS
from tests.browser.test_browser_cluster import _room_owned_by
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

pytestmark = [pytest.mark.timeout(180), pytest.mark.postgres]


async def test_the_page_follows_its_meeting_to_the_other_worker(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    executable = require_tool("chromium")
    cluster.extra = "drain_timeout_seconds = 1\n"
    workers = dict(zip((1, 2), await asyncio.gather(cluster.start(1), cluster.start(2)), strict=True))
    nginx = await start_nginx(cluster.tmp_path, workers, entry=1)
    try:
        number = await _room_owned_by(http, nginx.url, "2")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                page = await (await browser.new_context(bypass_csp=True)).new_page()
                await page.goto(f"{nginx.url}/m/{number}?pwd={PASSCODE}")
                await page.fill("#display-name", "Moving")
                await page.click("#join:enabled")
                await page.wait_for_selector(".meeting", timeout=60000)
                await page.wait_for_function(
                    "window.yunhui.client.publishPc?.connectionState === 'connected'", timeout=60000
                )
                await page.evaluate(
                    "window.movedTo = []; window.yunhui.client.addEventListener('moved', "
                    "(e) => window.movedTo.push(e.detail.worker))"
                )
                workers[2].process.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(workers[2].process.wait(), 60) == 0
                await page.wait_for_function(
                    "window.yunhui.client.path === '/w/1/socket.io'"
                    " && window.yunhui.client.state === 'joined'"
                    " && window.yunhui.client.publishPc?.connectionState === 'connected'",
                    timeout=60000,
                )
                assert await page.evaluate("window.movedTo") == ["1"]
            finally:
                await browser.close()
        access = (cluster.tmp_path / "nginx" / "access.log").read_text()
        assert "/w/1/socket.io/" in access
    finally:
        await stop_nginx(nginx)
