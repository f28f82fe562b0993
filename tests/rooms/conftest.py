"""Fixtures of the rooms store tests: a Database on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from rooms.database import Database

PG_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"))]


def _pg_bin() -> Path | None:
    for directory in PG_BIN_DIRS:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres_user(argv: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The base URL (no database) of a PostgreSQL server: YUNHUI_TEST_POSTGRES_URL, or a throwaway one."""
    url = os.environ.get("YUNHUI_TEST_POSTGRES_URL")
    if url:
        yield url.rsplit("/", 1)[0]
        return
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql (.ci/run installs them)")
    tmp = Path(tempfile.mkdtemp(prefix="yunhui-pg-"))
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    data = tmp / "data"
    port = _free_port()
    subprocess.run(
        _as_postgres_user(
            [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
    subprocess.run(
        _as_postgres_user(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(tmp / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)


async def _create_pg_database(base_url: str) -> tuple[str, str]:
    import asyncpg  # type: ignore[import-untyped]

    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = base_url.replace("postgresql+asyncpg://", "postgresql://") + "/postgres"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{base_url}/{name}", name


async def _drop_pg_database(base_url: str, name: str) -> None:
    import asyncpg

    dsn = base_url.replace("postgresql+asyncpg://", "postgresql://") + "/postgres"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty Database on each backend."""
    if request.param == "sqlite":
        database = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'rooms.db'}")
        try:
            await database.upgrade()
            yield database
        finally:
            await database.close()
        return
    base_url: str = request.getfixturevalue("postgres_server")
    url, name = await _create_pg_database(base_url)
    database = await Database.connect(url)
    try:
        await database.upgrade()
        yield database
    finally:
        await database.close()
        await _drop_pg_database(base_url, name)
