"""Security headers on every response: a Content-Security-Policy, no framing, no referrer across origins.

The admin's bearer token sits in localStorage on the same origin as the meeting client, so an injected
script would steal it: the policy runs only scripts served from this origin (plus the import map, allowed by
its hash), no inline script or style element, no plugins, and no page may be framed (clickjacking). Inline
``style`` *properties* set from JavaScript (Preact's ``style=``) go through the CSSOM and stay allowed.
"""

from __future__ import annotations

import base64
import hashlib

from aiohttp import web

from web.ui import IMPORT_MAP_JSON


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        f"script-src 'self' {_sha256(IMPORT_MAP_JSON)}",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",  # same-origin fetch and the Socket.IO WebSocket
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    # Meeting links may carry a passcode (?pwd=): never send URLs to other origins.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An ``on_response_prepare`` handler of the root application (it runs for sub-applications too)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
