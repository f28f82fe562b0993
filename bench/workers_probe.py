"""B1 of research/scale-out.md §5 under pytest (the cluster tests' fixtures: PostgreSQL, Redis, worker
subprocesses): guests join 20 rooms x 10 at rising rates, with 1 worker and with 2; run by bench/workers.py.

Each guest locates its meeting (``POST /api/v1/meetings/locate`` on a worker, alternating) and joins on the
owner over WebSocket; a join's time runs from the locate to ``joined``. Per step: joins/s offered, join
p50/p95, server CPU ms per join per worker (/proc), the load generator's and redis-server's CPU, and the
machine's busy share. Workers are pinned with sched_setaffinity: 1 worker on core 0 and this process on
core 1; 2 workers on cores 0 and 1 (this process unpinned: it shares them).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from bench import procstat
from bench.stats import percentile
from tests.cluster.conftest import PASSCODE, Cluster

pytestmark = [pytest.mark.timeout(900)]

ROOMS, GUESTS = 20, 10
RATES = [int(r) for r in os.environ.get("BENCH_WORKERS_RATES", "10,20,30,40").split(",")]


async def _join(
    http: aiohttp.ClientSession, entry: str, urls: dict[str, str], number: str, *, name: str,
    results: list[float], errors: list[str],
) -> socketio.AsyncClient:  # fmt: skip
    client: Any = socketio.AsyncClient(reconnection=False)
    joined = asyncio.get_running_loop().create_future()

    def on_joined(data: object) -> None:
        if not joined.done():
            joined.set_result(data)

    client.on("joined", on_joined)
    refusal: list[Any] = []
    client.on("connect_error", refusal.append)
    start = time.perf_counter()
    try:
        async with http.post(f"{entry}/api/v1/meetings/locate", json={"meeting_number": number}) as r:
            worker = str((await r.json())["worker"])
        await client.connect(
            urls[worker], auth={"meeting_number": number, "passcode": PASSCODE, "display_name": name},
            transports=["websocket"], wait_timeout=20,
        )  # fmt: skip
        await asyncio.wait_for(joined, 20)
        results.append((time.perf_counter() - start) * 1000)
    except Exception as exc:  # a refused or timed-out join is a result of the step, not a crash
        errors.append(f"{type(exc).__name__}: {exc} {refusal[-1] if refusal else ''}"[:200])
    return client


async def _step(cluster: Cluster, rate: int) -> dict[str, Any]:
    urls = {str(k): w.url for k, w in cluster.workers.items()}
    entries = list(urls.values())
    pids = {k: w.process.pid for k, w in cluster.workers.items()}
    joins = ROOMS * GUESTS
    results: list[float] = []
    errors: list[str] = []
    before = {k: procstat.cpu_times(p).total for k, p in pids.items()}
    me = procstat.cpu_times(os.getpid()).total
    redis_pid = cluster.redis.process.pid
    redis_before = procstat.cpu_times(redis_pid).total
    busy = procstat.machine_busy_seconds()
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        tasks = []
        for n in range(joins):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            number = f"8001002{n % ROOMS:02d}"
            entry = entries[n % len(entries)]
            join = _join(http, entry, urls, number, name=f"g{n}", results=results, errors=errors)
            tasks.append(asyncio.create_task(join))
        clients = await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        used = {k: procstat.cpu_times(p).total - before[k] for k, p in pids.items()}
        ok, ncpu = max(1, len(results)), os.cpu_count() or 1
        row = {
            "workers": len(pids), "rate": rate, "joins": joins, "succeeded": len(results),
            "p50_ms": percentile(results, 50), "p95_ms": percentile(results, 95),
            "cpu_ms_per_join": {k: 1000 * used[k] / max(1, len(results)) for k in used},
            "cpu_ms_per_join_total": 1000 * sum(used.values()) / max(1, len(results)),
            "loadgen_cpu_pct": 100 * (procstat.cpu_times(os.getpid()).total - me) / elapsed,
            "redis_cpu_ms_per_join": 1000 * (procstat.cpu_times(redis_pid).total - redis_before) / ok,
            "machine_busy_pct": 100 * (procstat.machine_busy_seconds() - busy) / elapsed / ncpu,
            "errors": errors[:3],
        }  # fmt: skip
        # An explicit leave frees the seat at once (a dropped socket keeps it for the reconnect grace, and
        # the next step's guests would find the rooms full).
        await asyncio.gather(*(_leave(c) for c in clients), return_exceptions=True)
    return row


async def _run(cluster: Cluster, count: int) -> None:
    cluster.extra = "[signaling]\nempty_meeting_grace_seconds = 1\n"
    workers = await asyncio.gather(*(cluster.start(k) for k in range(1, count + 1)))
    cores = sorted(os.sched_getaffinity(0))
    if count == 1 and len(cores) >= 2:
        os.sched_setaffinity(workers[0].process.pid, {cores[0]})
        os.sched_setaffinity(0, {cores[1]})
    else:
        for i, worker in enumerate(workers):
            os.sched_setaffinity(worker.process.pid, {cores[i % len(cores)]})
    out = Path(os.environ.get("BENCH_WORKERS_OUT", "workers.jsonl"))
    try:
        for rate in RATES:
            row = await _step(cluster, rate)
            row["rss_mb"] = {str(w.worker_id): procstat.rss_bytes(w.process.pid) / 2**20 for w in workers}
            await asyncio.to_thread(_append, out, row)
            await asyncio.sleep(2)  # between steps only: the last step's leaves settle (not a measurement)
    finally:
        os.sched_setaffinity(0, set(cores))


@pytest.mark.parametrize("count", [int(c) for c in os.environ.get("BENCH_WORKERS_COUNTS", "1,2").split(",")])
async def test_workers_joins(cluster: Cluster, count: int) -> None:
    await _run(cluster, count)


def _append(path: Path, row: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


async def _leave(client: socketio.AsyncClient) -> None:
    if client.connected:
        await client.emit("leave")
        await asyncio.sleep(0.05)  # the leave goes out before the socket closes (a bench, not a test)
    await client.disconnect()
