"""A real crash of a live channel: the whole app runs in a child process that is killed with SIGKILL while a
channel is live (no close, no ENDLIST). The next start resumes it instead of ending it: the same EVENT
playlist goes on (its segments kept, its sequence continued, a DISCONTINUITY before the first new
segment), the channel stays live with its viewer sessions, and its meeting source, gone with the crash,
falls to the standby."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import m3u8  # type: ignore[import-untyped]
import pytest
from aiohttp import web
from sqlalchemy import func, select

from rooms.database import Database
from rooms.live.models import LiveChannel, LiveViewerSession
from rooms.live.videos import NORMAL_NAME, LiveVideo
from rooms.models import Room
from tests.conftest import SECRET_KEY, require_tool
from tests.live.live_engine_media import make_item
from tests.live.test_live_videos_crash import CHILD, _seed
from web.keys import DATABASE
from yunhui.app import create_app
from yunhui.live import LIVE_ENGINES
from yunhui.settings import load_settings

pytestmark = pytest.mark.timeout(180)


async def _add_room_and_backup(database_url: str, videos_root: Path) -> tuple[int, int]:
    await asyncio.to_thread((videos_root / "backup-1").mkdir, parents=True)
    await asyncio.to_thread(
        make_item, videos_root / "backup-1" / NORMAL_NAME, 4.0, (40, 200, 40), size=(320, 180)
    )
    now = datetime.now(UTC)
    db = await Database.connect(database_url)
    try:
        async with db.session() as session:
            room = Room(account_id=1, name="Hall", meeting_number="777000444", capacity=10, created_at=now)
            video = LiveVideo(account_id=1, name="backup.mp4", state="ready", size_bytes=1,
                              directory="backup-1", created_at=now, updated_at=now)  # fmt: skip
            session.add_all([room, video])
            await session.commit()
            return room.id, video.id
    finally:
        await db.close()


async def _segments(path: Path, at_least: int, within: float) -> m3u8.M3U8:
    """The playlist once it lists ``at_least`` segments (a bounded poll of another process's files)."""
    async with asyncio.timeout(within):
        while True:
            if await asyncio.to_thread(path.is_file):
                playlist = m3u8.loads(await asyncio.to_thread(path.read_text))
                if len(playlist.segments) >= at_least:
                    return playlist
            await asyncio.sleep(0.1)


async def test_a_live_channel_killed_with_its_app_is_resumed_at_the_next_start(tmp_path: Path) -> None:
    require_tool("ffmpeg")
    overrides = {
        "paths": {"var_dir": str(tmp_path / "var")},
        "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
        "sfu": {"allow_loopback_candidates": True},
        "live": {"standby_after_s": 0.5},
    }
    settings = load_settings(overrides=overrides)
    live_root = settings.paths.var_dir / "live"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, json.dumps(overrides),
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip
    assert child.stdout is not None
    try:
        port = int(await asyncio.wait_for(child.stdout.readline(), 60))
        url = f"http://127.0.0.1:{port}/api/v1"
        token = await _seed(settings.database_url)
        room_id, video_id = await _add_room_and_backup(settings.database_url, live_root / "videos")
        auth = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=auth) as http:
            body = {"title": "Keynote", "language": "en", "source_kind": "meeting", "room_id": room_id,
                    "standby_kind": "video", "standby_video_id": video_id}  # fmt: skip
            async with http.post(f"{url}/live", json=body) as r:
                assert r.status == 201, await r.text()
                cid = (await r.json())["id"]
            async with http.post(f"{url}/live/{cid}/go-live") as r:
                channel = await r.json()
                assert r.status == 200, channel
            async with http.post(f"{url}/live/{cid}/sessions", json={"viewer_id": "viewer-before"}) as r:
                assert r.status == 201, await r.text()
        run = live_root / channel["directory"] if "directory" in channel else None
        if run is None:
            run = next(p for p in live_root.iterdir() if p.name.startswith(f"{cid}-"))
        before = await _segments(run / "event.m3u8", 2, 60)
        child.send_signal(signal.SIGKILL)
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()
    before = m3u8.loads((run / "event.m3u8").read_text())
    assert not before.is_endlist and before.segments
    kept = [s.uri for s in before.segments]

    app = await create_app(settings, secret_key=SECRET_KEY)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()  # the cleanup contexts' start: the recovery
    try:
        engine = app[LIVE_ENGINES].engine(cid)
        assert engine is not None, "the live channel was resumed, not ended"
        assert engine.directory == run
        after = await _segments(run / "event.m3u8", len(kept) + 2, 60)
        assert engine.status().on_air == "standby", "its meeting is gone: the standby plays"
        uris = [s.uri for s in after.segments]
        assert uris[: len(kept)] == kept, "the same EVENT playlist, continued"
        assert after.media_sequence == before.media_sequence
        assert after.discontinuity_sequence == before.discontinuity_sequence
        first_new = after.segments[len(kept)]
        assert first_new.discontinuity, "a DISCONTINUITY where the new run begins"
        numbers = [int(u.removeprefix("seg-").removesuffix(".ts")) for u in uris]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "the sequence goes on"
        async with app[DATABASE].session() as session:
            row = await session.get(LiveChannel, cid)
            assert row is not None and row.state == "live" and row.directory == run.name
            sessions = await session.scalar(
                select(func.count()).select_from(LiveViewerSession).where(LiveViewerSession.channel_id == cid)
            )
            assert sessions == 1, "the statistics go on with the sessions of before the crash"
    finally:
        await runner.cleanup()
    replay = m3u8.loads((run / "event.m3u8").read_text())
    assert replay.is_endlist and [s.uri for s in replay.segments][: len(kept)] == kept
