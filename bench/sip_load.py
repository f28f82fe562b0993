"""The "sip-load" scenario (A18): sipp dials the whole app's gateway at a rate, every call must succeed.

``python -m bench --scenario sip-load [--calls 50 --rate 5 --limit 20]`` starts the app in this process
(SQLite, SIP over UDP on an ephemeral port, one room of capacity 100 with a passcode, one Endpoint), runs
``sipp -sf tests/sip/scenarios/uac_load.xml -r RATE -m CALLS -l LIMIT`` (audio-only PCMU from a pcap, 6.5 s
a call; pcap play needs root), and reports: calls that succeeded and failed (sipp's counts), this process's
CPU time (getrusage, user + system) per second of SIP leg (the legs' summed durations from the call
records), and what is left once every call ended: asyncio tasks, open file descriptors, SIP transactions
and gateway calls against the counts before the run. The suite runs the same with -m 10 (tests/sip/).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from rooms.sip import calls as records
from signaling.sip.gateway import Gateway
from signaling.sip.server import SipServer

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "tests" / "sip" / "scenarios" / "uac_load.xml"
PCAP = ROOT / "tests" / "sip" / "media" / "pcmu_20ms.pcap"
SETTLE = 10.0  # bound on the wait for the last calls' cleanup after sipp exits


@dataclass(frozen=True)
class LoadResult:
    calls: int
    succeeded: int
    failed: int
    wall_seconds: float
    leg_seconds: float
    cpu_seconds: float
    fds_before: int
    fds_after: int
    tasks_before: int
    tasks_after: int
    new_tasks: tuple[str, ...]  # the names of tasks alive after the run that were not before
    transactions_after: tuple[int, int]
    gateway_calls_after: int

    @property
    def cpu_per_leg_pct(self) -> float:
        """Percent of one core one leg takes (CPU seconds per second of leg)."""
        return 100 * self.cpu_seconds / self.leg_seconds if self.leg_seconds else 0.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _tasks() -> set[str]:
    return {t.get_name() for t in asyncio.all_tasks() if not t.done()}


def _count(output: str, label: str) -> int:
    """sipp's final statistics line, e.g. 'Successful call |  0  | 50' -> 50 (the cumulative column)."""
    for line in reversed(output.splitlines()):
        if line.strip().startswith(label):
            numbers = [p.strip() for p in line.split("|")[1:] if p.strip().isdigit()]
            return int(numbers[-1]) if numbers else 0
    return 0


