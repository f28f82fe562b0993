"""Live channel tests: the REST API on a real server on 127.0.0.1 with a temporary SQLite database, an
injected clock, and a stand-in for the engines that writes HLS files the way recording/live/channel.py does
(the engine's own tests cover its media; these cover the product: states, sessions, serving, statistics)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from rooms.database import Database
from rooms.errors import Conflict
from rooms.live.models import LiveChannel
from rooms.models import Room
from tests.api.conftest import PASSWORD, SECRET, START, Clock, _build_template
from web.api import create_api
from web.api.live import LIVE_SERVICE, EngineStatus

__all__ = ["PASSWORD", "SECRET", "START"]


def write_hls(directory: Path, *, rehearsal: int, public: int, ended: bool = False) -> None:
    """Playlists as the engine writes them: ``rehearsal`` staff-only segments, then ``public`` ones; the live
    window (index.m3u8) and, once public, the EVENT playlist (the replay with ENDLIST when ``ended``)."""
    total = rehearsal + public
    for n in range(1, total + 1):
        (directory / f"seg-{n:06d}.ts").write_bytes(b"G" + bytes([n % 256]) * 187)

    def playlist(first: int, kind: str | None) -> str:
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            "#EXT-X-TARGETDURATION:2",
            f"#EXT-X-MEDIA-SEQUENCE:{first - 1}",
        ]
        if kind:
            lines.append(f"#EXT-X-PLAYLIST-TYPE:{kind}")
        for n in range(first, total + 1):
            lines += [f"#EXT-X-PROGRAM-DATE-TIME:2026-03-01T12:00:{(2 * n) % 60:02d}.000Z", "#EXTINF:2.000,",
                      f"seg-{n:06d}.ts"]  # fmt: skip
        if ended:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    window_first = max(rehearsal + 1 if public else 1, total - 4)
    (directory / "index.m3u8").write_text(playlist(window_first, None))
    if public:
        (directory / "event.m3u8").write_text(playlist(rehearsal + 1, "EVENT"))


@dataclass
class FakeEngines:
    """LiveService without media: each run is a directory; the calls are recorded for the tests."""

    root: Path
    calls: list[tuple[str, int]] = field(default_factory=list)
    runs: int = 0
    refuse: str | None = None

    async def start(self, channel: LiveChannel) -> tuple[str, int | None]:
        if self.refuse:
            raise Conflict(self.refuse, code="not_live", field="room_id")
        self.runs += 1
        name = f"{channel.id}-run{self.runs}"
        (self.root / name).mkdir(parents=True)
        self.calls.append(("start", channel.id))
        return name, None

    async def go_live(self, channel: LiveChannel) -> None:
        self.calls.append(("go_live", channel.id))

    async def stop(self, channel: LiveChannel, *, end: bool) -> None:
        self.calls.append(("end" if end else "discard", channel.id))

    async def reconfigure(self, channel: LiveChannel) -> None:
        self.calls.append(("reconfigure", channel.id))

    def status(self, channel_id: int) -> EngineStatus | None:
        return None

    async def remove_files(self, directory: str) -> None:
        shutil.rmtree(self.root / directory, ignore_errors=True)
        self.calls.append(("remove", int(directory.split("-", 1)[0])))


@dataclass
class Env:
    url: str
    db: Database
    clock: Clock
    http: aiohttp.ClientSession
    engines: FakeEngines
    accounts: dict[str, int]
    tokens: dict[str, str] = field(default_factory=dict)
    rooms: dict[str, int] = field(default_factory=dict)

    async def call(
        self, method: str, path: str, who: str | None = "admin@a.example", **kw: Any
    ) -> tuple[int, Any]:
        headers = dict(kw.pop("headers", {}))
        if who is not None:
            if who not in self.tokens:
                async with self.http.post(
                    f"{self.url}/auth/login", json={"email": who, "password": PASSWORD}
                ) as resp:
                    assert resp.status == 200, await resp.text()
                    self.tokens[who] = (await resp.json())["token"]
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        async with self.http.request(method, self.url + path, headers=headers, **kw) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            if resp.content_type.startswith("text/") or resp.content_type.endswith("mpegurl"):
                return resp.status, await resp.text()
            return resp.status, await resp.read()

    def run_dir(self, channel: dict[str, Any] | int) -> Path:
        channel_id = channel if isinstance(channel, int) else channel["id"]
        runs = sorted(self.engines.root.glob(f"{channel_id}-run*"))
        assert runs, "the channel has no run"
        return runs[-1]


@pytest.fixture(scope="session")
def live_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    import asyncio

    path = tmp_path_factory.mktemp("live-template") / "template.db"
    return path, asyncio.run(_build_template(path))


@pytest.fixture
async def env(tmp_path: Path, live_template: tuple[Path, dict[str, int]]) -> AsyncIterator[Env]:
    template, accounts = live_template
    path = tmp_path / "live.db"
    shutil.copyfile(template, path)
    db = await Database.connect(f"sqlite+aiosqlite:///{path}")
    clock = Clock()
    engines = FakeEngines(tmp_path / "live")
    engines.root.mkdir()
    api = create_api(db, secret_key=SECRET, clock=clock)
    api[LIVE_SERVICE] = engines
    root = web.Application()
    root.add_subapp("/api/v1", api)
    server = TestServer(root, host="127.0.0.1", port=0)
    await server.start_server()
    rooms = {}
    async with db.session() as session:
        for key in ("a", "b"):
            number = f"8880000{ord(key)}"
            room = Room(account_id=accounts[key], name=f"Hall {key}", meeting_number=number, capacity=50,
                        created_at=START)  # fmt: skip
            session.add(room)
            await session.flush()
            rooms[key] = room.id
        await session.commit()
    try:
        async with aiohttp.ClientSession() as http:
            yield Env(str(server.make_url("/api/v1")), db, clock, http, engines, dict(accounts), rooms=rooms)
    finally:
        await server.close()
        await db.close()
