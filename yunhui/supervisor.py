"""``yunhui serve --workers N``: N worker processes of one machine, each ``yunhui serve --worker k``.

A thin parent for a quick start and the tests; in production systemd runs the same processes as the
template unit ``yunhui@k`` (deploy/yunhui@.service) and restarts a crashed one. This parent does not restart
workers: it forwards SIGTERM and SIGINT (each worker then drains), and exits with the worst exit code.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import click

from yunhui.bootstrap import ensure_secret_key
from yunhui.cluster import worker_overrides
from yunhui.settings import Settings


def supervise(settings: Settings, global_argv: list[str], count: int) -> int:
    """Check the layout, start the workers and wait for them; the exit code of the command."""
    workers = settings.workers
    if workers.redis_url is None:
        click.echo("yunhui: configuration error: --workers needs workers.redis_url (Redis)", err=True)
        return 2
    ids = range(workers.first_id, workers.first_id + count)
    try:
        layouts = {k: worker_overrides(settings, k) for k in ids}
    except ValueError as exc:
        click.echo(f"yunhui: configuration error: {exc}", err=True)
        return 2
    if settings.security.secret_key is None:
        # Made once here: workers starting at once would race to create it.
        ensure_secret_key(settings.paths.var_dir)
    for k, layout in layouts.items():
        ports = layout.get("sfu", {})
        udp = f", UDP {ports['udp_port_min']}-{ports['udp_port_max']}" if ports else ""
        click.echo(f"worker {k}: HTTP {settings.workers.address}:{layout['server']['port']}{udp}")
    sys.stdout.flush()
    return asyncio.run(_run(list(ids), global_argv, count))


async def _run(ids: list[int], global_argv: list[str], count: int) -> int:
    # The workers compute their slice from the count, which may have come from the command line only.
    env = {**os.environ, "YUNHUI_WORKERS__COUNT": str(count)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "yunhui", *global_argv, "serve", "--worker", str(k), env=env
        )
        for k in ids
    ]
    loop = asyncio.get_running_loop()

    def forward(sig: signal.Signals) -> None:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, forward, sig)
    codes = await asyncio.gather(*(proc.wait() for proc in procs))
    return max((abs(code) for code in codes), default=0)
