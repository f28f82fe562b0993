"""The business data a backup must carry: a booking, invoices, attendance of a live meeting, a shared file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from rooms.billing.run import run_billing
from rooms.billing.store import create_contract
from rooms.database import Database
from rooms.models import Account, Booking, Endpoint, Room, Site

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
MEETING_NUMBER = "777000222"
# What "identical" means after a restore: these tables row for row, and the files byte for byte.
TABLES = (
    "accounts",
    "sites",
    "endpoints",
    "rooms",
    "bookings",
    "meetings",
    "attendances",
    "billing_contracts",
    "billing_invoices",
    "billing_invoice_lines",
)


async def seed(db: Database) -> Room:
    """An account with a site, an endpoint, a room with a booking, and a contract billed for two months."""
    async with db.session() as session:
        account = Account(name="县教育局", created_at=T0)
        session.add(account)
        await session.flush()
        site = Site(account_id=account.id, name="一中会场", created_at=T0)
        session.add(site)
        await session.flush()
        session.add(
            Endpoint(
                account_id=account.id,
                site_id=site.id,
                sip_username="room-a",
                sip_secret="s3cret",
                display_name="Terminal A",
                created_at=T0,
            )
        )
        room = Room(
            account_id=account.id,
            name="Board room",
            meeting_number=MEETING_NUMBER,
            passcode=None,
            capacity=10,
            max_session_minutes=None,
            created_at=T0,
        )
        session.add(room)
        await session.flush()
        start = datetime(2026, 5, 4, 9, 0)
        session.add(
            Booking(
                account_id=account.id,
                room_id=room.id,
                uid="b1@yunhui",
                title="周例会",
                start_local=start,
                end_local=start + timedelta(hours=1),
                time_zone="Asia/Shanghai",
                first_start=datetime(2026, 5, 4, 1, 0, tzinfo=UTC),
                last_end=datetime(2026, 5, 4, 2, 0, tzinfo=UTC),
                created_at=T0,
                updated_at=T0,
            )
        )
        await session.commit()
        site_id = site.id
    await create_contract(
        db,
        account_id=account.id,
        terms={"currency": "CNY", "fee_per_endpoint_year": "12850", "start": "2026-01-01", "trial_months": 0},
        sites=[{"site_id": site_id}],
        now=T0,
    )
    report = await run_billing(db, now=datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    assert len(report.issued) == 2, report
    return room


async def rows(db: Database) -> dict[str, list[Any]]:
    """Every row of the compared tables, in id order, as plain tuples."""
    out: dict[str, list[Any]] = {}
    async with db.engine.connect() as conn:
        for table in TABLES:
            result = await conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))
            out[table] = [tuple(row) for row in result.all()]
    return out


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` by relative path."""
    if not root.is_dir():
        return {}
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def yunhui(*args: str, var_dir: Path, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real ``yunhui`` command in a child process, configured through the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNHUI_")}
    env["YUNHUI_PATHS__VAR_DIR"] = str(var_dir)
    if database_url is not None:
        env["YUNHUI_DATABASE__URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "yunhui", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def yunhui_here(
    *args: str, var_dir: Path, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The same command in this process (click's runner): no second process's imports to wait for."""
    from click.testing import CliRunner

    from yunhui.cli import main

    env = {"YUNHUI_PATHS__VAR_DIR": str(var_dir)}
    if database_url is not None:
        env["YUNHUI_DATABASE__URL"] = database_url
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return subprocess.CompletedProcess(["yunhui", *args], result.exit_code, result.stdout, result.stderr)
