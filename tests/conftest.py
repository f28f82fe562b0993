"""Shared fixtures: settings on a temporary directory and a real server on 127.0.0.1:<ephemeral>."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice
import pytest
from aiohttp import web

from yunhui.app import create_app
from yunhui.settings import Settings, load_settings

IN_CI = os.environ.get("CI") == "true"


def require_tool(name: str) -> str:
    """Path of an external program; in CI a missing one fails the test instead of skipping it."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (./run test installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


LOOPBACK = "127.0.0.1"


@pytest.fixture(autouse=True, scope="session")
def _loopback_ice() -> Iterator[None]:
    """WebRTC in tests uses 127.0.0.1 only, whatever interfaces the machine has (or lacks).

    aioice (under the SFU and under every aiortc test peer) gathers host candidates on all non-loopback
    addresses; here it gathers on 127.0.0.1 alone. Chromium (tests/browser) also offers its other interfaces'
    addresses and checks them against ours: the Python side ignores those candidates and those checks, so
    every nominated pair is 127.0.0.1 <-> 127.0.0.1. This also keeps aioice from resolving mDNS (.local)
    candidates, which is multicast on the real network.
    """
    add_remote_candidate = aioice.ice.Connection.add_remote_candidate
    request_received = aioice.ice.Connection.request_received

    async def loopback_candidates_only(
        self: aioice.ice.Connection, remote_candidate: aioice.Candidate | None
    ) -> None:
        if remote_candidate is None or remote_candidate.host == LOOPBACK:
            await add_remote_candidate(self, remote_candidate)

    def loopback_checks_only(
        self: aioice.ice.Connection, message: Any, addr: tuple[str, int], *rest: Any
    ) -> None:
        if addr[0] == LOOPBACK:
            request_received(self, message, addr, *rest)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: [LOOPBACK])
        patch.setattr(aioice.ice.Connection, "add_remote_candidate", loopback_candidates_only)
        patch.setattr(aioice.ice.Connection, "request_received", loopback_checks_only)
        yield


@pytest.fixture(autouse=True)
def _no_yunhui_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests build their settings explicitly; a developer's YUNHUI_* variables must not leak in.
    for name in list(os.environ):
        if name.startswith("YUNHUI_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            # WebRTC in tests runs on 127.0.0.1, which production drops from trickled candidates.
            "sfu": {"allow_loopback_candidates": True},
        }
    )


@dataclass(frozen=True)
class RunningServer:
    url: str
    app: web.Application
    settings: Settings


SECRET_KEY = "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    """The whole application, migrated, listening on 127.0.0.1 with an ephemeral port."""
    app = await create_app(settings, secret_key=SECRET_KEY)
    from web.keys import DATABASE

    await app[DATABASE].upgrade()
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield RunningServer(url=f"http://{host}:{port}", app=app, settings=settings)
    finally:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def repo_root() -> Iterator[Path]:
    yield Path(__file__).resolve().parent.parent
