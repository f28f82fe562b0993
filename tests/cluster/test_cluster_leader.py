"""S8: the jobs that must run once run in one worker, the billing runs (one audit entry each, start and end)
never overlap; after kill -9 of the leader another leads within 6 s."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
from datetime import datetime

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import select

from rooms.audit.models import AuditEntry
from rooms.database import Database
from tests.cluster.conftest import Cluster, Worker, wait_until
from yunhui.leader import LOCK_KEY

pytestmark = [pytest.mark.timeout(120), pytest.mark.postgres]

BILLING = 'yunhui_job_runs_total{job="billing"}'


async def _lock_holders(database_url: str) -> int:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        # A bigint advisory key is shown as classid (high 32 bits) and objid (low 32 bits), objsubid 1.
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = $1 AND objid = $2 AND objsubid = 1",
            LOCK_KEY >> 32,
            LOCK_KEY & 0xFFFFFFFF,
        )
        return count
    finally:
        await conn.close()


async def test_billing_runs_in_one_worker_and_another_leads_after_kill_9(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    cluster.extra = "[jobs]\nbilling_interval_seconds = 1\n"
    first, second = await asyncio.gather(cluster.start(1), cluster.start(2))

    async def leaders() -> list[Worker] | None:
        metrics = [await w.metrics(http) for w in (first, second)]
        leading = [
            w for w, m in zip((first, second), metrics, strict=True) if m["yunhui_cluster_leader"] == 1
        ]
        return leading if len(leading) == 1 else None

    (leader,) = await wait_until(leaders)
    follower = second if leader is first else first
    # The leader runs billing every second; the follower skips every run while the other leads.
    await wait_until(lambda: _billing_at_least(leader, http, 3))
    follower_metrics = await follower.metrics(http)
    assert follower_metrics[BILLING] == 0
    assert follower_metrics['yunhui_job_skipped_total{job="billing"}'] > 0
    assert await _lock_holders(cluster.database_url) == 1
    # `yunhui workers` lists both, serving, and names the leader.
    listing = await _workers_command(cluster)
    rows = {line.split()[0]: line for line in listing[1:]}
    assert set(rows) == {"1", "2"} and all(" serving " in row for row in rows.values()), listing
    assert rows[str(leader.worker_id)].endswith("yes") and not rows[str(follower.worker_id)].endswith("yes")
    assert (await leader.metrics(http))[
        f'yunhui_worker_state{{state="serving",worker="{leader.worker_id}"}}'
    ] == 1

    await leader.stop(signal.SIGKILL)
    killed_at = time.monotonic()

    async def follower_leads() -> bool:
        return (await follower.metrics(http))["yunhui_cluster_leader"] == 1

    await wait_until(follower_leads, within=10, every=0.05)
    took = time.monotonic() - killed_at
    assert took < 6, f"the survivor took {took:.1f} s to lead"
    await wait_until(lambda: _billing_at_least(follower, http, 1))
    assert await _lock_holders(cluster.database_url) == 1

    # An audit entry per run, with its start and end: the runs never overlap, and a worker's runs all
    # come before the other's (the leader's until its kill, then the survivor's).
    runs = await _billing_runs(cluster.database_url)
    assert len(runs) >= 4, runs
    for (_, ended, _), (started, _, _) in itertools.pairwise(runs):
        assert started >= ended, runs
    workers = [worker for _, _, worker in runs]
    first_run_of_follower = workers.index(f"w{follower.worker_id}")
    assert set(workers[:first_run_of_follower]) == {f"w{leader.worker_id}"}
    assert set(workers[first_run_of_follower:]) == {f"w{follower.worker_id}"}


async def _billing_runs(database_url: str) -> list[tuple[datetime, datetime, str]]:
    database = await Database.connect(database_url)
    try:
        async with database.session() as session:
            entries = (
                await session.scalars(
                    select(AuditEntry).where(
                        AuditEntry.object_type == "job", AuditEntry.object_id == "billing"
                    )
                )
            ).all()
    finally:
        await database.close()
    assert all(e.actor == "system: billing run" and e.action == "run" for e in entries)
    runs = [
        (datetime.fromisoformat(e.changes["started_at"]), datetime.fromisoformat(e.changes["ended_at"]),
         str(e.changes["worker"]))
        for e in entries
    ]  # fmt: skip
    return sorted(runs)


async def _billing_at_least(worker: Worker, http: aiohttp.ClientSession, runs: int) -> bool:
    return (await worker.metrics(http)).get(BILLING, 0) >= runs


async def _workers_command(cluster: Cluster) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNHUI_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "yunhui", "--config", str(cluster.config()), "workers",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode()
    return out.decode().strip().splitlines()
