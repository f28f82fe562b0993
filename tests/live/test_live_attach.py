"""A channel's meeting source follows the room's meetings (yunhui/live.py): a channel rehearsed before its
meeting starts waits with its standby on air, attaches the meeting when it starts, lets go when it ends
(the standby again) and attaches the room's next meeting. And the route order: ``/live/videos`` is not a
channel id whatever order the route modules are registered in."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from rooms.database import Database
from rooms.live.models import LiveChannel
from rooms.live.videos import NORMAL_NAME, LiveVideo
from rooms.models import Account, Room, User
from rooms.tokens import mint_access_token
from signaling.messages import EndReason
from tests.api.conftest import PASSWORD, SECRET, Clock
from tests.conftest import SECRET_KEY, RunningServer
from tests.live.conftest import FakeEngines
from tests.live.live_engine_media import make_item
from tests.live.test_live_product import Env, _until
from web.api import auth as auth_api
from web.api import create_api
from web.api import live as live_api
from web.api import live_playlists as live_playlists_api
from web.api import live_videos as live_videos_api
from web.api import live_viewers as live_viewers_api
from web.api.live import LIVE_SERVICE
from web.keys import DATABASE
from yunhui.live import LIVE_ENGINES
from yunhui.settings import Settings, load_settings

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """tests/conftest.py's, with a quick standby (the switch, not its timing, is what is tested here)."""
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "sfu": {"allow_loopback_candidates": True},
            "live": {"standby_after_s": 0.5, "segment_seconds": 1.0},
        }
    )


@pytest.fixture
async def meeting_env(server: RunningServer) -> AsyncIterator[Env]:
    db: Database = server.app[DATABASE]
    now = datetime.now(UTC)
    async with db.session() as session:
        account = Account(name="Acme", created_at=now)
        session.add(account)
        await session.flush()
        room = Room(account_id=account.id, name="Studio", meeting_number="777000333", capacity=10,
                    created_at=now)  # fmt: skip
        user = User(account_id=account.id, email="live@acme.example", password_hash="x", role="admin",
                    created_at=now)  # fmt: skip
        session.add_all([room, user])
        await session.commit()
    token, _ = mint_access_token(SECRET_KEY, user_id=user.id, account_id=account.id, role="admin", now=now,
                                 ttl=timedelta(hours=1))  # fmt: skip
    async with aiohttp.ClientSession() as http:
        state = Env(server, room, token, http)
        try:
            yield state
        finally:
            for client in state.clients:
                await client.close()
            for pc in state.pcs:
                await pc.close()


async def _end_meeting(env: Env) -> None:
    meetings = env.server.app[LIVE_ENGINES]._meetings
    conference = next(c for c in meetings.conferences() if c.room.room_id == env.room.id)
    await conference.close(EndReason.HOST_ENDED)
    for client in env.clients:
        await client.close()
    for pc in env.pcs:
        await pc.close()
    env.clients.clear()
    env.pcs.clear()


async def _meeting_id(env: Env, cid: int) -> int | None:
    async with env.db.session() as session:
        row = await session.get(LiveChannel, cid)
        assert row is not None
        return row.meeting_id


async def test_a_channel_started_before_its_meeting_attaches_it_and_the_next_one(meeting_env: Env) -> None:
    env = meeting_env
    videos_root = env.server.settings.paths.var_dir / "live" / "videos"
    (videos_root / "slate-1").mkdir(parents=True)
    await asyncio.to_thread(
        make_item, videos_root / "slate-1" / NORMAL_NAME, 4.0, (40, 200, 40), size=(320, 180)
    )
    now = datetime.now(UTC)
    async with env.db.session() as session:
        slate = LiveVideo(account_id=env.room.account_id, name="slate.mp4", state="ready", size_bytes=1,
                          directory="slate-1", created_at=now, updated_at=now)  # fmt: skip
        session.add(slate)
        await session.commit()
    body = {"title": "Keynote", "language": "en", "source_kind": "meeting", "room_id": env.room.id,
            "standby_kind": "video", "standby_video_id": slate.id}  # fmt: skip
    status, channel = await env.call("POST", "/live", body)
    assert status == 201, channel
    cid = channel["id"]
    # No meeting yet: the rehearsal starts anyway and the slate (the standby) is on air.
    status, channel = await env.call("POST", f"/live/{cid}/rehearse")
    assert status == 200 and channel["state"] == "rehearsal" and channel["meeting_id"] is None, channel
    engines = env.server.app[LIVE_ENGINES]
    engine = engines.engine(cid)
    assert engine is not None
    await _until(lambda: engine.status().on_air == "standby" and engine.status().segments >= 1, 30)
    status, channel = await env.call("POST", f"/live/{cid}/go-live")
    assert status == 200 and channel["state"] == "live"

    # The meeting starts and its publisher sends H.264: the channel attaches it by itself.
    await env.start_meeting()
    await env.publish_h264()
    await _until(lambda: engine.status().on_air == "primary" and engine.status().source == "meeting", 40)
    first = engines._runs[cid].meeting_id
    assert first is not None
    await _until(lambda: not engines._tasks, 10)
    assert await _meeting_id(env, cid) == first

    # The meeting ends: the channel lets go and the slate is back on air within standby_after_s + a segment.
    await _end_meeting(env)
    assert engines._runs[cid].router is None and engines._runs[cid].meeting_id is None
    await _until(lambda: engine.status().on_air == "standby", 30)

    # The room's next meeting: attached again, a new meeting id; the engine never restarted.
    await env.start_meeting()
    await env.publish_h264()
    await _until(lambda: engine.status().on_air == "primary", 40)
    second = engines._runs[cid].meeting_id
    assert second is not None and second != first
    assert engines.engine(cid) is engine
    status, channel = await env.call("POST", f"/live/{cid}/stop")
    assert status == 200 and channel["state"] == "ended"


async def test_live_videos_is_no_channel_id_in_any_route_order(
    tmp_path: Path, live_template: tuple[Path, dict[str, int]]
) -> None:
    """The channel routes take digits only: registered before the videos' routes, they still leave
    ``/live/videos`` alone, and a channel id that is not a number is a 404 with a JSON error."""
    template, _ = live_template
    shutil.copyfile(template, tmp_path / "live.db")
    db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'live.db'}")
    modules = [auth_api, live_api, live_viewers_api, live_playlists_api, live_videos_api]  # channels first
    api = create_api(db, secret_key=SECRET, clock=Clock(), modules=modules)
    api[LIVE_SERVICE] = FakeEngines(tmp_path)
    root = web.Application()
    root.add_subapp("/api/v1", api)
    server = TestServer(root, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            base = str(server.make_url("/api/v1"))
            login = {"email": "admin@a.example", "password": PASSWORD}
            async with http.post(f"{base}/auth/login", json=login) as r:
                assert r.status == 200, await r.text()
                headers = {"Authorization": f"Bearer {(await r.json())['token']}"}
            async with http.get(f"{base}/live/videos", headers=headers) as r:
                videos = await r.json()
                assert r.status == 200 and isinstance(videos, list), videos
            async with http.get(f"{base}/live/abc", headers=headers) as r:
                assert r.status == 404 and "error" in await r.json()
            async with http.get(f"{base}/live/videos/upload", headers=headers) as r:
                assert r.status in (404, 405)
    finally:
        await server.close()
        await db.close()
