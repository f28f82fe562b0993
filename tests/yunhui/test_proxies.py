"""web/proxies.py: which hop of X-Forwarded-For is the client, and the app wiring it."""

from __future__ import annotations

import pytest

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
