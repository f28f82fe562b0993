"""The whole app on 127.0.0.1 for the pre-recorded videos' tests (real job, real ffprobe/ffmpeg), and tiny
test clips made with ffmpeg's lavfi sources at test time."""

from __future__ import annotations

import asyncio
import random
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from rooms.database import Database
from rooms.live.models import LiveChannel
from rooms.models import Account, User
from rooms.tokens import mint_access_token
from tests.conftest import SECRET_KEY
from web.keys import DATABASE
from yunhui.app import create_app
from yunhui.live_videos import LIVE_VIDEOS, LiveVideos
from yunhui.settings import Settings

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
FINAL = ("refused", "ready")


def make_clip(
    path: Path,
    *,
    seconds: float = 2.0,
    size: str = "320x180",
    rate: int = 25,
    audio: bool = True,
    color: str | None = None,
    fmt: str = "mp4",
) -> Path:
    """A tiny clip: a test pattern (or a plain colour, to tell items apart) with a 440 Hz tone."""
    video = f"color=c={color}:size={size}:rate={rate}" if color else f"testsrc2=size={size}:rate={rate}"
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"{video}:duration={seconds}"]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(rate)]
    if audio:
        argv += ["-c:a", "aac", "-shortest"]
    argv += ["-f", fmt, str(path)]
    subprocess.run(argv, check=True, timeout=60)
    return path


def make_corrupt(path: Path) -> Path:
    """An MPEG-TS clip whose middle third is noise (packet headers kept): ffprobe reads it, decoding fails."""
    clean = make_clip(path.with_suffix(".clean.ts"), fmt="mpegts")
    data = bytearray(clean.read_bytes())
    rng = random.Random(1)
    for i in range(len(data) // 3, len(data) // 3 + 20_000):
        if i % 188 > 4:
            data[i] = rng.randrange(256)
    path.write_bytes(bytes(data))
    return path


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    url: str
    app: web.Application
    db: Database
    clock: Clock
    http: aiohttp.ClientSession
    ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def videos(self) -> LiveVideos:
        return self.app[LIVE_VIDEOS]

    async def call(self, method: str, path: str, who: str | None = "admin_a", **kw: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        headers.update(kw.pop("headers", {}))
        async with self.http.request(method, f"{self.url}/api/v1{path}", headers=headers, **kw) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, dict(resp.headers)

    async def upload(
        self, path: Path, name: str = "clip", who: str = "admin_a", chunk: int = 64 * 1024
    ) -> int:
        """Upload a file in chunks (tus); returns the video id."""
        data = await asyncio.to_thread(path.read_bytes)
        status, video = await self.call(
            "POST", "/live/videos", who, json={"name": name, "size_bytes": len(data)}
        )
        assert status == 201, video
        offset = 0
        while offset < len(data):
            status, headers = await self.patch(video["id"], offset, data[offset : offset + chunk], who)
            assert status == 204, headers
            offset = int(headers["Upload-Offset"])
        return int(video["id"])

    async def patch(self, video_id: int, offset: int, body: bytes, who: str = "admin_a") -> tuple[int, Any]:
        return await self.call(
            "PATCH",
            f"/live/videos/{video_id}/upload",
            who,
            data=body,
            headers={"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
        )

    async def settle(self, video_id: int) -> dict[str, Any]:
        """The video once its job has finished with it (refused or ready), waiting on the job's events."""
        for _ in range(6):
            done = self.videos.jobs_done
            status, video = await self.call("GET", f"/live/videos/{video_id}")
            assert status == 200, video
            if video["state"] in FINAL:
                return dict(video)
            self.videos.wake()
            await asyncio.wait_for(self.videos.wait_jobs(done + 1), 60)
        raise AssertionError(f"video {video_id} did not settle: {video}")

    async def channel(self, key: str = "a", title: str = "Launch") -> int:
        async with self.db.session() as session:
            channel = LiveChannel(
                account_id=self.ids[f"account_{key}"], title=title, language="zh-CN", state="draft",
                source_kind="playlist", audio_participant="", standby_kind="none", standby_override="auto",
                show_viewer_count=False, created_at=self.clock.now, updated_at=self.clock.now,
            )  # fmt: skip
            session.add(channel)
            await session.commit()
            return channel.id


async def start_env(
    settings: Settings, clock: Clock | None = None, *, seed: bool = True
) -> AsyncIterator[Env]:
    """The app with accounts a and b, an admin in each and an organizer in a (tokens minted, no login)."""
    clock = clock or Clock()
    app = await create_app(settings, secret_key=SECRET_KEY, clock=clock)
    db = app[DATABASE]
    await db.upgrade()
    ids: dict[str, int] = {}
    users: dict[str, tuple[int, int, str]] = {}
    async with db.session() as session:
        for key in ("a", "b"):
            account = await session.get(Account, 1 if key == "a" else 2)
            if account is None:
                account = Account(name=f"Account {key}", created_at=T0)
                session.add(account)
                await session.flush()
            ids[f"account_{key}"] = account.id
        for who, role, key in (
            ("admin_a", "admin", "a"),
            ("org_a", "organizer", "a"),
            ("admin_b", "admin", "b"),
        ):
            email = f"{who}@example.com"
            user = (await session.execute(User.__table__.select().where(User.email == email))).first()
            if user is None:
                row = User(
                    account_id=ids[f"account_{key}"], email=email, password_hash="-", role=role, created_at=T0
                )
                session.add(row)
                await session.flush()
                users[who] = (row.id, ids[f"account_{key}"], role)
            else:
                users[who] = (user.id, ids[f"account_{key}"], role)
        await session.commit()
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as http:
            env = Env(f"http://{host}:{port}", app, db, clock, http, ids)
            for who, (user_id, account_id, role) in users.items():
                env.tokens[who], _ = mint_access_token(
                    SECRET_KEY,
                    user_id=user_id,
                    account_id=account_id,
                    role=role,
                    now=T0,
                    ttl=timedelta(days=400),
                )
            yield env
    finally:
        await runner.cleanup()
