"""Who may moderate whom: the permission matrix as one pure function."""

from __future__ import annotations

from signaling.messages import MODERATOR_ROLES, ModerationAction, Role

# Only the host promotes and demotes co-hosts; everything else is open to host and co-hosts alike.
HOST_ONLY = frozenset({ModerationAction.MAKE_COHOST, ModerationAction.REVOKE_COHOST})


def may_moderate(actor: Role, action: ModerationAction, target: Role | None) -> bool:
    """True if ``actor`` may take ``action`` against a participant with role ``target`` (None: no target)."""
    if actor not in MODERATOR_ROLES:
        return False
    if action in HOST_ONLY and actor is not Role.HOST:
        return False
    # Nobody but the host acts on the host (a co-host cannot mute, remove or demote the host).
    return not (target is Role.HOST and actor is not Role.HOST)
