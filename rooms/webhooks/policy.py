"""Webhook rules as pure functions: the event names, which URLs may be called, and the retry schedule."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from rooms.errors import InvalidInput

# Every event a webhook can subscribe to, each emitted in the transaction of the change it reports
# (rooms.webhooks.events.emit): live.* by rooms/live/store.py, invoice.issued by the billing run.
EVENTS: tuple[str, ...] = (
    "meeting.started",
    "meeting.ended",
    "participant.joined",
    "participant.left",
    "recording.ready",
    "live.started",
    "live.ended",
    "invoice.issued",
)
PING = "ping"


@dataclass(frozen=True)
class UrlPolicy:
    """Private, loopback and link-local targets are refused unless ``allow_private`` (tests, an intranet)."""

    allow_private: bool = False


def forbidden_address(address: str, policy: UrlPolicy) -> bool:
    """Whether connecting to the IP ``address`` could reach inside the operator's network."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return True
    if policy.allow_private:
        return False
    return ip.is_private or ip.is_loopback or ip.is_link_local or not ip.is_global


def check_url(url: str, policy: UrlPolicy) -> str:
    """The URL if a webhook may be sent to it, else :class:`InvalidInput` naming the problem."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("not a valid URL", field="url") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("only http:// and https:// URLs can receive webhooks", field="url")
    host = parts.hostname or ""
    if not host:
        raise InvalidInput("the URL has no host", field="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("put credentials in the signature secret, not in the URL", field="url")
    if port == 0:
        raise InvalidInput("port 0 cannot be called", field="url")
    literal = _literal_ip(host)
    if literal is not None and forbidden_address(literal, policy):
        raise InvalidInput("the URL points at a private, loopback or reserved address", field="url")
    if literal is None and not policy.allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise InvalidInput("the URL points at a private, loopback or reserved address", field="url")
    return url


def _literal_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def check_events(events: Sequence[str]) -> list[str]:
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise InvalidInput(f"unknown event {unknown[0]!r}; known: {', '.join(EVENTS)}", field="events")
    if not events:
        raise InvalidInput("subscribe to at least one event", field="events")
    return list(dict.fromkeys(events))


def next_attempt(attempts: int, now: datetime, schedule: Sequence[float]) -> datetime | None:
    """When to try again after ``attempts`` failed tries; None once the schedule is spent (give up)."""
    if attempts < 1 or attempts > len(schedule):
        return None
    return now + timedelta(seconds=schedule[attempts - 1])
