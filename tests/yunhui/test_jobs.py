from __future__ import annotations

import asyncio

import aiohttp

from tests.conftest import RunningServer
from yunhui.app import BILLING_JOB
from yunhui.jobs import PeriodicJob


async def test_failing_run_is_counted_and_the_job_goes_on() -> None:
    calls = 0
    second_run = asyncio.Event()

    async def job() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database away")
        second_run.set()

    periodic = PeriodicJob("test", job, interval=0.001)
    periodic.start()
    async with asyncio.timeout(5):
        await second_run.wait()
    await periodic.close()
    await periodic.close()  # idempotent
    assert periodic.failures == 1
    assert calls >= 2


async def test_server_runs_billing_at_start(server: RunningServer, http: aiohttp.ClientSession) -> None:
    job = server.app[BILLING_JOB]
    async with asyncio.timeout(20):
        await job.wait_for_run()
    assert job.runs >= 1
    assert job.failures == 0
