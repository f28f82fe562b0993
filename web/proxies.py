"""The client's address behind trusted reverse proxies: the one place every limit keyed on it asks.

Behind nginx every connection comes from the proxy, so limits keyed on ``request.remote`` would put every
client in one bucket (one attacker's failed logins would slow everyone). ``X-Forwarded-For`` names the real
client, but anyone can send the header, so it is believed only as far as the chain of hops is made of
proxies the operator listed (``server.trusted_proxies``): reading from the right (nginx appends the address
it saw), the first hop that is not a trusted proxy is the client. A client's own forged entries sit to the
left of the first untrusted hop and are never reached.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence

from aiohttp import web

from rooms.backoff import address_key

__all__ = ["CLIENT_ADDRESS", "address_key", "client_address", "parse_networks", "resolve", "resolver"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
ClientAddress = Callable[[web.BaseRequest], str]

CLIENT_ADDRESS: web.AppKey[ClientAddress] = web.AppKey("client_address")


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or networks ("10.0.0.1", "10.0.0.0/8", "::1"); raises ValueError on a malformed entry."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _ip(text: str) -> Address | None:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
    return ip


def _trusted(ip: Address, trusted: Sequence[Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in trusted)


def resolve(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address from the connection's peer and the ``X-Forwarded-For`` values (in order).

    Pure. The rightmost hop that is not a trusted proxy; when the header runs out (or holds garbage) while
    every hop so far was trusted, the last hop read is the best anyone knows."""
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    address, current = peer, _ip(peer)
    if current is not None:
        address = str(current)
    while current is not None and _trusted(current, trusted) and hops:
        current = _ip(hops.pop())
        if current is not None:
            address = str(current)
    return address


def resolver(trusted: Sequence[Network]) -> ClientAddress:
    """The client-address function for these trusted proxies (the composition root stores it as
    ``CLIENT_ADDRESS`` on the root application; sub-applications find it through ``config_dict``)."""
    networks = tuple(trusted)

    def client_address(request: web.BaseRequest) -> str:
        return resolve(request.remote or "", request.headers.getall("X-Forwarded-For", []), networks)

    return client_address


def client_address(request: web.Request) -> str:
    """The client's address of an aiohttp request, through the application's resolver if it has one."""
    found = request.config_dict.get(CLIENT_ADDRESS)
    return found(request) if found is not None else (request.remote or "")
