"""S11: a cluster configuration that cannot work is refused at start with one clear line."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from yunhui.cluster import udp_slice, worker_overrides
from yunhui.settings import SettingsError, load_settings

pytestmark = pytest.mark.timeout(120)

PG = 'url = "postgresql+asyncpg://yunhui@127.0.0.1:1/yunhui"'
PG_URL = "postgresql+asyncpg://u@127.0.0.1/db"
REDIS = 'redis_url = "redis://127.0.0.1:1/0"'


async def _serve(tmp_path: Path, toml: str, *args: str) -> tuple[int, list[str]]:
    config = tmp_path / "yunhui.toml"
    config.write_text(toml)
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNHUI_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "yunhui", "--config", str(config), "serve", *args,
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        # Generous: it only bounds a hang; a start on a loaded 2-core machine imports for a while.
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode().strip().splitlines()


@pytest.mark.parametrize(
    ("toml", "args", "expected"),
    [
        (f"[workers]\n{REDIS}\n", ("--workers", "2"), "multi-worker needs PostgreSQL"),
        (
            f'[database]\n{PG}\n[workers]\n{REDIS}\ncount = 2\nudp_ranges = ["40000-40100", "40100-40200"]\n',
            ("--worker", "1"),
            "the UDP slices 40000-40100 and 40100-40200 overlap",
        ),
        (f"[database]\n{PG}\n[workers]\n{REDIS}\ncount = 2\n", ("--worker", "3"), "worker 3 is not one of"),
    ],
)
async def test_serve_refuses_with_one_line(
    tmp_path: Path, toml: str, args: tuple[str, ...], expected: str
) -> None:
    code, lines = await _serve(tmp_path, toml, *args)
    assert code == 2
    assert len(lines) == 1, lines
    assert expected in lines[0]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"workers": {"redis_url": "redis://127.0.0.1:1/0"}}, "multi-worker needs PostgreSQL"),
        ({"workers": {"count": 2}}, "need workers.redis_url"),
        ({"workers": {"worker_id": 1}}, "need workers.redis_url"),
        (
            {"database": {"url": PG_URL}, "workers": {"redis_url": "http://x"}},
            "workers.redis_url: must start with",
        ),
        (
            {"database": {"url": PG_URL}, "workers": {"redis_url": "redis://x", "udp_ranges": ["1-2"]}},
            "not a port",
        ),
    ],
)
def test_settings_refuse_a_cluster_that_cannot_work(overrides: dict[str, object], expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        load_settings(overrides=overrides)


def test_worker_layout_splits_the_udp_range_and_numbers_the_ports() -> None:
    settings = load_settings(
        overrides={
            "database": {"url": "postgresql+asyncpg://u@127.0.0.1/db"},
            "workers": {"redis_url": "redis://127.0.0.1/0", "count": 2, "base_port": 9001},
            "sfu": {"udp_port_min": 40000, "udp_port_max": 40999},
        }
    )
    assert udp_slice(settings, 1) == (40000, 40499)
    assert udp_slice(settings, 2) == (40500, 40999)
    second = worker_overrides(settings, 2)
    assert second["server"] == {"port": 9002, "tls_port": 0}
    assert second["sfu"] == {"udp_port_min": 40500, "udp_port_max": 40999}
    assert second["workers"] == {"worker_id": 2}
    # The worker's own settings load (its slice is inside the range, its id known).
    workers = {"redis_url": "redis://127.0.0.1/0", "count": 2, "worker_id": 2}
    mine = load_settings(overrides={**second, "database": {"url": PG_URL}, "workers": workers})
    assert mine.server.port == 9002 and mine.sfu.udp_port_min == 40500


def test_explicit_slices_are_used_and_must_be_enough() -> None:
    settings = load_settings(
        overrides={
            "database": {"url": "postgresql+asyncpg://u@127.0.0.1/db"},
            "workers": {
                "redis_url": "redis://127.0.0.1/0",
                "count": 2,
                "udp_ranges": ["41000-41099", "40000-40099"],
            },
        }
    )
    assert udp_slice(settings, 2) == (40000, 40099)
    with pytest.raises(SettingsError, match="2 workers need as many UDP slices"):
        load_settings(
            overrides={
                "database": {"url": "postgresql+asyncpg://u@127.0.0.1/db"},
                "workers": {"redis_url": "redis://127.0.0.1/0", "count": 2, "udp_ranges": ["41000-41099"]},
            }
        )


def test_one_process_needs_no_redis() -> None:
    settings = load_settings()
    assert settings.workers.redis_url is None and settings.workers.worker_id is None
    assert udp_slice(settings, 1) is None
