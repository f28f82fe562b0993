"""Signed tokens: API access tokens and short-lived meeting join tokens. Pure functions of key and `now`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from rooms.errors import RoomsError

ALGORITHM = "HS256"
ISSUER = "yunhui"
ACCESS_AUDIENCE = "yunhui-api"
JOIN_AUDIENCE = "yunhui-join"
JOIN_ROLES = ("host", "participant", "viewer", "recorder")
# Roles the REST API mints for users; "recorder" tokens are minted by the server itself (system participants).
USER_JOIN_ROLES = ("host", "participant", "viewer")


class InvalidToken(RoomsError):
    code = "invalid_token"


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    account_id: int | None
    role: str
    expires_at: datetime


@dataclass(frozen=True)
class JoinClaims:
    room_id: int
    meeting_number: str
    account_id: int
    booking_id: int | None
    role: str
    display_name: str
    user_id: int | None
    expires_at: datetime
    token_id: str | None = None  # "jti": tells one token from another (a removed token is banned by it)


def _encode(payload: dict[str, Any], secret_key: str) -> str:
    return jwt.encode(payload, secret_key, algorithm=ALGORITHM)


def _decode(token: str, secret_key: str, *, audience: str, now: datetime) -> dict[str, Any]:
    try:
        # PyJWT checks exp against the wall clock; we check it against the injected `now` instead.
        payload: dict[str, Any] = jwt.decode(
            token,
            secret_key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=ISSUER,
            options={"verify_exp": False, "verify_iat": False, "require": ["exp", "aud", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"invalid token: {exc}") from exc
    expires_at = datetime.fromtimestamp(int(payload["exp"]), tz=UTC)
    if now >= expires_at:
        raise InvalidToken("token expired", code="token_expired")
    payload["exp"] = expires_at
    return payload


def mint_access_token(
    secret_key: str, *, user_id: int, account_id: int | None, role: str, now: datetime, ttl: timedelta
) -> tuple[str, datetime]:
    expires_at = now + ttl
    payload = {
        "iss": ISSUER,
        "aud": ACCESS_AUDIENCE,
        "sub": str(user_id),
        "acc": account_id,
        "role": role,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    return _encode(payload, secret_key), expires_at


def verify_access_token(secret_key: str, token: str, *, now: datetime) -> AccessClaims:
    payload = _decode(token, secret_key, audience=ACCESS_AUDIENCE, now=now)
    try:
        return AccessClaims(
            user_id=int(payload["sub"]),
            account_id=None if payload.get("acc") is None else int(payload["acc"]),
            role=str(payload["role"]),
            expires_at=payload["exp"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidToken("malformed token claims") from exc


def mint_join_token(
    secret_key: str,
    *,
    room_id: int,
    meeting_number: str,
    account_id: int,
    role: str,
    display_name: str,
    now: datetime,
    ttl: timedelta,
    booking_id: int | None = None,
    user_id: int | None = None,
) -> tuple[str, datetime]:
    """A signed join token for one room (and booking); the meeting server checks it with verify_join_token."""
    if role not in JOIN_ROLES:
        raise ValueError(f"unknown join role {role!r}")
    expires_at = now + ttl
    payload = {
        "iss": ISSUER,
        "aud": JOIN_AUDIENCE,
        "sub": meeting_number,
        "room": room_id,
        "acc": account_id,
        "bkg": booking_id,
        "role": role,
        "name": display_name,
        "uid": user_id,
        "jti": secrets.token_hex(8),
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    return _encode(payload, secret_key), expires_at


def verify_join_token(secret_key: str, token: str, *, now: datetime) -> JoinClaims:
    payload = _decode(token, secret_key, audience=JOIN_AUDIENCE, now=now)
    try:
        role = str(payload["role"])
        if role not in JOIN_ROLES:
            raise ValueError(role)
        return JoinClaims(
            room_id=int(payload["room"]),
            meeting_number=str(payload["sub"]),
            account_id=int(payload["acc"]),
            booking_id=None if payload.get("bkg") is None else int(payload["bkg"]),
            role=role,
            display_name=str(payload["name"]),
            user_id=None if payload.get("uid") is None else int(payload["uid"]),
            expires_at=payload["exp"],
            token_id=None if payload.get("jti") is None else str(payload["jti"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidToken("malformed token claims") from exc


FEED_AUDIENCE = "yunhui-feed"


def mint_feed_token(secret_key: str, *, room_id: int, account_id: int, now: datetime, ttl: timedelta) -> str:
    """A read-only key for one room's calendar feed (calendar clients cannot send bearer tokens)."""
    payload = {
        "iss": ISSUER,
        "aud": FEED_AUDIENCE,
        "sub": str(room_id),
        "acc": account_id,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return _encode(payload, secret_key)


def verify_feed_token(secret_key: str, token: str, *, room_id: int, now: datetime) -> int:
    """The account id the feed key was minted for; InvalidToken unless it is for this room."""
    payload = _decode(token, secret_key, audience=FEED_AUDIENCE, now=now)
    try:
        if int(payload["sub"]) != room_id:
            raise InvalidToken("the key is for another room")
        return int(payload["acc"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidToken("malformed token claims") from exc
