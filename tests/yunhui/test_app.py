"""The app in-process, on a real socket: health, readiness, metrics, home page."""

from __future__ import annotations

import aiohttp
import pytest
from sqlalchemy import text

from tests.conftest import RunningServer
from web.keys import DATABASE


async def test_health_ready_and_metrics(server: RunningServer, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{server.url}/healthz") as response:
        assert response.status == 200
    async with http.get(f"{server.url}/readyz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ready", "database": "ok"}
    async with http.get(f"{server.url}/metrics") as response:
        body = await response.text()
        assert response.status == 200
        assert 'yunhui_http_requests_total{method="GET",status="200"}' in body
        assert "yunhui_info" in body


async def test_readyz_reports_pending_migrations(server: RunningServer, http: aiohttp.ClientSession) -> None:
    async with server.app[DATABASE].engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    async with http.get(f"{server.url}/readyz") as response:
        assert response.status == 503
        assert (await response.json())["database"] == "migrations pending"


async def test_readyz_reports_unreachable_database(
    server: RunningServer, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable() -> None:
        raise ConnectionRefusedError("database is down")

    monkeypatch.setattr(server.app[DATABASE], "ping", unreachable)
    async with http.get(f"{server.url}/readyz") as response:
        assert response.status == 503
        assert (await response.json())["database"] == "unreachable"


@pytest.mark.parametrize(
    ("accept", "query", "expected"),
    [
        ("zh-CN,zh;q=0.9", "", "加入会议"),
        ("en-US", "", "Join a meeting"),
        ("en-US", "?lang=zh-CN", "加入会议"),
    ],
)
async def test_home_page_language(
    server: RunningServer, http: aiohttp.ClientSession, accept: str, query: str, expected: str
) -> None:
    async with http.get(f"{server.url}/{query}", headers={"Accept-Language": accept}) as response:
        assert response.status == 200
        assert expected in await response.text()


async def test_join_form_validates_the_meeting_number(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.url}/join?number=12ab", allow_redirects=False) as response:
        assert response.status == 400
    async with http.get(f"{server.url}/join?number=123 456 789", allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/m/123456789"
