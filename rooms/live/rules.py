"""Pure rules of live channels: which action moves which state, what a source needs, the viewer tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from rooms.errors import Conflict, InvalidInput, RoomsError

# What each console action does from each state. "stop" ends a live channel, but takes a rehearsal back to
# draft: nothing public happened, so there is nothing to replay.
ACTIONS: dict[str, dict[str, str]] = {
    "rehearse": {"draft": "rehearsal"},
    "go_live": {"draft": "live", "rehearsal": "live"},
    "stop": {"rehearsal": "draft", "live": "ended"},
    "archive": {"ended": "archived"},
}
# The engine (pipeline) runs in these states; viewers watch in live and ended (the replay).
RUNNING = frozenset({"rehearsal", "live"})
# A channel's set-up may change until it ends; after that the replay is what it was.
EDITABLE = frozenset({"draft", "rehearsal", "live"})
# A source may be switched live; its kind decides what else must be named. An encoder publishes over WHIP
# into a room's meeting (its join token names the room), so it names the room too.
SOURCE_NEEDS_ROOM = frozenset({"meeting", "encoder"})

VIEWER_AUDIENCE = "yunhui-live-viewer"
STAFF_AUDIENCE = "yunhui-live-staff"
ALGORITHM = "HS256"
VIEWER_TTL = timedelta(hours=12)
STAFF_TTL = timedelta(hours=12)


def next_state(state: str, action: str) -> str:
    """The state ``action`` leads to from ``state``; Conflict (code bad_state) with a reason otherwise."""
    moves = ACTIONS.get(action)
    if moves is None:
        raise InvalidInput(f"{action!r} is not a live channel action", field="action")
    if state not in moves:
        allowed = ", ".join(sorted(moves))
        raise Conflict(
            f"a channel that is {state} cannot {action.replace('_', ' ')} (only from: {allowed})",
            code="bad_state",
            field="state",
        )
    return moves[state]


def check_editable(state: str) -> None:
    if state not in EDITABLE:
        raise Conflict(f"a channel that is {state} can no longer be changed", code="bad_state", field="state")


def check_source(kind: str, room_id: int | None) -> None:
    """A meeting or encoder source names its room; a playlist names none."""
    if kind in SOURCE_NEEDS_ROOM and room_id is None:
        what = "whose meeting is shown" if kind == "meeting" else "its encoder publishes into (WHIP)"
        raise InvalidInput(f"a {kind} source needs the room {what}", field="room_id")
    if kind not in SOURCE_NEEDS_ROOM and room_id is not None:
        raise InvalidInput(f"a {kind} source takes no room", field="room_id")


def viewer_phase(state: str) -> str | None:
    """The phase a public viewer session watches in, or None while the public cannot watch yet."""
    if state == "live":
        return "live"
    if state in ("ended", "archived"):
        return "replay"
    return None


def mask_url(url: str | None) -> str | None:
    """An RTMP URL without its stream key (the last path segment) and password, for display."""
    if not url:
        return url
    head, _, tail = url.rpartition("/")
    if "@" in head:
        scheme, _, rest = head.partition("://")
        head = f"{scheme}://***@{rest.rpartition('@')[2]}"
    return f"{head}/{'*' * min(8, len(tail))}" if head else "*" * 8


class InvalidViewerToken(RoomsError):
    """A viewer or staff token that is not ours, was altered, names another channel or has expired."""

    code = "invalid_token"


@dataclass(frozen=True)
class ViewerClaims:
    session_id: int
    channel_id: int
    phase: str


def sign_viewer(secret_key: str, *, session_id: int, channel_id: int, phase: str, now: datetime) -> str:
    """The ``s`` token of one viewer session: every playlist and segment URL carries it."""
    payload: dict[str, Any] = {
        "aud": VIEWER_AUDIENCE,
        "sid": session_id,
        "ch": channel_id,
        "ph": phase,
        "exp": int((now + VIEWER_TTL).timestamp()),
    }
    return jwt.encode(payload, secret_key, algorithm=ALGORITHM)


def sign_staff(secret_key: str, *, channel_id: int, user_id: int, now: datetime) -> tuple[str, datetime]:
    """A token that lets staff watch a channel in rehearsal (and create rehearsal viewer sessions)."""
    expires_at = now + STAFF_TTL
    payload: dict[str, Any] = {
        "aud": STAFF_AUDIENCE,
        "ch": channel_id,
        "uid": user_id,
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(payload, secret_key, algorithm=ALGORITHM), expires_at


def _decode(secret_key: str, token: str, audience: str, required: list[str], now: datetime) -> dict[str, Any]:
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            secret_key,
            algorithms=[ALGORITHM],
            audience=audience,
            options={"verify_exp": False, "require": ["exp", "aud", *required]},
        )
        expires_at = datetime.fromtimestamp(int(payload["exp"]), tz=UTC)
    except (jwt.PyJWTError, TypeError, ValueError, OverflowError) as exc:
        raise InvalidViewerToken("the viewer token is not valid") from exc
    if now >= expires_at:
        raise InvalidViewerToken("the viewer token has expired; reload the page", code="token_expired")
    return payload


def verify_viewer(secret_key: str, token: str, *, channel_id: int, now: datetime) -> ViewerClaims:
    payload = _decode(secret_key, token, VIEWER_AUDIENCE, ["sid", "ch", "ph"], now)
    try:
        claims = ViewerClaims(int(payload["sid"]), int(payload["ch"]), str(payload["ph"]))
    except (TypeError, ValueError) as exc:
        raise InvalidViewerToken("the viewer token is not valid") from exc
    if claims.channel_id != channel_id:
        raise InvalidViewerToken("the viewer token is for another channel")
    return claims


def verify_staff(secret_key: str, token: str, *, channel_id: int, now: datetime) -> int:
    """The user id of a valid staff token for ``channel_id``; else InvalidViewerToken."""
    payload = _decode(secret_key, token, STAFF_AUDIENCE, ["ch", "uid"], now)
    try:
        channel, user = int(payload["ch"]), int(payload["uid"])
    except (TypeError, ValueError) as exc:
        raise InvalidViewerToken("the staff token is not valid") from exc
    if channel != channel_id:
        raise InvalidViewerToken("the staff token is for another channel")
    return user
