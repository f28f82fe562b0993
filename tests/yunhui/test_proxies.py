"""web/proxies.py: which hop of X-Forwarded-For is the client, and the app wiring it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import socketio
from aiohttp import web

from rooms.models import Account, Room
from tests.conftest import RunningServer
from tests.signaling.live_server import Client
from web.keys import DATABASE
from web.proxies import address_key, parse_networks, resolve
from yunhui.settings import SettingsError, load_settings

NGINX = parse_networks(["127.0.0.1", "10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # No trusted proxy in front: the header is the client's own words, ignored.
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        # One nginx: it appended the address it saw.
        ("127.0.0.1", ["198.51.100.7"], "198.51.100.7"),
        # A forged entry to the left of the real client is never reached.
        ("127.0.0.1", ["1.2.3.4, 198.51.100.7"], "198.51.100.7"),
        # Two trusted hops (a load balancer, then nginx), header repeated.
        ("127.0.0.1", ["9.9.9.9, 198.51.100.7", "10.1.2.3"], "198.51.100.7"),
        # Garbage where the client should be: the last hop that could be read.
        ("127.0.0.1", ["not-an-ip"], "127.0.0.1"),
        # Only trusted hops: the leftmost one read.
        ("127.0.0.1", ["10.0.0.5"], "10.0.0.5"),
        ("::ffff:127.0.0.1", ["2001:db8::1"], "2001:db8::1"),
        ("127.0.0.1", [], "127.0.0.1"),
        ("", ["1.2.3.4"], ""),
    ],
)
def test_the_client_is_the_rightmost_untrusted_hop(peer: str, forwarded: list[str], expected: str) -> None:
    assert resolve(peer, forwarded, NGINX) == expected


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert resolve("127.0.0.1", ["198.51.100.7"], ()) == "127.0.0.1"


def test_address_keys_group_an_ipv6_subscriber() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("unix") == "unix"


def test_trusted_proxies_setting_is_validated() -> None:
    settings = load_settings(overrides={"server": {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}})
    assert settings.server.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    with pytest.raises(SettingsError, match=r"^server\.trusted_proxies: 'nginx' is not an IP"):
        load_settings(overrides={"server": {"trusted_proxies": ["nginx"]}})


@pytest.fixture
def settings(tmp_path: Any) -> Any:
    """The test server (tests/conftest.py ``server``) behind a trusted nginx on 127.0.0.1."""
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None, "trusted_proxies": ["127.0.0.1"]},
        }
    )


async def test_passcode_back_off_behind_a_trusted_proxy_is_per_client(server: RunningServer) -> None:
    """Through the whole app behind nginx (trusted 127.0.0.1), the meeting server's passcode limit files
    each guest under its X-Forwarded-For address: one guesser is stopped, the others are not slowed (before,
    every guest behind the proxy shared the proxy's address and one attacker slowed them all)."""
    url, app = server.url, server.app
    await room(app, "912345678", "246810")

    async def attempt(address: str, passcode: str) -> str:
        client = Client()
        try:
            await client.sio.connect(
                url,
                auth={"meeting_number": "912345678", "passcode": passcode, "display_name": address},
                headers={"X-Forwarded-For": address},
                transports=["websocket"],
                wait_timeout=5,
            )
        except socketio.exceptions.ConnectionError:
            return str(client.refusal["data"]["code"])
        finally:
            await client.close()
        return "joined"

    codes = [await attempt("198.51.100.7", "000000") for _ in range(7)]
    assert codes[:5] == ["wrong_passcode"] * 5 and codes[-1] == "too_many_attempts"
    assert await attempt("198.51.100.8", "246810") == "joined"
    assert await attempt("198.51.100.7", "246810") == "too_many_attempts"  # unchecked while blocked


async def room(app: web.Application, number: str, passcode: str) -> None:
    now = datetime.now(UTC)
    async with app[DATABASE].session() as session:
        account = Account(name="Acme", created_at=now)
        session.add(account)
        await session.flush()
        session.add(
            Room(
                account_id=account.id,
                name="Hall",
                meeting_number=number,
                passcode=passcode,
                capacity=10,
                created_at=now,
            )
        )
        await session.commit()
