"""Periodic background jobs of the process (the billing run), each an owned task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class PeriodicJob:
    """Runs ``job`` at start and then every ``interval`` seconds until :meth:`close`.

    A failing run is logged and retried at the next interval; it never stops the job or the process.
    ``gate``: a run happens only while it answers True (yunhui.leader: only in the cluster's leader);
    skipped runs are counted in ``skipped``.
    """

    def __init__(
        self,
        name: str,
        job: Callable[[], Awaitable[object]],
        interval: float,
        *,
        gate: Callable[[], bool] | None = None,
    ) -> None:
        self.name = name
        self.gate = gate
        self.skipped = 0
        self.runs = 0
        self.failures = 0
        self._job = job
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._ran = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"job:{self.name}")

    async def wait_for_run(self) -> None:
        """Return once a run has finished (successfully or not)."""
        await self._ran.wait()

    async def _loop(self) -> None:
        while True:
            if self.gate is not None and not self.gate():
                self.skipped += 1
                # Looked at often, so a worker that has just taken the lead runs the job at once.
                await asyncio.sleep(min(self._interval, 1.0))
                continue
            try:
                await self._job()
            except Exception:
                self.failures += 1
                log.exception("job %s failed; retrying in %.0f s", self.name, self._interval)
            self.runs += 1
            self._ran.set()
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
