"""The webhook signature: HMAC-SHA256 over ``timestamp + "." + body``, sent as ``Yunhui-Signature``.

The header reads ``t=<unix seconds>,v1=<hex digest>``. A receiver recomputes the digest with its secret over
the timestamp, a dot and the raw body bytes, compares in constant time, and refuses a timestamp further than
its tolerance from its own clock (a replayed old request). docs/api.md shows the check in Python and shell.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

SIGNATURE_HEADER = "Yunhui-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class BadSignature(ValueError):
    """The signature header is missing, malformed, stale or does not match."""


def digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, now: datetime) -> str:
    """The ``Yunhui-Signature`` header value for ``body`` sent at ``now``."""
    timestamp = int(now.timestamp())
    return f"t={timestamp},v1={digest(secret, timestamp, body)}"


def verify(
    secret: str, header: str, body: bytes, *, now: datetime, tolerance: int = DEFAULT_TOLERANCE_SECONDS
) -> int:
    """Check a header against ``body``; return its timestamp or raise :class:`BadSignature`."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        raise BadSignature("no timestamp in the signature header") from None
    if abs(now.timestamp() - timestamp) > tolerance:
        raise BadSignature("the signature's timestamp is outside the tolerance")
    expected = digest(secret, timestamp, body)
    # Several v1 values may come while a secret is being rotated; one match is enough.
    if not any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", [])):
        raise BadSignature("the signature does not match the body")
    return timestamp
