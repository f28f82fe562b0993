"""The meeting server alone in one process: Socket.IO + the Conference machinery + SQLite + the SFU, no UI.

    python -m bench.meeting_server --port 8091 --workdir var/bench/joins --meeting-number 1234567890

Creates (once) an account and one room with a passcode and a capacity large enough for the join benchmark,
then serves the meeting protocol (docs/protocol.md) on ``/socket.io/`` the way ``yunhui serve`` composes it:
signaling.MeetingServer over python-socketio's AsyncServer on aiohttp, rooms' SQLite store, sfu.Sfu. Runs on
uvloop. ``GET /ready`` answers once the database is migrated and the room exists.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from sqlalchemy import select

from rooms.database import Database
from rooms.models import Account, Room
from rooms.settings import RoomsSettings
from sfu.settings import SfuSettings
from sfu.sfu import Sfu
from signaling.server import MeetingServer, socketio_server
from signaling.settings import SignalingSettings
from signaling.store import RoomsMeetingStore

PASSCODE = "246810"
CAPACITY = 1000


def now() -> datetime:
    return datetime.now(UTC)


async def ensure_room(db: Database, meeting_number: str) -> None:
    async with db.session() as session:
        found = await session.scalar(select(Room).where(Room.meeting_number == meeting_number))
        if found is not None:
            return
        account = Account(name="bench", created_at=now())
        session.add(account)
        await session.flush()
        session.add(
            Room(
                account_id=account.id,
                name="bench",
                meeting_number=meeting_number,
                passcode=PASSCODE,
                capacity=CAPACITY,
                max_session_minutes=None,
                lobby=False,
                created_at=now(),
            )
        )
        await session.commit()


async def serve(port: int, workdir: Path, meeting_number: str) -> None:
    db = await Database.connect(f"sqlite+aiosqlite:///{workdir / 'bench.db'}")
    await db.upgrade()
    await ensure_room(db, meeting_number)
    sfu = Sfu(SfuSettings())
    sio = socketio_server(cors_allowed_origins=[])
    meetings = MeetingServer(
        sio,
        sfu=sfu,
        store=RoomsMeetingStore(db, RoomsSettings()),
        settings=SignalingSettings(files_dir=workdir / "files"),
        secret_key="bench-secret-key-not-for-production",
        clock=now,
    )
    app = web.Application()
    sio.attach(app)

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/ready", ready)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    meetings.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await meetings.close()
        await runner.cleanup()
        await sfu.close()
        await db.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.meeting_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--meeting-number", required=True)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.port, args.workdir, args.meeting_number))
    else:
        uvloop.run(serve(args.port, args.workdir, args.meeting_number))


if __name__ == "__main__":
    main()
