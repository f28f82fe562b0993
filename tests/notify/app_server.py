"""The whole application with an injected clock and notify settings, for the e-mail and maintenance tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from rooms.database import Database
from rooms.models import Account, Room
from rooms.outbox.invitations import Invitations
from rooms.users import create_user
from web.keys import DATABASE
from yunhui.app import create_app
from yunhui.dispatcher import Dispatcher
from yunhui.notifications import DISPATCHER, INVITATIONS
from yunhui.settings import load_settings

SECRET_KEY = "notify-test-secret-key-0123456789abcdefghijklmnop"
PASSWORD = "password-123"
PUBLIC_URL = "https://meet.example.com"
DOMAIN = "meet.example.com"


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class App:
    url: str
    app: web.Application
    db: Database
    clock: Clock
    http: aiohttp.ClientSession

    @property
    def dispatcher(self) -> Dispatcher:
        return self.app[DISPATCHER]

    @property
    def invitations(self) -> Invitations:
        return self.app[INVITATIONS]

    async def login(self, email: str) -> str:
        async with self.http.post(
            f"{self.url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        ) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            token: str = body["token"]
            return token

    async def call(self, method: str, path: str, token: str | None, json: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, f"{self.url}/api/v1{path}", json=json, headers=headers) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()


@asynccontextmanager
async def running_app(
    tmp_path: Path, clock: Clock, smtp: dict[str, Any] | None, **notify: Any
) -> AsyncIterator[App]:
    settings = load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None, "public_url": PUBLIC_URL},
            "notify": {
                "sender": f"Yunhui <noreply@{DOMAIN}>",
                "domain": DOMAIN,
                "sip_domain": DOMAIN,
                **({"smtp": smtp} if smtp else {}),
                **notify,
            },
        }
    )
    app = await create_app(settings, secret_key=SECRET_KEY, clock=clock)
    await app[DATABASE].upgrade()
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as http:
            yield App(f"http://{host}:{port}", app, app[DATABASE], clock, http)
    finally:
        await runner.cleanup()


async def seed(db: Database, now: datetime) -> tuple[int, int]:
    """An account with an English-speaking admin and a Chinese-speaking one, and a room; (account, room)."""
    async with db.session() as session:
        account = Account(name="Acme 会议", created_at=now)
        session.add(account)
        await session.commit()
    admin = await create_user(
        db, email="admin@acme.example", password=PASSWORD, role="admin", account_id=account.id, now=now
    )
    other = await create_user(
        db, email="li@acme.example", password=PASSWORD, role="admin", account_id=account.id, now=now
    )
    async with db.session() as session:
        for user, locale, name in ((admin, "en", "Ada Admin"), (other, "zh-CN", "李雷")):
            row = await session.get(type(user), user.id)
            assert row is not None
            row.locale = locale
            row.display_name = name
        room = Room(
            account_id=account.id,
            name="Board room",
            meeting_number="81234567",
            passcode="4321",
            capacity=20,
            created_at=now,
        )
        session.add(room)
        await session.commit()
    return account.id, room.id


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
