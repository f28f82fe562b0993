"""Backup while a meeting is live, restore into a fresh data directory: the business data are identical.

A real server (the whole app) holds a live meeting with a participant and a shared file; `yunhui backup` runs
as its own process meanwhile; `yunhui restore` rebuilds another data directory (and, on PostgreSQL, another
database) from the archive alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from rooms.database import Database
from rooms.tokens import mint_join_token
from tests.conftest import SECRET_KEY
from tests.operations.backup_scene import MEETING_NUMBER, rows, seed, tree_digest, yunhui, yunhui_here
from tests.rooms.conftest import _create_pg_database, _drop_pg_database, postgres_server
from tests.signaling.live_server import Client
from web.keys import DATABASE
from yunhui.app import create_app, utc_now
from yunhui.backup import BackupError, Target, read_manifest, restore_backup
from yunhui.settings import Settings, load_settings

__all__ = ["postgres_server"]


def _settings(var_dir: Path, database_url: str | None) -> Settings:
    overrides: dict[str, object] = {
        "paths": {"var_dir": str(var_dir)},
        "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
    }
    if database_url is not None:
        overrides["database"] = {"url": database_url}
    return load_settings(overrides=overrides)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def databases(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str | None, str | None]]:
    """The source and the (empty) target database URL; None means SQLite under the data directory."""
    if request.param == "sqlite":
        yield None, None
        return
    base: str = request.getfixturevalue("postgres_server")
    source, source_name = await _create_pg_database(base)
    target, target_name = await _create_pg_database(base)
    try:
        yield source, target
    finally:
        await _drop_pg_database(base, source_name)
        await _drop_pg_database(base, target_name)


async def test_backup_of_a_live_meeting_restores_identical_data(
    tmp_path: Path, databases: tuple[str | None, str | None]
) -> None:
    source_url, target_url = databases
    settings = _settings(tmp_path / "live", source_url)
    app = await create_app(settings, secret_key=SECRET_KEY)
    await app[DATABASE].upgrade()
    room = await seed(app[DATABASE])
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}"
    client = Client()
    try:
        token, _ = mint_join_token(
            SECRET_KEY,
            room_id=room.id,
            meeting_number=MEETING_NUMBER,
            account_id=room.account_id,
            role="host",
            display_name="Ann",
            now=utc_now(),
            ttl=timedelta(hours=1),
        )
        await client.connect(url, {"token": token}, user_agent="Mozilla/5.0 (X11; Linux x86_64)")
        joined = await client.expect("joined")
        form = aiohttp.FormData()
        form.add_field("file", "议程 agenda\n".encode() * 100, filename="agenda.txt")
        async with aiohttp.ClientSession() as http, http.post(url + joined["upload_url"], data=form) as resp:
            assert resp.status == 201, await resp.text()
        await client.expect("chat")

        before = await rows(app[DATABASE])
        files_before = tree_digest(settings.paths.var_dir / "files")
        assert (
            len(before["attendances"]) == 1 and before["attendances"][0][-2] is None
        )  # still in the meeting
        assert len(before["billing_invoices"]) >= 2 and len(before["bookings"]) == 1
        assert len(files_before) == 2  # the file and its metadata

        made = yunhui("backup", "--output", str(tmp_path / "archives"), var_dir=tmp_path / "live",
                      database_url=source_url)  # fmt: skip
        assert made.returncode == 0, made.stderr
        archive = Path(made.stdout.strip().splitlines()[-1])
        # The meeting went on while the backup ran.
        await client.sio.emit("chat_send", {"text": "still here"})
        await client.expect("chat")
    finally:
        await client.close()
        await runner.cleanup()

    manifest = read_manifest(archive)
    assert manifest.schema_revision is not None
    assert {m.name for m in manifest.members} >= {f"files/{name}" for name in files_before}

    fresh = tmp_path / "fresh"
    restored = yunhui_here("restore", str(archive), var_dir=fresh, database_url=target_url)
    assert restored.returncode == 0, restored.stderr
    assert tree_digest(fresh / "files") == files_before
    database = await Database.connect(_settings(fresh, target_url).database_url)
    try:
        assert await rows(database) == before
        assert await database.is_current()
    finally:
        await database.close()

    # The refusal to overwrite, in-process (each `yunhui` process costs two seconds of imports).
    target = Target.of(_settings(fresh, target_url))
    with pytest.raises(BackupError) as refused:
        restore_backup(archive, target)
    assert str(refused.value).endswith("is not empty: restore into a fresh data directory, or pass --force")
    restore_backup(archive, target, force=True)
    assert tree_digest(fresh / "files") == files_before
