"""Viewers served per core: the web app's HLS serving of a live channel (playlist + segment requests with
viewer session tokens, each updating its session), measured as the server process's CPU per request.

    python -m bench.live_viewers --out docs/benchmarks.md [--seconds 10] [--clients 32] [--viewers 200]

The server (the REST API with the live routes, SQLite in WAL mode, as a single machine runs it) is a child
process; the load generator here runs its clients in a closed loop, so the figure is CPU per request and
needs no idle machine. A player asks for the playlist and one segment per target duration (2 s): one
request a second per viewer, the divisor of "viewers per core".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiohttp

from bench import sections

SEGMENT_BYTES = 625_000  # 2 s at 2.5 Mbit/s
SECRET = "bench-live-viewers-secret-0123456789abcdef"
REQUESTS_PER_VIEWER_S = 1.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _seed(db_url: str, root: Path) -> int:
    from rooms.database import Database
    from rooms.live import store
    from rooms.models import Account

    now = datetime.now(UTC)
    db = await Database.connect(db_url)
    try:
        await db.upgrade()
        async with db.session() as session:
            account = Account(name="Bench", created_at=now)
            session.add(account)
            await session.commit()
        fields = store.ChannelFields(title="Bench", language="en", source_kind="playlist")
        channel = await store.create(db, account_id=account.id, fields=fields, now=now)
        await store.act(db, channel.id, "go_live", now=now, directory="run")
    finally:
        await db.close()
    run = root / "run"
    run.mkdir(parents=True)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
    for n in range(1, 6):
        (run / f"seg-{n:06d}.ts").write_bytes(bytes([0x47]) * SEGMENT_BYTES)
        stamp = f"{now:%Y-%m-%dT%H:%M:%S}.000Z"
        lines += [f"#EXT-X-PROGRAM-DATE-TIME:{stamp}", "#EXTINF:2.000,", f"seg-{n:06d}.ts"]
    (run / "index.m3u8").write_text("\n".join(lines) + "\n")
    (run / "event.m3u8").write_text("\n".join([*lines[:3], "#EXT-X-PLAYLIST-TYPE:EVENT", *lines[3:]]) + "\n")
    return channel.id


def serve(db_url: str, root: Path, port_file: Path) -> None:
    """The child: the API with the live routes on 127.0.0.1, HLS files from ``root``."""
    from aiohttp import web

    from rooms.database import Database
    from web.api import create_api
    from web.api.live import LIVE_SERVICE, LiveService
    from web.api.live_activity import ACTIVITY, ViewerActivity
    from yunhui.jobs import PeriodicJob

    class Files:
        def __init__(self, root: Path) -> None:
            self.root = root

        def status(self, channel_id: int) -> None:
            return None

    async def main() -> None:
        db = await Database.connect(db_url)
        api = create_api(db, secret_key=SECRET, clock=lambda: datetime.now(UTC))
        api[LIVE_SERVICE] = cast(LiveService, Files(root))  # serving needs only the root
        activity = ViewerActivity()
        api[ACTIVITY] = activity  # as yunhui/live.py wires it: written once a second
        flusher = PeriodicJob("flush", lambda: activity.flush(db), 1.0)
        flusher.start()
        app = web.Application()
        app.add_subapp("/api/v1", api)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        await asyncio.to_thread(port_file.write_text, str(runner.addresses[0][1]))
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())


async def _load(url: str, channel_id: int, args: argparse.Namespace) -> tuple[int, int, float]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.clients)) as http:
        tokens = []
        for i in range(args.viewers):
            body = {"viewer_id": f"bench-viewer-{i:05d}"}
            async with http.post(f"{url}/live/{channel_id}/sessions", json=body) as r:
                assert r.status == 201, await r.text()
                tokens.append((await r.json())["s"])
        requests = 0
        received = 0
        deadline = time.monotonic() + args.seconds

        async def client(k: int) -> None:
            nonlocal requests, received
            n = k
            while time.monotonic() < deadline:
                token = tokens[n % len(tokens)]
                n += args.clients
                async with http.get(f"{url}/live/{channel_id}/playlist.m3u8?s={token}") as r:
                    received += len(await r.read())
                segment = f"{url}/live/{channel_id}/segments/seg-{1 + n % 5:06d}.ts?s={token}"
                async with http.get(segment) as r:
                    assert r.status == 200
                    received += len(await r.read())
                requests += 2

        started = time.monotonic()
        await asyncio.gather(*(client(k) for k in range(args.clients)))
        return requests, received, time.monotonic() - started


def run(args: argparse.Namespace) -> list[str]:
    work = Path(tempfile.mkdtemp(prefix="bench-live-"))
    try:
        db_url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
        channel_id = asyncio.run(_seed(db_url, work / "live"))
        port_file = work / "port"
        command = [sys.executable, "-m", "bench.live_viewers", "--serve", db_url, str(work / "live")]
        child = subprocess.Popen([*command, str(port_file)])
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text():
                assert time.monotonic() < deadline and child.poll() is None, "the server did not start"
                time.sleep(0.1)
            url = f"http://127.0.0.1:{port_file.read_text()}/api/v1"
            before = _cpu_seconds(child.pid)
            requests, received, wall = asyncio.run(_load(url, channel_id, args))
            cpu = _cpu_seconds(child.pid) - before
        finally:
            child.terminate()
            child.wait(10)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    per_core = requests / cpu
    load = os.getloadavg()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        "## Live viewers served per core (issue #18)",
        "",
        f"`python -m bench.live_viewers --seconds {args.seconds} --clients {args.clients} "
        f"--viewers {args.viewers} --out docs/benchmarks.md` — {stamp}, {platform.node()}, "
        f"Python {platform.python_version()}; load "
        f"average {load[0]:.2f} (1 min) on {os.cpu_count()} cores when it ended (a shared machine).",
        "",
        "The web app serving one live channel's HLS (playlist rewritten with the viewer's token, 625 kB "
        "segments by sendfile, every request moving its viewer session, written once a second in one SQLite "
        "transaction); closed loop, "
        f"{args.clients} clients over {args.viewers} viewer sessions.",
        "",
        "| | |",
        "|---|---:|",
        f"| requests served | {requests} in {wall:.1f} s |",
        f"| server CPU | {cpu:.2f} core-s ({1000 * cpu / requests:.2f} ms per request) |",
        f"| requests per core-second | {per_core:.0f} |",
        f"| **viewers per core** (one request a second each) | **{per_core / REQUESTS_PER_VIEWER_S:.0f}** |",
        f"| bytes sent | {received / 1e6:.0f} MB ({8 * received / wall / 1e9:.2f} Gbit/s over loopback) |",
        "",
        "Per request: the token check, the channel's row, the playlist read and rewrite, aiohttp. With one "
        "write transaction per request (before web/api/live_activity.py) the same run gave about 80 viewers "
        "per core. Behind nginx, segments can be served by nginx with `auth_request` to the app "
        "(research/recording.md §4) and the playlists stay here.",
        "",
    ]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        serve(argv[1], Path(argv[2]), Path(argv[3]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.live_viewers")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True)
    args: Any = parser.parse_args(argv)
    lines = run(args)
    sections.merge_into(args.out, "live-viewers", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
