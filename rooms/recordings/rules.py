"""Pure rules of recordings: which state may follow which, retention, safe file names, signed links."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from rooms.errors import Conflict, InvalidInput, RoomsError

# Which state may follow which. Only a finished recording (ready or failed) is deleted: the work on the others
# still writes into its directory.
TRANSITIONS: dict[str, frozenset[str]] = {
    "recording": frozenset({"finalising", "failed"}),
    "finalising": frozenset({"rendering", "ready", "failed"}),
    "rendering": frozenset({"ready", "failed"}),
    "ready": frozenset({"rendering", "deleted"}),
    "failed": frozenset({"rendering", "deleted"}),
    "deleted": frozenset(),
}
# A state whose work died with the process (a crash): the next start finishes it.
UNFINISHED = frozenset({"recording", "finalising", "rendering"})

# A file of a recording is named by the engine: letters, digits, '.', '_' and '-', no directory part.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
LINK_AUDIENCE = "yunhui-recording"
ALGORITHM = "HS256"


def check_transition(current: str, new: str) -> None:
    """Raise Conflict unless a recording in ``current`` may move to ``new``."""
    if new not in TRANSITIONS.get(current, frozenset()):
        raise Conflict(f"a recording that is {current} cannot become {new}", code="bad_state", field="state")


def retain_until(ended_at: datetime, retention_days: int | None) -> datetime | None:
    """When a recording that ended at ``ended_at`` is purged; None keeps it until deleted."""
    return None if retention_days is None else ended_at + timedelta(days=retention_days)


def is_expired(retain: datetime | None, state: str, now: datetime) -> bool:
    """Whether the purge removes the recording now (only finished ones: work in progress is never purged)."""
    return retain is not None and retain <= now and state in {"ready", "failed"}


def safe_name(name: str) -> str:
    """``name`` if it is a plain file name (no separator, no '..', no leading dot); else InvalidInput."""
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        raise InvalidInput(f"{name[:60]!r} is not a recording file name", field="name")
    return name


class InvalidLink(RoomsError):
    """A download link that is not one of ours, was altered, or has expired."""

    code = "invalid_link"


@dataclass(frozen=True)
class LinkClaims:
    recording_id: int
    account_id: int
    file_name: str
    expires_at: datetime


def sign_link(
    secret_key: str, *, recording_id: int, account_id: int, file_name: str, now: datetime, ttl: timedelta
) -> tuple[str, datetime]:
    """A token that lets its holder download one file of one recording until it expires (no session)."""
    expires_at = now + ttl
    payload: dict[str, Any] = {
        "aud": LINK_AUDIENCE,
        "rec": recording_id,
        "acc": account_id,
        "file": safe_name(file_name),
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(payload, secret_key, algorithm=ALGORITHM), expires_at


def verify_link(secret_key: str, token: str, *, now: datetime) -> LinkClaims:
    """The claims of a download token, checked against ``now`` (not the wall clock); else InvalidLink."""
    try:
        payload = jwt.decode(
            token,
            secret_key,
            algorithms=[ALGORITHM],
            audience=LINK_AUDIENCE,
            options={"verify_exp": False, "require": ["exp", "aud", "rec", "acc", "file"]},
        )
        expires_at = datetime.fromtimestamp(int(payload["exp"]), tz=UTC)
        claims = LinkClaims(int(payload["rec"]), int(payload["acc"]), str(payload["file"]), expires_at)
    except (jwt.PyJWTError, TypeError, ValueError, OverflowError) as exc:
        raise InvalidLink("the download link is not valid") from exc
    if not SAFE_NAME.fullmatch(claims.file_name) or ".." in claims.file_name:
        raise InvalidLink("the download link is not valid")  # signed by us, so never: a second lock
    if now >= expires_at:
        raise InvalidLink("the download link has expired", code="link_expired")
    return claims
