"""Who may moderate whom, and the pure rules of moderation: holds, host keys, bans. Every rule takes ``now``
(where time matters) and touches no live object."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256

from signaling.messages import MODERATOR_ROLES, ModerationAction, Role, Source

# Only the host promotes and demotes co-hosts; everything else is open to host and co-hosts alike.
HOST_ONLY = frozenset({ModerationAction.MAKE_COHOST, ModerationAction.REVOKE_COHOST})

# A moderator's hold (hard mute) and its release, per source. The participant's own media_state never
# releases a hold: only these release actions do.
HOLD_ACTIONS = {
    ModerationAction.MUTE: Source.MIC,
    ModerationAction.STOP_CAMERA: Source.CAMERA,
    ModerationAction.STOP_SCREEN: Source.SCREEN,
}
RELEASE_ACTIONS = {
    ModerationAction.UNMUTE: Source.MIC,
    ModerationAction.ALLOW_CAMERA: Source.CAMERA,
    ModerationAction.ALLOW_SCREEN: Source.SCREEN,
}


def may_moderate(actor: Role, action: ModerationAction, target: Role | None) -> bool:
    """True if ``actor`` may take ``action`` against a participant with role ``target`` (None: no target)."""
    if actor not in MODERATOR_ROLES:
        return False
    if action in HOST_ONLY and actor is not Role.HOST:
        return False
    # Nobody but the host acts on the host (a co-host cannot mute, remove or demote the host).
    return not (target is Role.HOST and actor is not Role.HOST)


# --- host keys ---


@dataclass(frozen=True, slots=True)
class HostKeyLimits:
    """Wrong host keys: ``per_participant`` in one stay, ``per_meeting`` within ``window`` for everyone."""

    per_participant: int
    per_meeting: int
    window: timedelta


def host_key_retry_at(
    own_failures: int, meeting_failures: Sequence[datetime], limits: HostKeyLimits, *, now: datetime
) -> datetime | None:
    """None if a claim may be checked now; else when it may (datetime.max: not in this stay).

    Why two limits: one participant gets a few tries for a typo; the meeting's window bounds guessing by
    everyone together, since leaving and joining again (or many guests) would reset a per-participant count.
    With 6 digits and the defaults (10 per 10 minutes) a guesser needs years on average."""
    if own_failures >= limits.per_participant:
        return datetime.max.replace(tzinfo=now.tzinfo)
    recent = sorted(t for t in meeting_failures if t > now - limits.window)
    if len(recent) >= limits.per_meeting:
        return recent[len(recent) - limits.per_meeting] + limits.window
    return None


def host_key_matches(room_key: str | None, given: str) -> bool:
    """Constant-time comparison; a room without a key matches nothing."""
    return room_key is not None and hmac.compare_digest(room_key.encode(), given.strip().encode())


# --- rejoin keys: the server's own identity of a participant across connections (the ban list) ---


def rejoin_key(secret: bytes, guest_id: str) -> str:
    """``<guest_id>.<mac>``: issued in ``joined``; only this meeting (holding ``secret``) can have made it."""
    mac = hmac.new(secret, guest_id.encode(), sha256).hexdigest()[:32]
    return f"{guest_id}.{mac}"


def guest_of(secret: bytes, key: str | None) -> str | None:
    """The guest id a rejoin key was issued to, or None for no key, a forged one or another meeting's."""
    if key is None:
        return None
    guest_id = key.partition(".")[0]
    if not guest_id or not hmac.compare_digest(rejoin_key(secret, guest_id), key):
        return None
    return guest_id
