"""Where a meeting lives, as signaling needs to know it: the placement port the cluster fills in.

A meeting lives in exactly one worker. A join that reaches another worker is refused with
``wrong_worker`` naming the owner, and the client connects there (signalling is never relayed). One process
has no placement: every meeting is local.
"""

from __future__ import annotations

from typing import Protocol


class Placement(Protocol):
    async def admit(self, room_id: int) -> None:
        """Return when the room's meeting may run in this worker; else raise JoinRefused:
        ``wrong_worker`` (with ``worker``: the owner) or ``unavailable`` (the registry cannot be reached)."""
        ...
