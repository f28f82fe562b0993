"""Meeting numbers and SIP credentials: random, from the secrets module."""

from __future__ import annotations

import secrets
import string


def meeting_number(digits: int | None = None) -> str:
    """9 or 10 random digits, never starting with 0 (terminals and people drop leading zeros)."""
    length = digits if digits is not None else secrets.choice((9, 10))
    return str(secrets.randbelow(9) + 1) + "".join(secrets.choice(string.digits) for _ in range(length - 1))


HOST_KEY_DIGITS = 6


def host_key() -> str:
    """A room's host key: 6 random digits (typed on a phone keypad or a room terminal's remote). Guessing is
    bounded by the meeting server's attempt limit, not by the key's length."""
    return "".join(secrets.choice(string.digits) for _ in range(HOST_KEY_DIGITS))


def sip_secret() -> str:
    return secrets.token_urlsafe(18)
