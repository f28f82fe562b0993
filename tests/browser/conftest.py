"""Real headless Chromium (Debian's) against a real server on 127.0.0.1: one browser per module.

Browser tests run in the module's event loop (the browser outlives each test), so the server fixture here is
tests/conftest.py's `server` started in that loop, with short meeting timers; it is per test.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, async_playwright

from tests.conftest import SECRET_KEY, RunningServer, require_tool
from web.keys import DATABASE
from yunhui.app import create_app
from yunhui.settings import Settings, load_settings

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
    # WebRTC over 127.0.0.1 only (tests/conftest.py's _loopback_ice ignores every other address): Chromium
    # gathers no loopback candidate unless told to. Its host candidates on the test origin are raw addresses,
    # not mDNS names; a --disable-features here would replace Playwright's own list, not add to it.
    "--allow-loopback-in-peer-connection",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# Every focusable control must have a name a screen reader can announce.
UNNAMED_CONTROLS = """() => [...document.querySelectorAll('button, select, input, [role=meter]')]
.filter((e) => {
  const label = e.getAttribute('aria-label')
    || (e.labels && e.labels.length && e.labels[0].textContent.trim()) || e.textContent.trim();
  return !label;
}).map((e) => e.outerHTML.slice(0, 120))"""
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium() -> AsyncIterator[Browser]:
    executable = require_tool("chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def new_context(chromium: Browser, site: RunningServer) -> AsyncIterator[Callable[..., Any]]:
    """Make browser contexts (one per participant); all are closed after the test, before the server stops."""
    contexts: list[BrowserContext] = []

    async def make(locale: str = "en-US", **options: Any) -> BrowserContext:
        options.setdefault("viewport", {"width": 1280, "height": 800})
        # Playwright's wait_for_function polls with eval, which the pages' CSP forbids; test_browser_csp.py
        # runs the pages under the real policy (bypass_csp=False).
        options.setdefault("bypass_csp", True)
        context = await chromium.new_context(locale=locale, **options)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


@pytest.fixture
def browser_settings(tmp_path: Path) -> Settings:
    """Settings with short meeting timers so time-left and reconnection are seen within a test."""
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            # WebRTC in tests runs on 127.0.0.1, which production drops from trickled candidates.
            "sfu": {"allow_loopback_candidates": True},
            "signaling": {
                "files_dir": str(tmp_path / "files"),
                # A one-minute room warns 59 s before its end: one second after it starts.
                "warning_offsets_seconds": [59.0],
                "reconnect_grace_seconds": 30.0,
            },
        }
    )


@pytest_asyncio.fixture(loop_scope="module")
async def site(browser_settings: Settings) -> AsyncIterator[RunningServer]:
    """The whole application, migrated, on 127.0.0.1:<ephemeral>, in the browser's event loop."""
    app = await create_app(browser_settings, secret_key=SECRET_KEY)

    await app[DATABASE].upgrade()
    # Browsers are gone by teardown (new_context closes them first): no need to wait for open connections.
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    host, port = runner.addresses[0][:2]
    try:
        yield RunningServer(url=f"http://{host}:{port}", app=app, settings=browser_settings)
    finally:
        await runner.cleanup()


@dataclasses.dataclass
class AdminApi:
    """A platform admin talking to the REST API: set-up for browser tests."""

    url: str
    http: aiohttp.ClientSession
    token: str = ""
    account_id: int = 0

    async def call(self, method: str, path: str, body: object = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.http.request(method, f"{self.url}/api/v1{path}", json=body, headers=headers) as r:
            assert r.status < 300, f"{method} {path}: {r.status} {await r.text()}"
            return await r.json() if r.status != 204 else None

    async def room(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "Board room", "account_id": self.account_id, **fields}
        room: dict[str, Any] = await self.call("POST", "/rooms", body)
        return room


@pytest_asyncio.fixture(loop_scope="module")
async def admin(site: RunningServer) -> AsyncIterator[AdminApi]:
    from rooms import users

    await users.create_user(
        site.app[DATABASE],
        email=ADMIN_EMAIL,
        password=ADMIN_PASSWORD,
        role="admin",
        account_id=None,
        now=datetime.now(UTC),
    )
    async with aiohttp.ClientSession() as http:
        api = AdminApi(site.url, http)
        async with http.post(
            f"{site.url}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        ) as r:
            assert r.status == 200, await r.text()
            api.token = (await r.json())["token"]
        api.account_id = (await api.call("POST", "/accounts", {"name": "Acme"}))["id"]
        yield api


def artifact(name: str) -> str:
    """Path for a screenshot kept as a test artefact (CI uploads test-artifacts/)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return str(ARTIFACTS / name)


DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Read at import: the suite's autouse fixture clears YUNHUI_* variables before each test runs.
WRITE_DOCS_SCREENSHOTS = os.environ.get("YUNHUI_DOCS_SCREENSHOTS") == "1"


def docs_screenshot(relative: str) -> str:
    """Path for a screenshot the manuals show, e.g. ``"live/viewer-en.png"``.

    Written into docs/screenshots/ only when YUNHUI_DOCS_SCREENSHOTS=1 (refreshing the manuals' pictures
    is a deliberate act); otherwise next to the other artefacts, so a test run leaves the tree clean.
    """
    path = docs_screenshot_dir(str(Path(relative).parent)) / Path(relative).name
    return str(path)


def docs_screenshot_dir(feature: str) -> Path:
    """The folder :func:`docs_screenshot` writes a feature's pictures into (created)."""
    root = DOCS_SCREENSHOTS if WRITE_DOCS_SCREENSHOTS else ARTIFACTS / "docs"
    folder = root / feature
    folder.mkdir(parents=True, exist_ok=True)
    return folder
