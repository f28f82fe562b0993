"""Time-limited TURN credentials for clients (the TURN REST scheme coturn checks with ``use-auth-secret``).

The username is ``<expiry unix time>:<participant id>`` and the password is base64(HMAC-SHA1(secret,
username)): coturn recomputes it from the shared secret, so no user list is kept on either side, and a
leaked credential stops working at its expiry. coturn checks the expiry on every allocate and refresh, so
the lifetime must outlast the longest stay (see TurnSettings.ttl_seconds).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from signaling.messages import IceServer
from signaling.settings import TurnSettings


def turn_credential(secret: str, user: str, expires: datetime) -> tuple[str, str]:
    """The (username, password) pair coturn accepts for ``user`` until ``expires``."""
    username = f"{int(expires.timestamp())}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def client_ice_servers(settings: TurnSettings, user: str, now: datetime) -> tuple[IceServer, ...]:
    """The STUN and TURN servers a client is given in ``joined``; TURN only when a secret is configured."""
    servers: list[IceServer] = []
    if settings.stun_urls:
        servers.append(IceServer(urls=settings.stun_urls, username=None, credential=None))
    if settings.urls and settings.secret is not None:
        expires = now + timedelta(seconds=settings.ttl_seconds)
        username, password = turn_credential(settings.secret.get_secret_value(), user, expires)
        servers.append(IceServer(urls=settings.urls, username=username, credential=password))
    return tuple(servers)
