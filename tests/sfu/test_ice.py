"""sfu/ice.py: ICE ends when the check list does, not at aioice's next pacing tick."""

from __future__ import annotations

import asyncio

import aioice.ice
import pytest
from aioice import Connection

from sfu import ice
from sfu.errors import HookSurfaceChanged


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


async def _pair(*, prompt: bool) -> tuple[Connection, Connection]:
    controlling, controlled = Connection(ice_controlling=True), Connection(ice_controlling=False)
    for connection in (controlling, controlled):
        if prompt:
            ice.prompt_connect(connection)
        await connection.gather_candidates()
    for a, b in ((controlling, controlled), (controlled, controlling)):
        a.remote_username, a.remote_password = b.local_username, b.local_password
        for candidate in b.local_candidates:
            await a.add_remote_candidate(candidate)
        await a.add_remote_candidate(None)
    return controlling, controlled


async def test_connect_returns_on_success_not_on_the_pacing_tick(
    loopback: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a pacing tick of an hour, only a connect() woken by the outcome can finish.
    monkeypatch.setattr(ice, "PACING_S", 3600.0)
    controlling, controlled = await _pair(prompt=True)
    try:
        await asyncio.wait_for(asyncio.gather(controlling.connect(), controlled.connect()), 10)
        await controlling.send(b"ping")
        assert await asyncio.wait_for(controlled.recv(), 10) == b"ping"
    finally:
        await asyncio.gather(controlling.close(), controlled.close())


async def test_a_failed_check_list_still_fails(loopback: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.stun, "RETRY_MAX", 0)  # one transmission per check, no retries
    controlling, controlled = await _pair(prompt=True)
    await controlled.close()  # nobody answers: every check times out, then connect() gives up
    try:
        with pytest.raises(ConnectionError, match="ICE negotiation failed"):
            await asyncio.wait_for(controlling.connect(), 20)
    finally:
        await controlling.close()


def test_prompt_connect_is_idempotent_and_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = Connection(ice_controlling=True)
    ice.prompt_connect(connection)
    first = connection.connect
    ice.prompt_connect(connection)
    assert connection.connect is first
    ice.verify_connect_path()
    monkeypatch.setattr(ice, "CONNECT_PATH", (*ice.CONNECT_PATH, "self._no_such_step()"))
    with pytest.raises(HookSurfaceChanged, match="_no_such_step"):
        ice.verify_connect_path()
