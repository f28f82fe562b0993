"""One-click unsubscribe from reminder e-mail (RFC 8058): a signed token naming the address. Pure."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from rooms.errors import InvalidInput

SCOPE = "reminder"


def _mac(secret_key: str, address: str) -> str:
    digest = hmac.new(secret_key.encode(), f"unsubscribe:{SCOPE}:{address}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:18]).decode().rstrip("=")


def unsubscribe_token(secret_key: str, address: str) -> str:
    """A token that stops reminder e-mail to `address`; it never expires (the link lives in old mail)."""
    normalized = address.strip().lower()
    encoded = base64.urlsafe_b64encode(normalized.encode()).decode().rstrip("=")
    return f"{encoded}.{_mac(secret_key, normalized)}"


def verify_unsubscribe(secret_key: str, token: str) -> str:
    """The address a token names; InvalidInput if it was not made with `secret_key`."""
    encoded, _, mac = token.partition(".")
    try:
        address = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("the unsubscribe link is damaged", field="token") from None
    if not mac or not hmac.compare_digest(mac, _mac(secret_key, address)):
        raise InvalidInput("the unsubscribe link is damaged", field="token")
    return address