async def run_load(
    server: SipServer,
    gateway: Gateway,
    *,
    service: str,
    user: str,
    secret: str,
    calls: int,
    rate: float,
    limit: int,
    workdir: Path,
    drain: float = 0.0,
) -> LoadResult:
    """Run sipp against ``server`` and measure; returns once every call has ended here (bounded).

    ``drain``: seconds to wait, at most, for the finished transactions to expire (64*T1 after the last
    BYE on UDP) before counting what is left; 0 counts at once (the suite's smoke)."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp is not installed (Debian sip-tester)")
    await asyncio.sleep(0)  # let tasks started by the app's start settle before counting
    fds, tasks, cpu, start = _fds(), _tasks(), _cpu(), time.monotonic()
    started_at = datetime.now(UTC)
    argv = [
        sipp, "-sf", str(SCENARIO), "-s", service, "-au", user, "-ap", secret, "-key", "user", user,
        "-key", "avpcap", str(PCAP), "-i", "127.0.0.1", "-p", "0", "-mi", "127.0.0.1",
        "-r", str(rate), "-m", str(calls), "-l", str(limit), "-nostdin", "-aa",
        "-timeout", "120s", "-timeout_error", "-trace_err", "-error_file", str(workdir / "sipp-errors.log"),
        "-trace_stat", "-fd", "1", "-stf", str(workdir / "sipp-stat.csv"),
        f"127.0.0.1:{server.ports['udp']}",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=workdir
    )
    try:
        output_bytes, _ = await asyncio.wait_for(process.communicate(), 60 + calls / rate * 2)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = output_bytes.decode(errors="replace")
    (workdir / "sipp.out").write_text(output)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE
    while (gateway.live_calls() or server.calls()) and loop.time() < deadline:  # noqa: ASYNC110 (no event says it)
        await asyncio.sleep(0.05)  # the last BYEs' cleanup (bounded)
    await asyncio.sleep(0.2)  # the PlainPeers' sockets close on the loop's next rounds
    deadline = loop.time() + drain
    while server.transactions != (0, 0) and loop.time() < deadline:  # noqa: ASYNC110 (timers end them)
        await asyncio.sleep(0.5)  # the transactions' own timers end them (bounded)
    cpu_used, wall = _cpu() - cpu, time.monotonic() - start
    rows = await records.recent(gateway.db, account_id=None, limit=10 * calls)
    legs = [r for r in rows if r.started_at >= started_at.replace(tzinfo=r.started_at.tzinfo)]
    leg_seconds = sum(
        (r.ended_at - (r.answered_at or r.started_at)).total_seconds() for r in legs if r.ended_at is not None
    )
    return LoadResult(
        calls=calls,
        succeeded=_count(output, "Successful call"),
        failed=_count(output, "Failed call"),
        wall_seconds=round(wall, 2),
        leg_seconds=round(leg_seconds, 1),
        cpu_seconds=round(cpu_used, 2),
        fds_before=fds,
        fds_after=_fds(),
        tasks_before=len(tasks),
        tasks_after=len(after := _tasks()),
        new_tasks=tuple(sorted(after - tasks)),
        transactions_after=server.transactions,
        gateway_calls_after=len(gateway.live_calls()),
    )


async def _main(args: argparse.Namespace) -> LoadResult:
    # The app as in production, in this process: the bench measures its CPU.
    from aiohttp import web

    from rooms.models import Account, Endpoint, Room, Site
    from web.keys import DATABASE
    from yunhui.app import create_app
    from yunhui.settings import load_settings
    from yunhui.sip import SIP_GATEWAY, SIP_SERVER

    tmp = Path(tempfile.mkdtemp(prefix="bench-sip-load-"))
    settings = load_settings(
        overrides={
            "paths": {"var_dir": str(tmp / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "sip": {
                "enabled": True,
                "host": "127.0.0.1",
                "udp_port": 0,
                "tcp_port": None,
                "tls_port": None,
                "digest_algorithms": ["MD5"],
                "calls": {"ivr_languages": ["en"]},
            },
        }
    )
    app = await create_app(settings, secret_key=secrets.token_urlsafe(32))
    db = app[DATABASE]
    await db.upgrade()
    now = datetime.now(UTC)
    async with db.session() as session:
        account = Account(name="Bench", created_at=now)
        session.add(account)
        await session.flush()
        site = Site(account_id=account.id, name="Bench site", created_at=now)
        session.add(site)
        await session.flush()
        session.add(
            Endpoint(
                account_id=account.id,
                site_id=site.id,
                sip_username="bench-room",
                sip_secret="bench-secret-1",
                display_name="Bench room",
                created_at=now,
            )
        )
        session.add(
            Room(
                account_id=account.id,
                name="Load",
                meeting_number="555000111",
                passcode="4321",
                capacity=100,
                created_at=now,
            )
        )
        await session.commit()
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        return await run_load(
            app[SIP_SERVER],
            app[SIP_GATEWAY],
            service="555000111.4321",
            user="bench-room",
            secret="bench-secret-1",
            calls=args.calls,
            rate=args.rate,
            limit=args.limit,
            workdir=tmp,
            drain=args.drain,
        )
    finally:
        await runner.cleanup()


def wanted(argv: list[str]) -> bool:
    """Whether the command line asks for the sip-load scenario only."""
    scenarios = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--scenario"]
    return scenarios == ["sip-load"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench --scenario sip-load")
    parser.add_argument("--scenario", default="sip-load")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--rate", type=float, default=5)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--drain", type=float, default=40.0, help="wait for transactions to expire (s)")
    args = parser.parse_args(argv)
    result = asyncio.run(_main(args))
    for key, value in asdict(result).items():
        print(f"{key}: {value}")
    print(f"cpu_per_leg_pct: {result.cpu_per_leg_pct:.2f}")
    ok = result.succeeded == result.calls and result.failed == 0 and result.gateway_calls_after == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
