"""A real crash mid-normalisation: the whole app runs in a child process that is killed with SIGKILL while
its ffmpeg normalises an upload (no close, no cleanup); the next start of the app redoes the video from the
beginning and it becomes ready, with no partial file left."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from rooms.database import Database
from rooms.live.videos import NORMAL_NAME, SOURCE_NAME, LiveVideo
from rooms.models import Account, User
from rooms.tokens import mint_access_token
from tests.conftest import SECRET_KEY, require_tool
from tests.live.videos_env import T0, Clock, make_clip, start_env
from yunhui.settings import load_settings

CHILD = """
import asyncio, json, sys
from aiohttp import web
from tests.conftest import SECRET_KEY
from web.keys import DATABASE
from yunhui.app import create_app
from yunhui.settings import load_settings

async def main():
    app = await create_app(load_settings(overrides=json.loads(sys.argv[1])), secret_key=SECRET_KEY)
    await app[DATABASE].upgrade()
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def _seed(database_url: str) -> str:
    """An account with an admin; the admin's bearer token."""
    db = await Database.connect(database_url)
    try:
        async with db.session() as session:
            account = Account(name="Acme", created_at=T0)
            session.add(account)
            await session.flush()
            user = User(
                account_id=account.id, email="a@example.com", password_hash="-", role="admin", created_at=T0
            )
            session.add(user)
            await session.commit()
        token, _ = mint_access_token(
            SECRET_KEY, user_id=user.id, account_id=account.id, role="admin", now=T0, ttl=timedelta(days=3650)
        )
        return token
    finally:
        await db.close()


async def _upload(http: aiohttp.ClientSession, url: str, token: str, clip: Path) -> int:
    auth = {"Authorization": f"Bearer {token}"}
    data = await asyncio.to_thread(clip.read_bytes)
    async with http.post(
        f"{url}/live/videos", json={"name": "keynote", "size_bytes": len(data)}, headers=auth
    ) as r:
        assert r.status == 201, await r.text()
        video: dict[str, Any] = await r.json()
    headers = {**auth, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    async with http.patch(f"{url}/live/videos/{video['id']}/upload", data=data, headers=headers) as r:
        assert r.status == 204, await r.text()
    return int(video["id"])


async def test_a_killed_app_mid_normalisation_redoes_it_at_the_next_start(tmp_path: Path) -> None:
    require_tool("ffmpeg")
    overrides = {
        "paths": {"var_dir": str(tmp_path / "var")},
        "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
        "sfu": {"allow_loopback_candidates": True},
    }
    settings = load_settings(overrides=overrides)
    clip = await asyncio.to_thread(make_clip, tmp_path / "keynote.mp4", seconds=4.0)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, json.dumps(overrides),
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip
    assert child.stdout is not None
    try:
        port = int(await asyncio.wait_for(child.stdout.readline(), 60))
        url = f"http://127.0.0.1:{port}/api/v1"
        token = await _seed(settings.database_url)
        async with aiohttp.ClientSession() as http:
            video_id = await _upload(http, url, token, clip)
            # Kill the app once its normalisation has got somewhere (a bounded poll of another process).
            async with asyncio.timeout(60):
                while True:
                    async with http.get(
                        f"{url}/live/videos/{video_id}", headers={"Authorization": f"Bearer {token}"}
                    ) as r:
                        video = await r.json()
                    if video["state"] == "normalising" and video["progress"] > 0:
                        break
                    assert video["state"] in ("checking", "normalising"), video
                    await asyncio.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()
    db = await Database.connect(settings.database_url)
    try:
        async with db.session() as session:
            row = (await session.scalars(select(LiveVideo))).one()
            assert (row.state, row.lease_owner) == ("normalising", "main") and 0 < row.progress < 100
            directory = settings.paths.var_dir / "live" / "videos" / row.directory
    finally:
        await db.close()
    assert (directory / SOURCE_NAME).is_file() and not (directory / NORMAL_NAME).exists()
    # The next start of the app (same worker) redoes it.
    async for env in start_env(settings, Clock()):
        video = await env.settle(video_id)
        assert video["state"] == "ready" and video["progress"] == 100, video
        left = sorted(p.name for p in directory.iterdir())
        assert left == [NORMAL_NAME, SOURCE_NAME]
        assert video["normal_size_bytes"] == (directory / NORMAL_NAME).stat().st_size
