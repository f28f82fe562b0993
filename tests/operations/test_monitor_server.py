"""The monitor inside the real app on 127.0.0.1: the SFU's media ports taken by someone else is an outage."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import select

from rooms.billing.models import Outage
from rooms.incidents.models import Incident, OpenOutage
from tests.conftest import SECRET_KEY
from web.keys import DATABASE
from yunhui.app import create_app
from yunhui.monitor import MONITOR, serving_at
from yunhui.settings import load_settings

BOUND = 30.0  # only bounds a hang; each wait ends on the monitor's own round


def free_port_pair() -> int:
    for _ in range(200):
        low = random.randrange(40000, 60000, 2)
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
        ):
            try:
                a.bind(("127.0.0.1", low))
                b.bind(("127.0.0.1", low + 1))
            except OSError:
                continue
            return low
    raise RuntimeError("no two adjacent free UDP ports")


@contextmanager
def taken(low: int) -> Iterator[None]:
    """Another program holds both media ports of the SFU's range."""
    sockets = []
    try:
        for port in (low, low + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", port))
            sockets.append(s)
        yield
    finally:
        for s in sockets:
            s.close()


async def test_taken_media_ports_are_an_outage_recorded_by_the_running_app(tmp_path: Path) -> None:
    low = free_port_pair()
    settings = load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "sfu": {"udp_port_min": low, "udp_port_max": low + 1},
            "monitor": {"interval_seconds": 0.5, "failures_to_open": 2, "successes_to_close": 2},
        }
    )
    app = await create_app(settings, secret_key=SECRET_KEY)
    await app[DATABASE].upgrade()
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}"
    serving_at(app, url)
    monitor = app[MONITOR]
    db = app[DATABASE]
    try:
        await asyncio.wait_for(monitor.wait_rounds(2), BOUND)
        assert {r.name: r.ok for r in monitor.results.values()} == {
            "database": True,
            "http": True,
            "media": True,
        }

        with taken(low):
            done = monitor.rounds
            await asyncio.wait_for(monitor.wait_rounds(done + 3), BOUND)
            assert not monitor.results["media"].ok
            async with db.session() as session:
                [open_row] = (await session.scalars(select(OpenOutage))).all()
                outage = await session.get(Outage, open_row.outage_id)
                assert outage is not None
                assert (open_row.scope, outage.cause, outage.source, outage.account_id) == (
                    "meetings",
                    "media",
                    "monitor",
                    None,
                )
            async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
                text = await response.text()
            assert 'yunhui_monitor_check_up{check="media"} 0.0' in text
            assert 'yunhui_monitor_check_up{check="database"} 1.0' in text
            assert 'yunhui_monitor_outage_open{scope="meetings"} 1.0' in text
            assert 'yunhui_monitor_outage_open{scope="service"} 0.0' in text

        done = monitor.rounds
        await asyncio.wait_for(monitor.wait_rounds(done + 3), BOUND)
        assert monitor.results["media"].ok
        async with db.session() as session:
            assert (await session.scalars(select(OpenOutage))).all() == []
            [outage] = (await session.scalars(select(Outage))).all()
            [incident] = (await session.scalars(select(Incident))).all()
        assert outage.end > outage.start
        assert (incident.source, incident.outage_id, incident.opened_at) == (
            "monitor",
            outage.id,
            outage.start,
        )
    finally:
        await runner.cleanup()
