"""ICE that reports success when it happens, not at aioice's next 20 ms pacing tick.

aioice's ``Connection.connect()`` paces its checks (RFC 8445's Ta timer) with ``await asyncio.sleep(0.02)``
between them and only looks at the check list's outcome after that sleep. With one candidate pair (the usual
case for a server: the browser's host or server-reflexive candidate against our one address) the check
succeeds within a millisecond and the connection then idles for the rest of the tick before DTLS may start:
up to 20 ms added to every join. ``prompt_connect`` gives one Connection a ``connect()`` that paces the
checks the same way but wakes as soon as the check list completes or fails.

The replacement is aioice 0.13.0's ``connect()`` with the pacing wait changed; ``CONNECT_PATH`` pins every
line it repeats, and ``sfu.hooks.verify_hook_points`` checks them against the installed aioice.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from aioice.ice import ICE_COMPLETED, ICE_FAILED
from aioice.ice import Connection as IceConnection

from sfu.errors import HookSurfaceChanged

PACING_S = 0.02  # aioice's Ta

# Lines of aioice's Connection.connect() that prompt_connect repeats (the pacing loop is what differs).
CONNECT_PATH: tuple[str, ...] = (
    "if not self._local_candidates_end:",
    'raise ConnectionError("Local candidates gathering was not performed")',
    "if self.remote_username is None or self.remote_password is None:",
    'raise ConnectionError("Remote username or password is missing")',
    "for remote_candidate in self._remote_candidates:",
    "self._pair_remote_candidate(remote_candidate)",
    "self.sort_check_list()",
    "self._unfreeze_initial()",
    "for early_check in self._early_checks:",
    "self.check_incoming(*early_check)",
    "self._early_checks.clear()",
    "self._early_checks_done = True",
    "if not self._check_periodic():",
    "await asyncio.sleep(0.02)",
    "if self._check_list:",
    "res = await self._check_list_state.get()",
    "res = ICE_FAILED",
    "for check in self._check_list:",
    "if check.task:",
    "check.task.cancel()",
    "if res != ICE_COMPLETED:",
    'raise ConnectionError("ICE negotiation failed")',
    "self._query_consent_task = asyncio.create_task(self.query_consent())",
)


def verify_connect_path() -> None:
    source = inspect.getsource(IceConnection.connect)
    for line in CONNECT_PATH:
        if line not in source:
            raise HookSurfaceChanged(f"aioice Connection.connect no longer does {line!r}")


def prompt_connect(connection: Any) -> None:
    """Give this aioice Connection the prompt ``connect()`` (idempotent; call before ICE starts)."""
    if getattr(connection, "_yunhui_prompt", False):
        return
    connection._yunhui_prompt = True

    async def connect() -> None:
        await _connect(connection)

    connection.connect = connect


async def _connect(self: Any) -> None:
    if not self._local_candidates_end:
        raise ConnectionError("Local candidates gathering was not performed")
    if self.remote_username is None or self.remote_password is None:
        raise ConnectionError("Remote username or password is missing")

    # Forming candidate pairs (RFC 8445 section 6.1.2.2).
    for remote_candidate in self._remote_candidates:
        self._pair_remote_candidate(remote_candidate)
    self.sort_check_list()
    self._unfreeze_initial()

    # Handle the checks received before connect().
    for early_check in self._early_checks:
        self.check_incoming(*early_check)
    self._early_checks.clear()
    self._early_checks_done = True

    # Perform the checks one per tick, as aioice does, but stop waiting the moment the check list is done.
    outcome: asyncio.Task[int] = asyncio.ensure_future(self._check_list_state.get())
    try:
        while self._check_periodic():
            done, _ = await asyncio.wait((outcome,), timeout=PACING_S)
            if done:
                break
        res = await outcome if self._check_list else ICE_FAILED
    finally:
        outcome.cancel()

    # Cancel the remaining checks.
    for check in self._check_list:
        if check.task:
            check.task.cancel()

    if res != ICE_COMPLETED:
        raise ConnectionError("ICE negotiation failed")

    # Start consent freshness tests (RFC 7675).
    self._query_consent_task = asyncio.create_task(self.query_consent())
