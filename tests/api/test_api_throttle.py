"""Login back-off: per (address, account), an account-wide limit that only slows, and the client address
taken from a trusted proxy's X-Forwarded-For. The clock is injected; nothing sleeps."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from rooms.database import Database
from web.api import create_api
from web.api.throttle import PENDING_WAIT, Backoff, LoginThrottle
from web.proxies import CLIENT_ADDRESS, parse_networks, resolver

from .conftest import PASSWORD, SECRET, START, Api, Clock

SECOND = timedelta(seconds=1)
PAIR = Backoff(free=2, base=SECOND, cap=timedelta(minutes=5), forgive=timedelta(minutes=10))
ACCOUNT = Backoff(free=4, base=SECOND, cap=timedelta(minutes=5), forgive=timedelta(minutes=1))


def _fail(throttle: LoginThrottle, email: str, address: str, at: timedelta = timedelta(0)) -> None:
    assert not throttle.begin(email, address, START + at)
    throttle.end(email, address, START + at, success=False)


def test_an_address_backs_off_alone_and_doubling() -> None:
    throttle = LoginThrottle(per_pair=PAIR, per_account=ACCOUNT)
    _fail(throttle, "Owner@x", "203.0.113.9")
    _fail(throttle, "owner@x ", "203.0.113.9")
    _fail(throttle, "owner@x", "203.0.113.9")  # the first beyond the free ones: 1 s
    assert throttle.begin("owner@x", "203.0.113.9", START) == SECOND
    assert not throttle.begin("owner@x", "198.51.100.7", START)  # the owner's address is not slowed
    throttle.end("owner@x", "198.51.100.7", START, success=True)
    _fail(throttle, "owner@x", "203.0.113.9", SECOND)  # 2 s now
    assert throttle.begin("owner@x", "203.0.113.9", START + 2 * SECOND) == SECOND
    # Left alone, the failures are forgiven.
    later = START + timedelta(minutes=41)
    assert not throttle.begin("owner@x", "203.0.113.9", later)
    throttle.end("owner@x", "203.0.113.9", later, success=True)
    assert throttle.tracked() == (0, 0)


def test_the_account_limit_slows_only_addresses_that_failed_at_it() -> None:
    throttle = LoginThrottle(per_pair=PAIR, per_account=ACCOUNT)
    for n in range(6):  # six addresses, one guess each: beyond the account's four free failures
        _fail(throttle, "owner@x", f"203.0.113.{n}")
    # Each attacking address, having failed at this account, now waits for the account's back-off.
    assert throttle.begin("owner@x", "203.0.113.0", START) == 2 * SECOND
    # A first attempt from an address with nothing on record is checked at once: no lockout of the owner.
    assert not throttle.begin("owner@x", "198.51.100.7", START)
    throttle.end("owner@x", "198.51.100.7", START, success=True)
    # Other accounts are untouched.
    assert not throttle.begin("other@x", "203.0.113.0", START)


def test_attempts_being_checked_count_against_the_ones_behind_them() -> None:
    throttle = LoginThrottle(per_pair=PAIR, per_account=ACCOUNT)
    for _ in range(3):  # as many as would be checked one after the other: two free, one starting the back-off
        assert not throttle.begin("owner@x", "203.0.113.9", START)
    assert throttle.begin("owner@x", "203.0.113.9", START) == PENDING_WAIT  # a fourth in parallel waits
    for _ in range(3):
        throttle.end("owner@x", "203.0.113.9", START, success=None)  # undecided: counts for nothing
    assert throttle.tracked() == (0, 0)


def test_junk_emails_cannot_flush_a_key_in_back_off() -> None:
    throttle = LoginThrottle(per_pair=PAIR, per_account=ACCOUNT, max_keys=3)
    for _ in range(3):
        _fail(throttle, "owner@x", "203.0.113.9")
    for n in range(50):
        _fail(throttle, f"junk{n}@x", "203.0.113.9")
    assert throttle.tracked() == (3, 3)
    assert throttle.begin("owner@x", "203.0.113.9", START) == SECOND


@pytest.fixture
async def proxied(tmp_path: Path, template_db: tuple[Path, dict[str, int]]) -> AsyncIterator[Api]:
    """The API as the composition root mounts it, behind a proxy on 127.0.0.1 (trusted)."""
    path = tmp_path / "api.db"
    shutil.copyfile(template_db[0], path)
    db = await Database.connect(f"sqlite+aiosqlite:///{path}")
    clock = Clock()
    root = web.Application()
    root[CLIENT_ADDRESS] = resolver(parse_networks(["127.0.0.1"]))
    root.add_subapp("/api/v1", create_api(db, secret_key=SECRET, clock=clock))
    server = TestServer(root, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Api(str(server.make_url("/api/v1")), db, clock, http, dict(template_db[1]))
    finally:
        await server.close()
        await db.close()


async def _login(api: Api, password: str, forwarded_for: str | None) -> tuple[int, dict[str, str], object]:
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    body = {"email": "admin@a.example", "password": password}
    async with api.http.post(api.url + "/auth/login", json=body, headers=headers) as response:
        return response.status, dict(response.headers), await response.json()


async def test_behind_a_trusted_proxy_an_attackers_failures_do_not_slow_the_owner(proxied: Api) -> None:
    statuses = [(await _login(proxied, "wrong-one", "203.0.113.9"))[0] for _ in range(12)]
    assert statuses[:6] == [401] * 6  # five free failures, then the sixth is checked and starts the back-off
    status, headers, body = await _login(proxied, PASSWORD, "203.0.113.9")
    assert status == 429 and body["error"]["code"] == "too_many_attempts"  # type: ignore[index]
    assert int(headers["Retry-After"]) >= 1
    # The owner, from their own address behind the same nginx, signs in at once.
    assert (await _login(proxied, PASSWORD, "198.51.100.7"))[0] == 200


async def test_a_forged_forwarded_for_from_an_untrusted_client_is_ignored(api: Api) -> None:
    # No trusted proxy here: rotating the header does not make each attempt a new address.
    statuses = [(await _login(api, "wrong-one", f"198.51.100.{n}"))[0] for n in range(8)]
    assert statuses[:6] == [401] * 6 and statuses[6:] == [429, 429]
    assert (await _login(api, PASSWORD, "192.0.2.200"))[0] == 429
    # The back-off is a delay: once it has run out the right password works from the same address.
    api.clock.now = START + timedelta(seconds=2)
    assert (await _login(api, PASSWORD, None))[0] == 200
