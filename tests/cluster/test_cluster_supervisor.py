"""`yunhui serve --workers 2`: two workers on their own ports register; SIGTERM drains and stops both."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from tests.cluster.conftest import START_TIMEOUT, Cluster, free_port

pytestmark = [pytest.mark.timeout(150), pytest.mark.postgres]


async def test_serve_workers_starts_two_and_stops_them(cluster: Cluster) -> None:
    base = free_port()  # the worker ports are base and base + 1 (a collision only fails this run)
    cluster.extra = f"base_port = {base}\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNHUI_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "yunhui", "--config", str(cluster.config()), "serve", "--workers", "2",
        cwd=cluster.tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    redis = cluster.redis.client()
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while sum(line.startswith("Listening on http://") for line in seen) < 2:
                line = (await proc.stdout.readline()).decode()
                assert line, "".join(seen)
                seen.append(line)
        assert (
            f"worker 1: HTTP 127.0.0.1:{base}\n" in seen and f"worker 2: HTTP 127.0.0.1:{base + 1}\n" in seen
        )
        assert sorted(await redis.keys("yh:worker:*")) == ["yh:worker:1", "yh:worker:2"]
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, "".join(seen) + out.decode()
        assert out.decode().count("drained in") == 2  # each worker drained (nothing to wait for) and exited
        assert await redis.keys("yh:worker:*") == []
    finally:
        await redis.aclose()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
