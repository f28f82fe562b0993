"""Meeting numbers and SIP credentials: random, from the secrets module."""

from __future__ import annotations

import secrets
import string


def meeting_number(digits: int | None = None) -> str:
    """9 or 10 random digits, never starting with 0 (terminals and people drop leading zeros)."""
    length = digits if digits is not None else secrets.choice((9, 10))
    return str(secrets.randbelow(9) + 1) + "".join(secrets.choice(string.digits) for _ in range(length - 1))


def sip_secret() -> str:
    return secrets.token_urlsafe(18)
