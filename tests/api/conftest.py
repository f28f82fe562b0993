"""A real aiohttp server on 127.0.0.1 with the API mounted under /api/v1 on a temporary SQLite database."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from rooms.database import Database
from rooms.models import Account
from rooms.users import create_user
from web.api import create_api

SECRET = "api-test-secret-key-0123456789abcdefghijklmnop"
PASSWORD = "password-123"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Client:
    http: aiohttp.ClientSession
    base: str
    token: str | None = None

    async def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.http.request(method, self.base + path, json=json, headers=headers, **kwargs) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()


@dataclass
class Api:
    url: str
    db: Database
    clock: Clock
    http: aiohttp.ClientSession
    accounts: dict[str, int] = field(default_factory=dict)

    async def login(self, email: str) -> Client:
        client = Client(self.http, self.url)
        status, body = await client.call("POST", "/auth/login", {"email": email, "password": PASSWORD})
        assert status == 200, body
        client.token = body["token"]
        return client


async def _build_template(path: Path) -> dict[str, int]:
    db = await Database.connect(f"sqlite+aiosqlite:///{path}")
    try:
        await db.upgrade()
        await create_user(
            db, email="root@example.com", password=PASSWORD, role="admin", account_id=None, now=START
        )
        accounts = {}
        for name in ("a", "b"):
            async with db.session() as session:
                account = Account(name=f"Account {name}", created_at=START)
                session.add(account)
                await session.commit()
            accounts[name] = account.id
            for role, user in (("admin", "admin"), ("organizer", "org")):
                await create_user(
                    db,
                    email=f"{user}@{name}.example",
                    password=PASSWORD,
                    role=role,
                    account_id=account.id,
                    now=START,
                )
    finally:
        await db.close()
    return accounts


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A migrated database with a platform admin and two accounts (argon2 hashing is slow: do it once)."""
    path = tmp_path_factory.mktemp("api-template") / "template.db"
    accounts = asyncio.run(_build_template(path))
    return path, accounts


@pytest.fixture
async def api(tmp_path: Path, template_db: tuple[Path, dict[str, int]]) -> AsyncIterator[Api]:
    template, accounts = template_db
    path = tmp_path / "api.db"
    shutil.copyfile(template, path)
    db = await Database.connect(f"sqlite+aiosqlite:///{path}")
    clock = Clock()
    root = web.Application()
    root.add_subapp("/api/v1", create_api(db, secret_key=SECRET, clock=clock))
    server = TestServer(root, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Api(str(server.make_url("/api/v1")), db, clock, http, dict(accounts))
    finally:
        await server.close()
        await db.close()
