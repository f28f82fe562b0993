"""Issue #14 end to end: two guests in a meeting, `kill -9` of `yunhui serve`, a start on the same data.

The restart must close the meeting and both stays at the last heartbeat with `server_crash`, record the
interruption as an outage, and billing must not meter the crashed stays past that heartbeat.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from rooms.billing.inputs import stays_of
from rooms.billing.metering import meter_month
from rooms.billing.models import Outage
from rooms.database import Database
from rooms.models import Account, Attendance, Meeting, Room, Worker
from tests.signaling.live_server import Client

pytestmark = pytest.mark.timeout(60)

NUMBER, PASSCODE = "700100200", "4711"
HEARTBEAT_SECONDS = 0.2


async def _start(tmp_path: Path) -> tuple[asyncio.subprocess.Process, str, list[str]]:
    config = tmp_path / "yunhui.toml"
    config.write_text(
        '[server]\nhost = "127.0.0.1"\nport = 0\ntls_port = 0\n'
        f"[jobs]\nheartbeat_interval_seconds = {HEARTBEAT_SECONDS}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNHUI_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "yunhui", "--config", str(config), "serve",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        if not line:
            raise AssertionError("serve exited early:\n" + "".join(seen))
        seen.append(line)
        if line.startswith("Listening on http://"):
            return proc, line.split()[-1], seen


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'yunhui.db'}")
    await database.upgrade()
    now = datetime.now(UTC)
    async with database.session() as session:
        account = Account(name="Acme", created_at=now)
        session.add(account)
        await session.flush()
        session.add(
            Room(
                account_id=account.id, name="Board room", meeting_number=NUMBER, passcode=PASSCODE,
                capacity=10, created_at=now,
            )
        )  # fmt: skip
        await session.commit()
    try:
        yield database
    finally:
        await database.close()


async def _beat_after_joins(db: Database) -> Worker:
    """The server's worker row once it has written a heartbeat after both joins and claimed the meeting."""
    async with asyncio.timeout(10):
        while True:
            async with db.session() as session:
                joined = (await session.scalars(select(Attendance.joined_at))).all()
                meeting = await session.scalar(select(Meeting))
                worker = await session.scalar(select(Worker).order_by(Worker.id.desc()))
            if (
                len(joined) == 2
                and meeting is not None
                and worker is not None
                and meeting.worker_id == worker.id
                and worker.beat_at > max(joined)
            ):
                return worker
            await asyncio.sleep(HEARTBEAT_SECONDS / 4)


async def test_kill_9_then_restart_closes_the_meeting_at_the_last_heartbeat(
    tmp_path: Path, db: Database
) -> None:
    proc, url, seen = await _start(tmp_path)
    guests = [Client(), Client()]
    try:
        for i, guest in enumerate(guests):
            auth = {"meeting_number": NUMBER, "passcode": PASSCODE, "display_name": f"Guest {i}"}
            await guest.connect(url, auth)
            await guest.expect("joined")
        await _beat_after_joins(db)
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for guest in guests:
            await guest.close()

    async with db.session() as session:
        crashed = await session.scalar(select(Worker).order_by(Worker.id.desc()))
        assert crashed is not None and crashed.stopped_at is None
        last_beat = crashed.beat_at
        assert (await session.scalar(select(Meeting))).ended_at is None  # type: ignore[union-attr]

    proc, url, seen = await _start(tmp_path)
    try:
        restarted_at = datetime.now(UTC)
        async with db.session() as session:
            meeting = await session.scalar(select(Meeting))
            assert meeting is not None
            assert (meeting.ended_at, meeting.end_reason) == (last_beat, "server_crash")
            stays = (await session.scalars(select(Attendance).order_by(Attendance.id))).all()
            assert [(a.left_at, a.leave_reason) for a in stays] == [(last_beat, "server_crash")] * 2
            outages = (await session.scalars(select(Outage))).all()
            assert [(o.account_id, o.start, o.cause) for o in outages] == [
                (meeting.account_id, last_beat, "server_crash")
            ]
            assert last_beat < outages[0].end <= restarted_at
            workers = (await session.scalars(select(Worker).order_by(Worker.id))).all()
            assert len(workers) == 2 and workers[0].id == crashed.id
            # Billing for a period long after the crash meters the stays up to the heartbeat only.
            lo, hi = meeting.started_at - timedelta(hours=1), restarted_at + timedelta(days=40)
            billed = await stays_of(session, meeting.account_id, lo, hi)
            usage = {u.kind: u.quantity for u in meter_month(lo.date(), lo, hi, billed)}
        expected = sum(math.ceil((last_beat - a.joined_at).total_seconds() / 60) for a in stays)
        assert usage["participant_minutes.browser"] == expected == 2
        assert any("crash recovery: closed 1 meeting" in line for line in seen), seen
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    async with db.session() as session:
        last = await session.scalar(select(Worker).order_by(Worker.id.desc()))
        assert last is not None and last.stopped_at is not None
